#!/usr/bin/env bash
# shellcheck disable=SC2154 # BIN_* come from the eval of build-stack-tools.sh's output
# The local stack of real components:
#   registry (docker-registry) · etcd · kube-apiserver (RBAC) · kube-controller-manager ·
#   kube-scheduler · one node (containerd + runc + kubelet + kube-proxy, in the network namespace
#   ocl-node) · the Tekton controller · the MCO CRDs with a seeded worker pool and a
#   ControllerConfig on the stand-in base image · our release, as a user installs it: the images
#   built by ko and pushed to the stack's registry, dist/release.yaml applied (hack/release.sh),
#   the controller running as its Deployment (2 replicas, leader election) on the node, audited
#   by the API server. OCL_CONTROLLER=process runs the controller as a host process instead
#   (under the Deployment's ServiceAccount token, the Deployment scaled to 0), for debugging.
# Network: etcd and the controllers' metrics listen on 127.0.0.1; the node lives in a network
# namespace this script creates, joined to the host by a veth pair (10.200.0.1 on the host side,
# 10.200.0.2 on the node), where the registry and the API server listen, so that the node pulls
# images and the API server reaches the kubelet (kubectl logs, tkn logs). Pods get 10.244.0.0/24;
# Services 10.96.0.0/16, routed to the node, where kube-proxy (iptables) serves them.
#
#   hack/stack.sh up      start everything not running yet (idempotent), print timings
#   hack/stack.sh api     only etcd, the API server (on 127.0.0.1), the CRDs and config/ (test/bench/scale)
#   hack/stack.sh down    stop every process and remove the state directory
#   hack/stack.sh leader  print the controller pod that leads (CONTROLLER=deployment)
#   hack/stack.sh overlay DIR RELEASE   write the stack's kustomize overlay of RELEASE into DIR
#   hack/stack.sh env     print the environment to talk to the stack (KUBECONFIG, OCL_REGISTRY, kubectl and tkn on PATH)
#
# Addresses and ports are fixed (10.200.0.1:5000 registry, 10.200.0.1:6443 API server,
# 127.0.0.1:2379 etcd, kubelet 10.200.0.2:10250): one stack per machine at a time. OCL_STACK_DIR
# (default /tmp/ocl-stack) holds all its state; `down` removes it, the namespace, veth and route.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${OCL_STACK_DIR:-${TMPDIR:-/tmp}/ocl-stack}
HOST_IP=10.200.0.1
NODE_IP=10.200.0.2
NETNS=ocl-node
REGISTRY_ADDR=$HOST_IP:5000
APISERVER_ADDR=$HOST_IP
APISERVER_PORT=${OCL_APISERVER_PORT:-6443}
ETCD_PORT=${OCL_ETCD_PORT:-2379}
KUBECONFIG_FILE=$STATE/kubeconfig
TOKEN=ocl-stack-admin-token
# The controller: the release's Deployment (default) or a host process.
CONTROLLER=${OCL_CONTROLLER:-deployment}
# The version the stack's release carries (hack/release.sh).
STACK_VERSION=v0.0.0-stack

log() { printf '%s stack: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# running NAME: whether the process recorded for NAME is alive.
running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

# start NAME CMD...: start a background process logging to $STATE/NAME.log.
start() {
  local name=$1
  shift
  if running "$name"; then
    log "$name already running"
    return 0
  fi
  "$@" >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

# wait_for WHAT TIMEOUT CMD...: poll CMD until it succeeds; fail with the log tail otherwise.
wait_for() {
  local what=$1 timeout=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start > timeout )); then
      log "FAILED: $what not ready after ${timeout}s; last log lines:"
      tail -n 20 "$STATE/$what.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  log "$what ready in $(( SECONDS - start ))s"
}

