#!/usr/bin/env bash
# Builds the Go binaries of the local test stack other than Kubernetes: etcd, Tekton's
# controller and entrypoint, the tkn CLI and ko, from the Go module proxy (wrapper modules hack/etcd,
# hack/tekton, hack/tkn, hack/ko),
# into the cache, once per version. Prints "<name>=<path>" lines.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${OCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ocl-pipelines}

# build MODULE_DIR PACKAGE OUTPUT
build() {
  local dir=$1 pkg=$2 out=$3 start
  if [ ! -x "$out" ]; then
    mkdir -p "$(dirname "$out")"
    start=$(date +%s)
    echo "build-stack-tools: building $pkg (first time only)" >&2
    (cd "$ROOT/hack/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" "$pkg")
    mv "$out.tmp" "$out"
    echo "build-stack-tools: $pkg built in $(( $(date +%s) - start ))s" >&2
  fi
  echo "$(basename "$out")=$out"
}

ETCD=$(sed -n 's/^require go.etcd.io\/etcd\/server\/v3 //p' "$ROOT/hack/etcd/go.mod")
TEKTON=$(sed -n 's/^require github.com\/tektoncd\/pipeline //p' "$ROOT/hack/tekton/go.mod")
build etcd go.etcd.io/etcd/server/v3 "$CACHE/etcd-$ETCD/etcd"
build tekton github.com/tektoncd/pipeline/cmd/controller "$CACHE/tekton-$TEKTON/controller"
build tekton github.com/tektoncd/pipeline/cmd/entrypoint "$CACHE/tekton-$TEKTON/entrypoint"
TKN=$(sed -n 's/^require github.com\/tektoncd\/cli //p' "$ROOT/hack/tkn/go.mod")
build tkn github.com/tektoncd/cli/cmd/tkn "$CACHE/tkn-$TKN/tkn"
KOV=$(sed -n 's/^require github.com\/google\/ko //p' "$ROOT/hack/ko/go.mod")
build ko github.com/google/ko "$CACHE/ko-$KOV/ko"
