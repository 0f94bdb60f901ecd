#!/usr/bin/env bash
# The local stack of real components (issue 4), on loopback:
#   registry (docker-registry) · etcd · kube-apiserver (RBAC) · kube-controller-manager ·
#   kube-scheduler · the Tekton controller · the MCO CRDs with a seeded worker pool and a
#   ControllerConfig on the stand-in base image · our CRD, ConfigMaps and controller.
# Not yet: the node (containerd + kubelet in a network namespace), so build pods stay Pending.
#
#   hack/stack.sh up      start everything not running yet (idempotent), print timings
#   hack/stack.sh down    stop every process and remove the state directory
#   hack/stack.sh env     print the environment to talk to the stack (KUBECONFIG, OCL_REGISTRY, kubectl on PATH)
#
# The ports are fixed (registry 5000, etcd 2379/2380, apiserver 6443, Tekton metrics 9091, ours
# 9092): one stack per machine at a time; OCL_STACK_DIR (default /tmp/ocl-stack) holds its state.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${OCL_STACK_DIR:-${TMPDIR:-/tmp}/ocl-stack}
REGISTRY_ADDR=${OCL_REGISTRY:-127.0.0.1:5000}
APISERVER_PORT=${OCL_APISERVER_PORT:-6443}
ETCD_PORT=${OCL_ETCD_PORT:-2379}
KUBECONFIG_FILE=$STATE/kubeconfig
TOKEN=ocl-stack-admin-token

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

up() {
  local t0=$SECONDS
  mkdir -p "$STATE"
  "$ROOT/hack/install-packages.sh"
  KUBE=$("$ROOT/hack/build-kube.sh")
  eval "$("$ROOT/hack/build-stack-tools.sh" | sed 's/^\([a-z]*\)=/BIN_\1=/')"

  # Registry on loopback, no auth.
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $STATE/registry-data}, delete: {enabled: true}}
http: {addr: $REGISTRY_ADDR}
EOF
  start registry docker-registry serve "$STATE/registry.yml"
  wait_for registry 30 curl -fsS "http://$REGISTRY_ADDR/v2/"

  start etcd "$BIN_etcd" --data-dir "$STATE/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))"
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

  mkdir -p "$STATE/pki"
  [ -f "$STATE/pki/sa.key" ] || openssl genrsa -out "$STATE/pki/sa.key" 2048 2>/dev/null
  [ -f "$STATE/pki/sa.pub" ] || openssl rsa -in "$STATE/pki/sa.key" -pubout -out "$STATE/pki/sa.pub" 2>/dev/null
  echo "$TOKEN,ocl-admin,ocl-admin,system:masters" >"$STATE/pki/tokens.csv"
  start kube-apiserver "$KUBE/kube-apiserver" --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --cert-dir="$STATE/pki" --token-auth-file="$STATE/pki/tokens.csv" \
    --authorization-mode=Node,RBAC --service-account-key-file="$STATE/pki/sa.pub" \
    --service-account-signing-key-file="$STATE/pki/sa.key" --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true --endpoint-reconciler-type=none
  cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: ocl, cluster: {server: "https://127.0.0.1:$APISERVER_PORT", insecure-skip-tls-verify: true}}]
