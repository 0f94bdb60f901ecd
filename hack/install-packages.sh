#!/usr/bin/env bash
# Installs the Debian packages the tests need, idempotently: a second run changes nothing and
# takes well under a second. Needs root (as on the project's machines and CI).
set -euo pipefail

# command:package pairs (or /path:package); a package is installed only when what it provides is
# missing. The integration tests need buildah, skopeo, the registry and busybox; the stack
# (test/stack) needs containerd, runc, the CNI plugins, iproute2, nsenter, openssl and curl;
# make lint needs shellcheck.
wanted=(buildah:buildah skopeo:skopeo docker-registry:docker-registry busybox:busybox-static runc:runc
  containerd:containerd ctr:containerd /usr/lib/cni/bridge:containernetworking-plugins ip:iproute2
  nsenter:util-linux openssl:openssl curl:curl iptables:iptables shellcheck:shellcheck)
missing=()
for pair in "${wanted[@]}"; do
  what=${pair%%:*} pkg=${pair#*:}
  case $what in
  /*) [ -e "$what" ] && continue ;;
  *) { command -v "$what" || [ -x "/usr/bin/$what" ] || [ -x "/usr/sbin/$what" ] || [ -x "/sbin/$what" ]; } >/dev/null 2>&1 && continue ;;
  esac
  [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-packages: missing ${missing[*]}; run as root or install them: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "install-packages: installing ${missing[*]}"
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# crun must not be installed next to buildah: buildah would pick it and fail on this kernel's
# cgroup layout ("cgroups in hybrid mode not supported").
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if dpkg -s crun >/dev/null 2>&1; then
  apt-get remove -y -qq crun >/dev/null
fi
echo "install-packages: done in $(( $(date +%s) - start ))s"