kubectl_() { "$KUBE/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# network: the node's namespace, the veth pair and the route to the pods (idempotent).
network() {
  ip netns list | grep -qw "$NETNS" || ip netns add "$NETNS"
  if ! ip link show ocl-h >/dev/null 2>&1; then
    ip link add ocl-h type veth peer name ocl-n
    ip link set ocl-n netns "$NETNS"
    ip addr add "$HOST_IP/24" dev ocl-h
    ip link set ocl-h up
    ip netns exec "$NETNS" ip addr add "$NODE_IP/24" dev ocl-n
    ip netns exec "$NETNS" ip link set ocl-n up
    ip netns exec "$NETNS" ip link set lo up
    ip netns exec "$NETNS" ip route add default via "$HOST_IP"
  fi
  ip route replace 10.244.0.0/24 via "$NODE_IP"
  ip route replace 10.96.0.0/16 via "$NODE_IP"
}


# node: containerd and the kubelet in the node's namespace, state under $STATE/node.
node() {
  local n=$STATE/node pause
  pause=$(sed -n 's/^pause=//p' "$STATE/images.env")
  mkdir -p "$n/cni" "$n/kubelet" "$n/pod-logs"
  cat >"$n/containerd.toml" <<EOF
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
[grpc]
  address = "$n/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$n/cni"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY_ADDR"]
    endpoint = ["http://$REGISTRY_ADDR"]
EOF
  cat >"$n/cni/10-ocl.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "ocl", "plugins": [
  {"type": "bridge", "bridge": "ocl-cni0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$n/cni-ipam"}},
  {"type": "loopback"}]}
EOF
  cat >"$n/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$n/containerd.sock
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
podLogsDir: $n/pod-logs
resolvConf: ""
EOF
  # nsenter --net joins the node's network namespace only (`ip netns exec` would also remount
  # /sys, hiding the cgroup mounts the kubelet and containerd need). It execs its command, so
  # the recorded pid is the daemon's.
  start containerd nsenter --net="/var/run/netns/$NETNS" containerd --config "$n/containerd.toml"
  wait_for containerd 30 test -S "$n/containerd.sock"
  start kubelet nsenter --net="/var/run/netns/$NETNS" "$KUBE/kubelet" --config "$n/kubelet.yaml" --kubeconfig "$KUBECONFIG_FILE" \
    --root-dir "$n/kubelet" --hostname-override ocl-node --node-ip "$NODE_IP"
  wait_for kubelet 60 kubectl_ get node ocl-node
  kubectl_ label node ocl-node node-role.kubernetes.io/worker= --overwrite >/dev/null
  wait_for kubelet 60 kubectl_ wait --for=condition=Ready node/ocl-node --timeout=1s
  # kube-proxy: Services (the API server's, the controller's metrics) for pods and the host.
  # conntrack-max-per-core 0 leaves the host's conntrack table size alone.
  start kube-proxy nsenter --net="/var/run/netns/$NETNS" "$KUBE/kube-proxy" --kubeconfig "$KUBECONFIG_FILE" \
    --hostname-override ocl-node --proxy-mode iptables --cluster-cidr 10.244.0.0/16 --conntrack-max-per-core 0 \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
  wait_for kube-proxy 60 grep -q 'Caches are synced' "$STATE/kube-proxy.log"
}

# images: the node's and the pipeline's images and the stand-in RHCOS images, in the registry.
images() {
  if [ -s "$STATE/images.env" ] && [ -s "$STATE/standin.txt" ]; then
    return 0
  fi
  local t=$SECONDS
  mkdir -p "$STATE/images"
  export CONTAINERS_STORAGE_CONF=$STATE/images/storage.conf
  printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' "$STATE/images/graph" "$STATE/images/run" >"$CONTAINERS_STORAGE_CONF"
  "$ROOT/test/images/build-stack-images.sh" "$REGISTRY_ADDR" >"$STATE/images.env.tmp" 2>"$STATE/images.log"
  "$ROOT/test/images/build-standin-images.sh" "$REGISTRY_ADDR" 1 >"$STATE/standin.txt.tmp" 2>>"$STATE/images.log"
  mv "$STATE/images.env.tmp" "$STATE/images.env"
  grep . "$STATE/standin.txt.tmp" >"$STATE/standin.txt"
  rm -f "$STATE/standin.txt.tmp"
  log "images built and pushed in $(( SECONDS - t ))s"
}