users: [{name: ocl-admin, user: {token: $TOKEN}}]
contexts: [{name: ocl, context: {cluster: ocl, user: ocl-admin}}]
current-context: ocl
EOF
  wait_for kube-apiserver 60 kubectl_ get --raw /readyz

  start kube-controller-manager "$KUBE/kube-controller-manager" --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --service-account-private-key-file="$STATE/pki/sa.key" --root-ca-file="$STATE/pki/apiserver.crt" \
    --use-service-account-credentials=true --leader-elect=false --bind-address=127.0.0.1 --secure-port=10257
  start kube-scheduler "$KUBE/kube-scheduler" --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10259
  wait_for kube-controller-manager 60 kubectl_ get serviceaccount default -n default

  # CRDs: Tekton's, the MCO's pool/config/controllerconfig, ours.
  local tekton mco
  tekton=$(cd "$ROOT/hack/tekton" && go list -m -f '{{.Dir}}' github.com/tektoncd/pipeline)
  mco=$(cd "$ROOT" && go list -m -f '{{.Dir}}' github.com/openshift/api)/machineconfiguration/v1/zz_generated.crd-manifests
  kubectl_ apply --server-side -f "$tekton/config/300-crds/" >/dev/null
  kubectl_ apply --server-side -f "$mco/0000_80_machine-config_01_machineconfigpools-SelfManagedHA.crd.yaml" \
    -f "$mco/0000_80_machine-config_01_machineconfigs.crd.yaml" \
    -f "$mco/0000_80_machine-config_01_controllerconfigs-Default.crd.yaml" >/dev/null
  kubectl_ apply --server-side -f "$ROOT/config/300-poolimage.yaml" >/dev/null
  kubectl_ wait --for condition=established --timeout=60s crd --all >/dev/null
  log "CRDs established"

  # Tekton's namespace and ConfigMaps, and its controller (no webhook: the API server cannot reach it here).
  kubectl_ apply -f "$tekton/config/100-namespace/" >/dev/null
  for cm in "$tekton"/config/config-*.yaml; do kubectl_ apply -f "$cm" >/dev/null; done
  start tekton-controller env SYSTEM_NAMESPACE=tekton-pipelines KUBERNETES_MIN_VERSION=v1.28.0 \
    CONFIG_DEFAULTS_NAME=config-defaults CONFIG_LOGGING_NAME=config-logging CONFIG_OBSERVABILITY_NAME=config-observability \
    CONFIG_FEATURE_FLAGS_NAME=feature-flags CONFIG_LEADERELECTION_NAME=config-leader-election-controller \
    CONFIG_SPIRE=config-spire METRICS_DOMAIN=tekton.dev/pipeline \
    METRICS_PROMETHEUS_HOST=127.0.0.1 METRICS_PROMETHEUS_PORT=9091 PROFILING_PORT=18008 \
    "$BIN_controller" --kubeconfig="$KUBECONFIG_FILE" --disable-ha \
    -entrypoint-image="$REGISTRY_ADDR/tekton/entrypoint:stack" -nop-image="$REGISTRY_ADDR/tekton/nop:stack" \
    -sidecarlogresults-image="$REGISTRY_ADDR/tekton/nop:stack" -workingdirinit-image="$REGISTRY_ADDR/tekton/nop:stack" \
    -shell-image="$REGISTRY_ADDR/tekton/shell:stack" -shell-image-win="$REGISTRY_ADDR/tekton/shell:stack"
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
  local base=${OCL_STACK_BASE_IMAGE:-$REGISTRY_ADDR/standin/rhcos@sha256:0000000000000000000000000000000000000000000000000000000000000000}
  # Created, not applied: the CRD requires nullable fields that client-side apply would drop.
  kubectl_ get controllerconfig machine-config-controller >/dev/null 2>&1 || kubectl_ create -f - >/dev/null <<EOF
{"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "ControllerConfig",
 "metadata": {"name": "machine-config-controller"},
 "spec": {"baseOSContainerImage": "$base", "baseOSExtensionsContainerImage": "", "osImageURL": "$base",
  "releaseImage": "$REGISTRY_ADDR/standin/release:1", "additionalTrustBundle": null, "cloudProviderCAData": null,
  "cloudProviderConfig": "", "clusterDNSIP": "10.96.0.10", "images": {}, "ipFamilies": "IPv4",
  "dns": {"apiVersion": "config.openshift.io/v1", "kind": "DNS", "spec": {}},
  "infra": {"apiVersion": "config.openshift.io/v1", "kind": "Infrastructure", "spec": {}},
  "kubeAPIServerServingCAData": "c3RhbmQtaW4=", "rootCAData": "c3RhbmQtaW4=",
  "network": {"mtuMigration": null}, "proxy": null}}
EOF

  # Our namespace, ConfigMaps and controller.
  kubectl_ create namespace ocl-pipelines --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
  kubectl_ apply -f "$ROOT/config/400-config-logging.yaml" -f "$ROOT/config/400-config-observability.yaml" \
    -f "$ROOT/config/400-config-leader-election.yaml" -f "$ROOT/config/400-config-ocl-pipelines.yaml" >/dev/null
  (cd "$ROOT" && go build -o "$STATE/ocl-controller" ./cmd/controller)
  start ocl-controller env METRICS_PROMETHEUS_HOST=127.0.0.1 METRICS_PROMETHEUS_PORT=9092 PROFILING_PORT=18009 \
    "$STATE/ocl-controller" --kubeconfig="$KUBECONFIG_FILE" --disable-ha --health-probes=false
  wait_for ocl-controller 60 grep -q 'Starting controllers' "$STATE/ocl-controller.log"
  log "up in $(( SECONDS - t0 ))s; KUBECONFIG=$KUBECONFIG_FILE"
}

down() {
  for name in ocl-controller tekton-controller kube-scheduler kube-controller-manager kube-apiserver etcd registry; do
    if running "$name"; then
      kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
      for _ in $(seq 50); do running "$name" || break; sleep 0.1; done
      running "$name" && kill -9 "$(cat "$STATE/$name.pid")" 2>/dev/null || true
      log "$name stopped"
    fi
  done
  rm -rf "$STATE"
}

case ${1:-} in
up) up ;;
down) down ;;
env)
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  echo "export OCL_REGISTRY=$REGISTRY_ADDR"
  echo "export PATH=$("$ROOT/hack/build-kube.sh"):\$PATH"
  ;;
*)
  echo "usage: $0 up|down|env" >&2
  exit 2
  ;;
esac
