#!/usr/bin/env bash
# Builds and pushes the STAND-IN images the tests use in place of the real RHCOS images, which
# cannot be pulled here:
#   <registry>/standin/rhcos:<tag>       a tiny "bootable" base: busybox, /usr/lib/os-release, a
#                                        fake kernel and initramfs under /usr/lib/modules/<ver>/,
#                                        the ostree.bootable and containers.bootc labels, and an
#                                        `ostree` that accepts `ostree container commit`
#   <registry>/standin/extensions:<tag>  a stand-in extensions image (/usr/share/rpm-ostree/extensions)
# They have the layout the verify stage checks, not a real OS. Prints the base and extensions
# references pinned by digest, one per line.
#
# Usage: build-standin-images.sh REGISTRY [TAG]   (buildah storage from CONTAINERS_STORAGE_CONF)
set -euo pipefail
registry=$1 tag=${2:-1}
b() { buildah --storage-driver vfs "$@"; }

busybox=$(command -v busybox || echo /bin/busybox)
kver=5.14.0-standin.${tag}

c=$(b from scratch)
trap 'b rm "$c" >/dev/null 2>&1 || true' EXIT
b copy "$c" "$busybox" /bin/busybox >/dev/null
b run --isolation=chroot "$c" -- /bin/busybox --install -s /bin
b run --isolation=chroot "$c" -- /bin/sh -c "
  mkdir -p /usr/lib/modules/${kver} /etc /tmp /var/tmp &&
  printf 'NAME=\"Stand-in Red Hat Enterprise Linux CoreOS\"\nID=rhcos\nVERSION_ID=${tag}\n' > /usr/lib/os-release &&
  echo 'stand-in kernel ${kver}' > /usr/lib/modules/${kver}/vmlinuz &&
  echo 'stand-in initramfs ${kver}' > /usr/lib/modules/${kver}/initramfs.img &&
  mkdir -p /etc/motd.d /etc/yum.repos.d /etc/pki/ca-trust/source/anchors /usr/bin &&
  printf '#!/bin/sh\n# stand-in ostree: accepts the layering commands Containerfiles run\ncase \"\$1 \$2\" in \"container commit\") exit 0;; esac\necho \"stand-in ostree: \$*: not supported\" >&2; exit 1\n' > /usr/bin/ostree &&
  chmod 0755 /usr/bin/ostree"
b config --label ostree.bootable=true --label containers.bootc=1 \
  --label io.openshift.build.versions="machine-os=standin-${tag}" "$c"
b commit -q --rm "$c" "$registry/standin/rhcos:$tag" >/dev/null
trap - EXIT
b push -q --tls-verify=false --digestfile /dev/stdout "$registry/standin/rhcos:$tag" "docker://$registry/standin/rhcos:$tag" \
  | sed "s|^|$registry/standin/rhcos@|"
echo

e=$(b from scratch)
trap 'b rm "$e" >/dev/null 2>&1 || true' EXIT
mkdir -p "${TMPDIR:-/tmp}/standin-ext.$$/usr/share/rpm-ostree/extensions"
echo "stand-in extension package" > "${TMPDIR:-/tmp}/standin-ext.$$/usr/share/rpm-ostree/extensions/standin-extension-${tag}.rpm"
b copy "$e" "${TMPDIR:-/tmp}/standin-ext.$$/" / >/dev/null
rm -rf "${TMPDIR:-/tmp}/standin-ext.$$"
b commit -q --rm "$e" "$registry/standin/extensions:$tag" >/dev/null
trap - EXIT
b push -q --tls-verify=false --digestfile /dev/stdout "$registry/standin/extensions:$tag" "docker://$registry/standin/extensions:$tag" \
  | sed "s|^|$registry/standin/extensions@|"
echo