# prepare: the state directory, the Debian packages and the cached binaries (KUBE, BIN_*).
prepare() {
  mkdir -p "$STATE"
  "$ROOT/hack/install-packages.sh"
  KUBE=$("$ROOT/hack/build-kube.sh")
  eval "$("$ROOT/hack/build-stack-tools.sh" | sed 's/^\([a-z]*\)=/BIN_\1=/')"
}

# control_plane: etcd and the API server (RBAC, ServiceAccount tokens, an audit log of the
# controller's ServiceAccount), and the admin kubeconfig. ENDPOINTS: lease (the API server
# publishes itself as the kubernetes Service's endpoint, for pods) or none (on 127.0.0.1).
control_plane() {
  start etcd "$BIN_etcd" --data-dir "$STATE/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))"
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

  mkdir -p "$STATE/pki"
  [ -f "$STATE/pki/sa.key" ] || openssl genrsa -out "$STATE/pki/sa.key" 2048 2>/dev/null
  [ -f "$STATE/pki/sa.pub" ] || openssl rsa -in "$STATE/pki/sa.key" -pubout -out "$STATE/pki/sa.pub" 2>/dev/null
  echo "$TOKEN,ocl-admin,ocl-admin,system:masters" >"$STATE/pki/tokens.csv"
  start kube-apiserver "$KUBE/kube-apiserver" --bind-address="$APISERVER_ADDR" --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --cert-dir="$STATE/pki" --token-auth-file="$STATE/pki/tokens.csv" \
    --authorization-mode=Node,RBAC --service-account-key-file="$STATE/pki/sa.pub" \
    --service-account-signing-key-file="$STATE/pki/sa.key" --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true --endpoint-reconciler-type="$ENDPOINTS" \
    --kubelet-preferred-address-types=InternalIP \
    --audit-policy-file="$ROOT/hack/stack/audit-policy.yaml" --audit-log-path="$STATE/audit.log" --audit-log-format=json
  cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: ocl, cluster: {server: "https://$APISERVER_ADDR:$APISERVER_PORT", insecure-skip-tls-verify: true}}]
users: [{name: ocl-admin, user: {token: $TOKEN}}]
contexts: [{name: ocl, context: {cluster: ocl, user: ocl-admin}}]
current-context: ocl
EOF
  wait_for kube-apiserver 60 kubectl_ get --raw /readyz
}

# crds: Tekton's, the MCO's pool/config/controllerconfig, ours, and a stand-in PrometheusRule CRD.
crds() {
  local tekton api mco
  tekton=$("$ROOT/hack/moddir.sh" -C "$ROOT/hack/tekton" github.com/tektoncd/pipeline)
  api=$("$ROOT/hack/moddir.sh" github.com/openshift/api)
  mco=$api/machineconfiguration/v1/zz_generated.crd-manifests
  kubectl_ apply --server-side -f "$tekton/config/300-crds/" >/dev/null
  kubectl_ apply --server-side -f "$mco/0000_80_machine-config_01_machineconfigpools-SelfManagedHA.crd.yaml" \
    -f "$mco/0000_80_machine-config_01_machineconfigs.crd.yaml" \
    -f "$mco/0000_80_machine-config_01_controllerconfigs-Default.crd.yaml" \
    -f "$api/config/v1/zz_generated.crd-manifests/0000_00_cluster-version-operator_01_clusterversions-Default.crd.yaml" >/dev/null
  kubectl_ apply --server-side -f "$ROOT/config/300-poolimage.yaml" -f "$ROOT/hack/stack/prometheusrule-crd.yaml" >/dev/null
  kubectl_ wait --for condition=established --timeout=60s crd --all >/dev/null
  log "CRDs established"
}

