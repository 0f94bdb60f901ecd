#!/usr/bin/env bash
# Builds the Go binaries of the local test stack other than Kubernetes: etcd, Tekton's
# controller and entrypoint, the tkn CLI and ko (and, when named, golangci-lint for make lint),
# from the Go module proxy (wrapper modules hack/etcd, hack/tekton, hack/tkn, hack/ko,
# hack/golangci-lint), into the cache, once per version. Prints "<name>=<path>" lines.
#
#	hack/build-stack-tools.sh                  # the stack's tools
#	hack/build-stack-tools.sh golangci-lint    # only the named ones
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

# version MODULE_DIR MODULE: the version the wrapper module requires.
version() { sed -n "s|^require $2 ||p" "$ROOT/hack/$1/go.mod"; }

# The stack's tools by default; or only the named ones (etcd, tekton, tkn, ko, golangci-lint).
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(etcd tekton tkn ko)
for tool in "${wanted[@]}"; do
  case $tool in
  etcd) build etcd go.etcd.io/etcd/server/v3 "$CACHE/etcd-$(version etcd go.etcd.io/etcd/server/v3)/etcd" ;;
  tekton)
    v=$(version tekton github.com/tektoncd/pipeline)
    build tekton github.com/tektoncd/pipeline/cmd/controller "$CACHE/tekton-$v/controller"
    build tekton github.com/tektoncd/pipeline/cmd/entrypoint "$CACHE/tekton-$v/entrypoint"
    ;;
  tkn) build tkn github.com/tektoncd/cli/cmd/tkn "$CACHE/tkn-$(version tkn github.com/tektoncd/cli)/tkn" ;;
  ko) build ko github.com/google/ko "$CACHE/ko-$(version ko github.com/google/ko)/ko" ;;
  golangci-lint)
    build golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint \
      "$CACHE/golangci-lint-$(version golangci-lint github.com/golangci/golangci-lint/v2)/golangci-lint"
    ;;
  *) echo "build-stack-tools: unknown tool $tool" >&2; exit 1 ;;
  esac
done
