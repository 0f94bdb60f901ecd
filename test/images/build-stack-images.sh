#!/usr/bin/env bash
# Builds the images the local stack's node runs and pushes them to REGISTRY, from what this
# machine has (no image can be pulled from outside):
#   ocl/pause       the pods' sandbox (test/images/pause)
#   ocl/busybox     Tekton's shell image (scripts are placed with it)
#   tekton/entrypoint  Tekton's entrypoint at /ko-app/entrypoint (hack/build-stack-tools.sh)
#   ocl/buildah     the BUILDAH_IMAGE step image: Debian's buildah and bash with their libraries,
#                   busybox for the coreutils the scripts use, containers configuration
#   ocl/tools       the TOOLS_IMAGE step image: ocl-step (cmd/ocl-step)
# Prints NAME=REGISTRY/REPO@DIGEST lines. buildah storage comes from CONTAINERS_STORAGE_CONF.
#
# Usage: build-stack-images.sh REGISTRY
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REGISTRY=$1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
b() { buildah --storage-driver vfs "$@"; }

# push NAME REPO CONTAINER: commit, push, print NAME=REF@DIGEST.
push() {
  local name=$1 repo=$2 c=$3
  b commit -q --rm "$c" "$REGISTRY/$repo:stack" >/dev/null
  b push -q --tls-verify=false --digestfile "$WORK/digest" "$REGISTRY/$repo:stack" "docker://$REGISTRY/$repo:stack"
  echo "$name=$REGISTRY/$repo@$(cat "$WORK/digest")"
}

# with_busybox CONTAINER: busybox and its applets (sh, env, base64, cp, ...).
with_busybox() {
  b copy "$1" "$(command -v busybox || echo /bin/busybox)" /bin/busybox >/dev/null
  b run --isolation=chroot "$1" -- /bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
  b run --isolation=chroot "$1" -- /bin/busybox --install -s
}

# copy_with_libs CONTAINER BINARY...: a dynamic binary with the shared libraries it loads.
copy_with_libs() {
  local c=$1 bin lib
  shift
  for bin in "$@"; do
    b copy "$c" "$bin" "$bin" >/dev/null
    for lib in $(ldd "$bin" | grep -o '/[^ ]*' | sort -u); do
      b copy "$c" "$lib" "$lib" >/dev/null
    done
  done
}

CGO_ENABLED=0 go -C "$ROOT" build -trimpath -o "$WORK/pause" ./test/images/pause
CGO_ENABLED=0 go -C "$ROOT" build -trimpath -o "$WORK/ocl-step" ./cmd/ocl-step
ENTRYPOINT=$("$ROOT/hack/build-stack-tools.sh" | sed -n 's/^entrypoint=//p')

c=$(b from scratch)
b copy "$c" "$WORK/pause" /pause >/dev/null
b config --entrypoint '["/pause"]' "$c"
push pause ocl/pause "$c"

c=$(b from scratch)
with_busybox "$c"
b config --cmd '["/bin/sh"]' --env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$c"
push shell ocl/busybox "$c"

c=$(b from scratch)
b copy "$c" "$ENTRYPOINT" /ko-app/entrypoint >/dev/null
b config --entrypoint '["/ko-app/entrypoint"]' "$c"
push entrypoint tekton/entrypoint "$c"

c=$(b from scratch)
with_busybox "$c"
copy_with_libs "$c" "$(command -v buildah)" /bin/bash
mkdir -p "$WORK/etc/containers"
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$WORK/etc/containers/policy.json"
printf 'unqualified-search-registries = []\n[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REGISTRY" >"$WORK/etc/containers/registries.conf"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$WORK/etc/passwd"
printf 'root:x:0:\n' >"$WORK/etc/group"
b copy "$c" "$WORK/etc" /etc >/dev/null
b run --isolation=chroot "$c" -- /bin/mkdir -p /var/tmp /tmp /root /var/lib/containers /usr/bin
b run --isolation=chroot "$c" -- /bin/ln -sf /bin/bash /usr/bin/bash
b config --env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin --env BUILDAH_ISOLATION=chroot "$c"
push buildah ocl/buildah "$c"

c=$(b from scratch)
b copy "$c" "$WORK/ocl-step" /usr/local/bin/ocl-step >/dev/null
b config --env PATH=/usr/local/bin:/usr/bin:/bin "$c"
push tools ocl/tools "$c"