# install: our release as a user installs it (CONTROLLER=deployment), or config/ with the
# Deployment scaled to 0 and the controller's kubeconfig (its ServiceAccount's token) for a host
# process (CONTROLLER=process, and the api mode).
install() {
  # Once: a later `up` (a controller restart) keeps the settings tests changed since.
  if ! kubectl_ -n ocl-pipelines get deployment ocl-pipelines-controller >/dev/null 2>&1; then
    # OpenShift's openshift-config namespace with a stand-in global pull secret: credentials for
    # the stack's registry only (config/ binds a Role there; FirstBootPullable reads it).
    kubectl_ create namespace openshift-config --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
    kubectl_ -n openshift-config create secret docker-registry pull-secret --docker-server="$REGISTRY_ADDR" \
      --docker-username=node --docker-password=stand-in --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
    if [ "$CONTROLLER" = deployment ]; then
      # The release: images built by ko, pushed to the stack's registry, pinned by digest;
      # installed through a kustomize overlay, as a user keeps their settings across upgrades.
      local t=$SECONDS
      OCL_PLATFORMS=linux/$(go env GOARCH) "$ROOT/hack/release.sh" "$STACK_VERSION" "$REGISTRY_ADDR/ocl-pipelines" "$STATE/release.yaml" 2>>"$STATE/images.log" ||
        { log "FAILED: the release; last lines of $STATE/images.log:"; tail -n 30 "$STATE/images.log" >&2; return 1; }
      log "release $STACK_VERSION built and pushed in $(( SECONDS - t ))s"
      overlay "$STATE/install" "$STATE/release.yaml"
      kubectl_ apply --server-side -k "$STATE/install" >/dev/null
    else
      kubectl_ apply --server-side -k "$ROOT/hack/stack" >/dev/null
      kubectl_ -n ocl-pipelines patch configmap config-ocl-pipelines --type merge -p \
        "{\"data\": {\"buildah-image\": \"$img_buildah\", \"tools-image\": \"$img_tools\", \"tls-verify\": \"false\"}}" >/dev/null
    fi
  fi
  [ "$CONTROLLER" = deployment ] && return 0
  # The host process runs with the Deployment's ServiceAccount token: the RBAC of config/ is
  # what it gets, and the API server audits its requests ($STATE/audit.log).
  local token
  [ -s "$STATE/controller.kubeconfig" ] || {
    token=$(kubectl_ -n ocl-pipelines create token ocl-pipelines-controller --duration=48h)
    cat >"$STATE/controller.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: ocl, cluster: {server: "https://$APISERVER_ADDR:$APISERVER_PORT", insecure-skip-tls-verify: true}}]
users: [{name: ocl-pipelines-controller, user: {token: $token}}]
contexts: [{name: ocl, context: {cluster: ocl, user: ocl-pipelines-controller}}]
current-context: ocl
EOF
  }
}

# overlay DIR RELEASE: the stack's settings over a release, as a kustomize overlay in DIR: the
# stack's buildah image (quay.io cannot be reached) and its registry (plain HTTP). An upgrade
# applies the overlay of the next release the same way (test/e2e TestControllerUpgrade).
overlay() {
  local dir=$1 release=$2 buildah
  buildah=$(sed -n 's/^buildah=//p' "$STATE/images.env")
  mkdir -p "$dir"
  cp "$release" "$dir/release.yaml"
  cat >"$dir/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [release.yaml]
patches:
  - target: {kind: ConfigMap, name: config-ocl-pipelines}
    patch: |-
      - {op: replace, path: /data/buildah-image, value: "$buildah"}
      - {op: replace, path: /data/tls-verify, value: "false"}
EOF
}

# controller: our controller running: the Deployment rolled out and a leader elected, or the
# host process started.
controller() {
  if [ "$CONTROLLER" = deployment ]; then
    # A rollout and a leader: a replica holds the lease of the PoolImage reconciler's bucket.
    if ! wait_for controller 300 kubectl_ -n ocl-pipelines rollout status deployment/ocl-pipelines-controller --timeout=2s ||
      ! wait_for controller 120 leader; then
      kubectl_ -n ocl-pipelines get pods -o wide >&2 || true
      kubectl_ -n ocl-pipelines get events --sort-by=.lastTimestamp >&2 || true
      kubectl_ -n ocl-pipelines logs -l app.kubernetes.io/name=ocl-pipelines-controller --tail=30 --prefix >&2 || true
      tail -n 30 "$STATE/images.log" >&2 || true
      return 1
    fi
    return 0
  fi
  (cd "$ROOT" && go build -o "$STATE/ocl-controller" ./cmd/controller)
  start ocl-controller env METRICS_PROMETHEUS_HOST=127.0.0.1 METRICS_PROMETHEUS_PORT=9092 PROFILING_PORT=18009 \
    "$STATE/ocl-controller" --kubeconfig="$STATE/controller.kubeconfig" --health-probes=false \
    --kube-api-qps=50 --kube-api-burst=100
  wait_for ocl-controller 60 grep -q 'Starting controllers' "$STATE/ocl-controller.log"
}

