#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl from the Go module
# proxy (wrapper module hack/kube) into the cache, once per version: a second run takes a second.
# Prints the directory holding the binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^require k8s.io\/kubernetes v//p' "$ROOT/hack/kube/go.mod")
OUT=${OCL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ocl-pipelines}/kube-v$VERSION
mkdir -p "$OUT"

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$VERSION \
  -X k8s.io/component-base/version.gitMajor=${VERSION%%.*} \
  -X k8s.io/component-base/version.gitMinor=$(echo "$VERSION" | cut -d. -f2) \
  -X k8s.io/component-base/version.gitTreeState=clean"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  if [ -x "$OUT/$cmd" ]; then
    continue
  fi
  start=$(date +%s)
  echo "build-kube: building $cmd v$VERSION (first time only; several minutes)" >&2
  (cd "$ROOT/hack/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$OUT/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
  mv "$OUT/$cmd.tmp" "$OUT/$cmd"
  echo "build-kube: $cmd built in $(( $(date +%s) - start ))s" >&2
done
echo "$OUT"
