#!/usr/bin/env bash
# push: push the built image and record IMAGE_URL and IMAGE_DIGEST (Tekton Chains type hints).
# Transient registry errors are retried by buildah (--retry); inputs arrive as environment
# variables only.
set -euo pipefail
work=${OCL_WORKDIR:-/workspace/ocl}

args=(
  --storage-driver "$STORAGE_DRIVER"
  push
  --tls-verify="$TLS_VERIFY"
  --retry "$PUSH_RETRIES"
  --digestfile "$work/digest"
)
if [ "$PUSH_SECRET_BOUND" = "true" ]; then
  args+=(--authfile "$PUSH_SECRET_PATH/.dockerconfigjson")
fi

echo "push: ${IMAGE} (up to ${PUSH_RETRIES} retries)"
if ! buildah "${args[@]}" "$IMAGE" "docker://$IMAGE"; then
  echo "push: FAILED: could not push ${IMAGE}; check that the push secret can write to its repository" >&2
  exit 1
fi
digest=$(cat "$work/digest")
printf '%s' "$IMAGE" > "$RESULT_IMAGE_URL"
printf '%s' "$digest" > "$RESULT_IMAGE_DIGEST"
echo "push: pushed ${IMAGE%:*}@${digest}"