# leader: prints the pod holding the PoolImage reconciler's lease; fails while none does (no
# holder, or a lease not renewed within its duration: its holder is gone).
leader() {
  local holder renew duration
  read -r holder renew duration < <(kubectl_ -n ocl-pipelines get lease -o \
    jsonpath='{range .items[*]}{.spec.holderIdentity} {.spec.renewTime} {.spec.leaseDurationSeconds}{"\n"}{end}' |
    grep '^ocl-pipelines-controller-' | head -1) || return 1
  [ -n "$holder" ] && [ -n "$renew" ] && (( $(date -d "$renew" +%s) + duration >= $(date +%s) )) || return 1
  echo "${holder%%_*}"
}

up() {
  local t0=$SECONDS
  ENDPOINTS=lease
  prepare

  # Registry on loopback, no auth.
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $STATE/registry-data}, delete: {enabled: true}}
http: {addr: $REGISTRY_ADDR}
EOF
  network
  start registry docker-registry serve "$STATE/registry.yml"
  wait_for registry 30 curl -fsS "http://$REGISTRY_ADDR/v2/"
  images
  local img_entrypoint img_shell img_buildah img_tools base ext
  img_entrypoint=$(sed -n 's/^entrypoint=//p' "$STATE/images.env")
  img_shell=$(sed -n 's/^shell=//p' "$STATE/images.env")
  img_buildah=$(sed -n 's/^buildah=//p' "$STATE/images.env")
  img_tools=$(sed -n 's/^tools=//p' "$STATE/images.env")
  base=$(sed -n 1p "$STATE/standin.txt")
  ext=$(sed -n 2p "$STATE/standin.txt")

  control_plane

  start kube-controller-manager "$KUBE/kube-controller-manager" --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --service-account-private-key-file="$STATE/pki/sa.key" --root-ca-file="$STATE/pki/apiserver.crt" \
    --use-service-account-credentials=true --leader-elect=false --bind-address=127.0.0.1 --secure-port=10257
  start kube-scheduler "$KUBE/kube-scheduler" --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10259
  wait_for kube-controller-manager 60 kubectl_ get serviceaccount default -n default
  node

  crds
  local tekton
  tekton=$("$ROOT/hack/moddir.sh" -C "$ROOT/hack/tekton" github.com/tektoncd/pipeline)

  # Tekton's namespace and ConfigMaps, and its controller (no webhook: the API server cannot reach it here).
  kubectl_ apply -f "$tekton/config/100-namespace/" >/dev/null
  for cm in "$tekton"/config/config-*.yaml; do kubectl_ apply -f "$cm" >/dev/null; done
  start tekton-controller env SYSTEM_NAMESPACE=tekton-pipelines KUBERNETES_MIN_VERSION=v1.28.0 \
    CONFIG_DEFAULTS_NAME=config-defaults CONFIG_LOGGING_NAME=config-logging CONFIG_OBSERVABILITY_NAME=config-observability \
    CONFIG_FEATURE_FLAGS_NAME=feature-flags CONFIG_LEADERELECTION_NAME=config-leader-election-controller \
    CONFIG_SPIRE=config-spire METRICS_DOMAIN=tekton.dev/pipeline \
    METRICS_PROMETHEUS_HOST=127.0.0.1 METRICS_PROMETHEUS_PORT=9091 PROFILING_PORT=18008 \
    "$BIN_controller" --kubeconfig="$KUBECONFIG_FILE" --disable-ha \
    -entrypoint-image="$img_entrypoint" -nop-image="$img_entrypoint" \
    -sidecarlogresults-image="$img_entrypoint" -workingdirinit-image="$img_entrypoint" \
    -shell-image="$img_shell" -shell-image-win="$img_shell"
  wait_for tekton-controller 60 grep -q '"Starting controllers' "$STATE/tekton-controller.log"

  # The seeded cluster: a worker pool and the ControllerConfig of a stand-in release.
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfigPool
metadata: {name: worker}
spec:
  machineConfigSelector: {matchLabels: {machineconfiguration.openshift.io/role: worker}}
  nodeSelector: {matchLabels: {node-role.kubernetes.io/worker: ""}}
