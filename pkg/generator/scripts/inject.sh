#!/usr/bin/env bash
# inject: prepare the build context and stage what RUN steps may mount.
# Every input arrives as an environment variable set from a Tekton parameter; nothing in this
# script is substituted by Tekton. Secret contents are copied to a memory-backed volume outside
# the build context and are never printed.
set -euo pipefail
shopt -s nullglob
# The step that started last names a failed build task's step in the report. The file is
# replaced, not truncated: an earlier step may have written it as another user.
rm -f "$RESULT_LAST_STEP"
printf '%s' inject > "$RESULT_LAST_STEP"

work=${OCL_WORKDIR:-/workspace/ocl}
ctx="$work/context"
mounts=${OCL_SECRETS_DIR:-/var/run/ocl-secrets}
mkdir -p "$ctx" "$mounts"

echo "inject: MachineConfigPool ${POOL}, inputs ${INPUTS_HASH}"
printf '%s' "$CONTAINERFILE_BASE64" | base64 -d > "$ctx/Containerfile"
echo "inject: Containerfile of $(wc -l < "$ctx/Containerfile") lines staged; the build step prints it"

# stage NAME BOUND SOURCE TARGET: copy the files of a mounted Secret or ConfigMap so buildah can
# bind them read-only into RUN steps (a copy avoids relabelling a read-only volume).
stage() {
  local name=$1 bound=$2 src=$3 target=$4 n=0 f
  if [ "$bound" != "true" ]; then
    echo "inject: ${name}: not configured"
    return 0
  fi
  mkdir -p "$mounts/$name"
  for f in "$src"/*; do
    if [ -f "$f" ]; then
      cp -L "$f" "$mounts/$name/"
      n=$((n + 1))
    fi
  done
  chmod -R a+rX "$mounts/$name"
  echo "inject: ${name}: ${n} file(s), mounted read-only at ${target} during RUN steps"
}
stage entitlement "$ENTITLEMENT_BOUND" "$ENTITLEMENT_PATH" /etc/pki/entitlement
stage activation-key "$ACTIVATION_KEY_BOUND" "$ACTIVATION_KEY_PATH" /run/secrets/rhsm-activation
stage yum-repos "$YUM_REPOS_BOUND" "$YUM_REPOS_PATH" /etc/yum.repos.d
stage rpm-gpg "$RPM_GPG_BOUND" "$RPM_GPG_PATH" /etc/pki/rpm-gpg

# Registry credentials for buildah: the base pull secret and the push secret, each as its own
# auth file; containers/image consults both (XDG_RUNTIME_DIR first, then HOME/.docker).
# stage_auth NAME BOUND SOURCE DEST
stage_auth() {
  local name=$1 bound=$2 src=$3 dest=$4
  if [ "$bound" != "true" ]; then
    return 0
  fi
  if [ ! -f "$src/.dockerconfigjson" ]; then
    echo "inject: FAILED: the ${name} Secret has no .dockerconfigjson key; it must be of type kubernetes.io/dockerconfigjson" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dest")"
  cp -L "$src/.dockerconfigjson" "$dest"
  echo "inject: ${name} credentials staged"
}
stage_auth base-pull-secret "$BASE_PULL_SECRET_BOUND" "$BASE_PULL_SECRET_PATH" "$mounts/xdg/containers/auth.json"
stage_auth push-secret "$PUSH_SECRET_BOUND" "$PUSH_SECRET_PATH" "$mounts/home/.docker/config.json"

if [ "$TRUSTED_CA_BOUND" = "true" ]; then
  if [ ! -f "$TRUSTED_CA_PATH/$TRUSTED_CA_KEY" ]; then
    echo "inject: FAILED: the trusted CA ConfigMap has no key ${TRUSTED_CA_KEY}" >&2
    exit 1
  fi
  # The bundle RUN steps and buildah trust: this image's system bundle (the injected bundle of
  # OpenShift carries it already; a bundle of only the cluster's CAs would not) and the
  # ConfigMap's. Mounted, not baked in: the MCO writes the cluster's trust bundle onto nodes.
  mkdir -p "$mounts/trusted-ca"
  {
    for system in /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/certs/ca-certificates.crt; do
      if [ -f "$system" ]; then
        cat "$system"
        break
      fi
    done
    cat "$TRUSTED_CA_PATH/$TRUSTED_CA_KEY"
  } > "$mounts/trusted-ca/tls-ca-bundle.pem"
  chmod -R a+rX "$mounts/trusted-ca"
  echo "inject: trust bundle staged, mounted read-only at /etc/pki/ca-trust/extracted/pem during RUN steps"
fi
echo "inject: build context ready"
