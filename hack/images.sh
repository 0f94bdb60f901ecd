#!/usr/bin/env bash
# Builds the project's images with ko (hack/ko) on its own static, non-root base
# (hack/baseimage): the controller (cmd/controller) and the step image (cmd/ocl-step), for
# linux/amd64 and linux/arm64, each with an SPDX SBOM, labelled with their version
# (org.opencontainers.image.version); no timestamps, -trimpath (Go stamps the commit into the
# binaries).
#
#   hack/images.sh [REGISTRY]          push to REGISTRY (host[:port]/path); prints
#                                      controller=REF@DIGEST, ocl-step=REF@DIGEST, base=REF@DIGEST
#                                      and one `image:` size line per image and platform
#   hack/images.sh resolve REGISTRY VERSION < manifests > resolved
#                                      ko resolve: build, push (tagged VERSION) and replace every
#                                      ko:// reference of the manifests by its REF@DIGEST
#
# Without REGISTRY, a registry of this machine is started for the build (127.0.0.1:5055, its
# data cached under ~/.cache/ocl-pipelines/images-registry, so a second build uploads nothing
# new) and stopped after it. A registry on a loopback or private address is spoken to over plain
# HTTP (OCL_INSECURE=1 forces it). OCL_PLATFORMS (default linux/amd64,linux/arm64) narrows the
# platforms: the local stack builds its node's only.
#
# Reproducible: the same commit, Go toolchain, registry and version give the same digests (the
# images name their base by its digest in the registry, org.opencontainers.image.base.name); ko's
# SOURCE_DATE_EPOCH, KO_DATA_DATE_EPOCH and GOFLAGS/GOAMD64 from the environment would change them.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${OCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ocl-pipelines}
KO=$("$ROOT/hack/build-stack-tools.sh" | sed -n 's/^ko=//p')
log() { printf '%s images: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# insecure REGISTRY: whether to speak plain HTTP to REGISTRY.
insecure() {
  [ "${OCL_INSECURE:-}" = 1 ] && return 0
  case ${1%%/*} in
  localhost* | 127.* | 10.* | 192.168.* | 172.1[6-9].* | 172.2[0-9].* | 172.3[01].*) return 0 ;;
  esac
  return 1
}

# local_registry: start the build's own registry; sets REGISTRY and a trap that stops it.
local_registry() {
  local data=$CACHE/images-registry addr=127.0.0.1:5055 work
  mkdir -p "$data"
  work=$(mktemp -d)
  printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n' \
    "$data" "$addr" >"$work/registry.yml"
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  REGISTRY_PID=$!
  trap 'kill $REGISTRY_PID 2>/dev/null || true; wait $REGISTRY_PID 2>/dev/null || true; rm -rf "'"$work"'"' EXIT
  for i in $(seq 101); do
    curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && break
    if [ "$i" = 101 ] || ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
      echo "images: the build's registry on $addr did not start:" >&2
      cat "$work/registry.log" >&2
      return 1
    fi
    sleep 0.1
  done
  REGISTRY=$addr/ocl-pipelines
}

# ko_env REGISTRY: the base pushed to REGISTRY, and ko's environment (exported).
ko_env() {
  local registry=$1 flag=() base
  if insecure "$registry"; then flag=(--insecure); fi
  base=$(cd "$ROOT" && go run ./hack/baseimage "${flag[@]}" "$registry/base:static")
  export KO_DOCKER_REPO=$registry KO_DEFAULTBASEIMAGE=$base KO_CONFIG_PATH=$ROOT/.ko.yaml
  KOFLAGS=(--base-import-paths --platform "${OCL_PLATFORMS:-linux/amd64,linux/arm64}")
  if insecure "$registry"; then KOFLAGS+=(--insecure-registry); fi
  echo "base=$base"
}

case ${1:-} in
resolve)
  [ $# -eq 3 ] || { echo "usage: $0 resolve REGISTRY VERSION" >&2; exit 2; }
  ko_env "$2" >/dev/null
  cd "$ROOT"
  "$KO" resolve "${KOFLAGS[@]}" --tags "$3" --image-label "org.opencontainers.image.version=$3" -f -
  ;;
*)
  REGISTRY=${1:-}
  t=$SECONDS
  [ -n "$REGISTRY" ] || local_registry
  ko_env "$REGISTRY"
  cd "$ROOT"
  refs=$("$KO" build "${KOFLAGS[@]}" --tags latest --image-label org.opencontainers.image.version=devel ./cmd/controller ./cmd/ocl-step)
  echo "$refs" | sed -n 's|^\(.*/controller@sha256:.*\)$|controller=\1|p; s|^\(.*/ocl-step@sha256:.*\)$|ocl-step=\1|p'
  flag=()
  if insecure "$REGISTRY"; then flag=(--insecure); fi
  # shellcheck disable=SC2086
  go run ./hack/imagesize "${flag[@]}" $refs
  log "built and pushed in $(( SECONDS - t ))s"
  ;;
esac