EOF
  # Created, not applied: the CRD requires nullable fields that client-side apply would drop.
  kubectl_ get controllerconfig machine-config-controller >/dev/null 2>&1 || kubectl_ create -f - >/dev/null <<EOF
{"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "ControllerConfig",
 "metadata": {"name": "machine-config-controller"},
 "spec": {"baseOSContainerImage": "$base", "baseOSExtensionsContainerImage": "$ext", "osImageURL": "$base",
  "releaseImage": "$REGISTRY_ADDR/standin/release:1", "additionalTrustBundle": null, "cloudProviderCAData": null,
  "cloudProviderConfig": "", "clusterDNSIP": "10.96.0.10", "images": {}, "ipFamilies": "IPv4",
  "dns": {"apiVersion": "config.openshift.io/v1", "kind": "DNS", "spec": {}},
  "infra": {"apiVersion": "config.openshift.io/v1", "kind": "Infrastructure", "spec": {}},
  "kubeAPIServerServingCAData": "c3RhbmQtaW4=", "rootCAData": "c3RhbmQtaW4=",
  "network": {"mtuMigration": null}, "proxy": null}}
EOF

  install
  controller
  log "up in $(( SECONDS - t0 ))s; KUBECONFIG=$KUBECONFIG_FILE"
}

# api: only etcd, the API server, the CRDs and config/ on 127.0.0.1 (no node, Tekton or
# controller): what test/bench/scale runs the controller against, completing runs itself.
api() {
  local t0=$SECONDS
  prepare
  APISERVER_ADDR=127.0.0.1 ENDPOINTS=none CONTROLLER=process
  control_plane
  crds
  local img_buildah=quay.io/buildah/stable:v1.41.4 img_tools=ghcr.io/ocl-pipelines/ocl-step:v0.1.0
  install
  log "api up in $(( SECONDS - t0 ))s; KUBECONFIG=$KUBECONFIG_FILE"
}

down() {
  local n=$STATE/node
  if running containerd; then
    # Stop every container the node runs before containerd itself.
    for id in $(ctr --address "$n/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$n/containerd.sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
  fi
  for name in ocl-controller tekton-controller kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver containerd etcd registry; do
    if running "$name"; then
      kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
      for _ in $(seq 100); do running "$name" || break; sleep 0.1; done
      if running "$name"; then kill -9 "$(cat "$STATE/$name.pid")" 2>/dev/null || true; fi
      log "$name stopped"
    fi
  done
  pkill -9 -f "containerd-shim.*$n/containerd.sock" 2>/dev/null || true
  # Unmount what the kubelet and containerd mounted under the state directory, deepest first.
  { grep -o " ${STATE}[^ ]*" /proc/mounts 2>/dev/null || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  ip route del 10.244.0.0/24 via "$NODE_IP" 2>/dev/null || true
  ip route del 10.96.0.0/16 via "$NODE_IP" 2>/dev/null || true
  ip netns del "$NETNS" 2>/dev/null || true
  ip link del ocl-h 2>/dev/null || true
  rm -rf "$STATE"
}

case ${1:-} in
up) up ;;
api) api ;;
down) down ;;
overlay) overlay "$2" "$3" ;;
leader) KUBE=$("$ROOT/hack/build-kube.sh") && leader ;;
env)
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  echo "export OCL_REGISTRY=$REGISTRY_ADDR"
  echo "export PATH=$("$ROOT/hack/build-kube.sh"):$(dirname "$("$ROOT/hack/build-stack-tools.sh" | sed -n 's/^tkn=//p')"):\$PATH"
  ;;
*)
  echo "usage: $0 up|api|down|env|leader|overlay DIR RELEASE" >&2
  exit 2
  ;;
esac
