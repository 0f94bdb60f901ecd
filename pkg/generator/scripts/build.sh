#!/usr/bin/env bash
# build: buildah build of the rendered Containerfile on the pinned base image.
# Inputs arrive as environment variables only. Entitlements and credentials are mounted into RUN
# steps with --volume (never COPYed), so they cannot land in a layer.
set -euo pipefail
# The step that started last names a failed build task's step in the report. The file is
# replaced, not truncated: an earlier step may have written it as another user.
rm -f "$RESULT_LAST_STEP"
printf '%s' build > "$RESULT_LAST_STEP"

work=${OCL_WORKDIR:-/workspace/ocl}
ctx="$work/context"
mounts=${OCL_SECRETS_DIR:-/var/run/ocl-secrets}
export XDG_RUNTIME_DIR="$mounts/xdg" HOME="$mounts/home"
mkdir -p "$XDG_RUNTIME_DIR" "$HOME"

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
  build
  --format "$IMAGE_FORMAT"
  --tls-verify="$TLS_VERIFY"
  --file "$ctx/Containerfile"
  --tag "$IMAGE"
  --label "io.openshift.machineconfigpool=$POOL"
  --label "dev.ocl-pipelines.base-image=$PINNED_BASE_IMAGE"
  --label "dev.ocl-pipelines.inputs-hash=$INPUTS_HASH"
  --build-arg "OCL_BASE_IMAGE=$PINNED_BASE_IMAGE"
)
if [ -n "$EXTENSIONS_IMAGE" ]; then
  args+=(--build-arg "OCL_EXTENSIONS_IMAGE=$EXTENSIONS_IMAGE")
fi
for mount in entitlement:/etc/pki/entitlement activation-key:/run/secrets/rhsm-activation \
  yum-repos:/etc/yum.repos.d rpm-gpg:/etc/pki/rpm-gpg; do
  if [ -d "$mounts/${mount%%:*}" ]; then
    args+=(--volume "$mounts/${mount%%:*}:${mount#*:}:ro")
  fi
done
if [ -f "$mounts/trusted-ca/tls-ca-bundle.pem" ]; then
  # RUN steps trust the cluster's bundle where RHEL looks (/etc/pki/tls/certs/ca-bundle.crt
  # links there); buildah's own pulls too.
  args+=(--volume "$mounts/trusted-ca:/etc/pki/ca-trust/extracted/pem:ro")
  export SSL_CERT_FILE="$mounts/trusted-ca/tls-ca-bundle.pem"
fi
if [ -n "$CACHE_REPO" ]; then
  # --timestamp 0: buildah commits each stage (`configs` too) with the build's time, which would
  # change the cache key of every step after it; with a fixed time the keys of unchanged steps
  # match and their layers come from the cache. ostree stores every file with mtime 0 anyway.
  args+=(--layers --cache-from "$CACHE_REPO" --cache-to "$CACHE_REPO" --timestamp 0)
  echo "build: layer cache ${CACHE_REPO}"
fi

echo "build: ${IMAGE}"
echo "build: from ${PINNED_BASE_IMAGE} (${STORAGE_DRIVER}, ${IMAGE_FORMAT})"
# The Containerfile buildah builds, where a reader of this log looks first: the rendered stages
# with their comments, then the PoolImage's own content.
echo "build: ---- Containerfile ----"
cat "$ctx/Containerfile"
echo "build: ---- end of Containerfile ----"
rc=0
buildah "${args[@]}" "$ctx" || rc=$?
if [ "$rc" -ne 0 ]; then
  # buildah exits with the failing RUN's own code: the step does too.
  echo "build: FAILED (exit code ${rc}): a Containerfile instruction failed; its output is above" >&2
  exit "$rc"
fi
echo "build: done"
