#!/usr/bin/env bash
# push: push the built image and record IMAGE_URL and IMAGE_DIGEST (Tekton Chains type hints).
# Whether the registry takes the credentials was checked before the build (check-push, in Go);
# transient errors here are retried by buildah (--retry). A failure is explained in one line, in
# the log and in the FAILURE result (the PoolImage status shows it). Inputs arrive as environment
# variables only.
set -euo pipefail
# The step that started last names a failed build task's step in the report. The file is
# replaced, not truncated: an earlier step may have written it as another user.
rm -f "$RESULT_LAST_STEP"
printf '%s' push > "$RESULT_LAST_STEP"
work=${OCL_WORKDIR:-/workspace/ocl}
registry=${IMAGE%%/*}
# Every push gets a tag of its own: IMAGE-<first 12 characters of the TaskRun's uid>. A retry or
# a re-run of the same inputs never moves a tag off a digest that nodes may boot, so registries
# that delete untagged manifests keep every image built.
# shellcheck disable=SC2153 # RUN_ID (the TaskRun's uid) comes from the step's environment
run_id=${RUN_ID//-/}
dest=$IMAGE
if [ -n "$run_id" ]; then
  dest="${IMAGE}-${run_id:0:12}"
fi
if [ -f "${OCL_SECRETS_DIR:-/var/run/ocl-secrets}/trusted-ca/tls-ca-bundle.pem" ]; then
  export SSL_CERT_FILE="${OCL_SECRETS_DIR:-/var/run/ocl-secrets}/trusted-ca/tls-ca-bundle.pem"
fi

# A proxy Secret (spec.pipeline.proxySecret, for a proxy URL with credentials) replaces the proxy
# parameters; its values are never printed.
if [ "${PROXY_BOUND:-false}" = "true" ]; then
  for key in HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    if [ -f "$PROXY_PATH/$key" ]; then
      export "$key=$(cat "$PROXY_PATH/$key")"
    fi
  done
fi
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

# fail WHY DETAIL: a short last log line (the verdict, WHY) and the FAILURE result (WHY and DETAIL,
# which the PoolImage's status shows).
fail() {
  echo "push: FAILED: $1" >&2
  printf '%s' "$1 ($2)" > "$RESULT_FAILURE"
  exit 1
}

echo "push: ${dest} (up to ${PUSH_RETRIES} retries)"
if ! buildah "${args[@]}" "$IMAGE" "docker://$dest"; then
  # The check-push step saw the registry take the credentials before the build; what changed
  # since is in buildah's error above (its text is not parsed: the verdict on the registry and
  # the credentials is the check's, from typed errors).
  fail "buildah's push failed after the registry took the push secret; its error is above" \
    "pushing ${dest} to registry ${registry}"
fi
digest=$(cat "$work/digest")
printf '%s' "$dest" > "$RESULT_IMAGE_URL"
printf '%s' "$digest" > "$RESULT_IMAGE_DIGEST"
echo "push: pushed ${dest} (${dest%:*}@${digest})"
