#!/usr/bin/env bash
# `make demo`: the main job on one machine. Starts the local stack of real components if needed
# (test/stack), applies examples/minimal.yaml (pointed at the stack's registry), and follows
# the loop: the controller's PipelineRun, each stage in a real pod, the image pushed, verified and
# promoted through the pool's MachineConfig. Ends with the commands a user runs next.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
stack() { (cd "$ROOT" && go run ./test/stack/cmd "$@"); }
stack up
eval "$(stack env)"
say() { printf '\n== %s\n' "$*"; }

say "a namespace for the PoolImage, with the build ServiceAccount, the controller's Secret access and a push secret for the stack's registry"
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n demo create serviceaccount ocl-build --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n demo create rolebinding ocl-pipelines-secrets --clusterrole=ocl-pipelines-secrets \
  --serviceaccount=ocl-pipelines:ocl-pipelines-controller --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n demo create secret docker-registry push --docker-server="$OCL_REGISTRY" \
  --docker-username=demo --docker-password=demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null

say "examples/minimal.yaml, pushing to $OCL_REGISTRY"
sed -e 's/namespace: ocl-pipelines/namespace: demo/' \
  -e "s#registry.example.com/os/worker:latest#$OCL_REGISTRY/os/worker:latest#" \
  -e 's/name: push-credentials/name: push/' "$ROOT/examples/minimal.yaml" | tee /dev/stderr | kubectl apply -f -

say "the controller starts one PipelineRun once the inputs are quiet for the quiet period"
start=$SECONDS
until run=$(kubectl -n demo get poolimage worker -o jsonpath='{.status.latestBuild.pipelineRun}' 2>/dev/null) && [ -n "$run" ]; do
  (( SECONDS - start < 120 )) || { echo "no PipelineRun after 120s"; kubectl -n demo get poolimage worker -o yaml; exit 1; }
  sleep 1
done
echo "PipelineRun $run"

say "each stage runs in a real pod"
kubectl -n demo wait poolimage/worker --for=condition=Ready --timeout=300s >/dev/null || {
  kubectl -n demo get poolimage worker -o yaml
  exit 1
}
kubectl -n demo get taskruns -l tekton.dev/pipelineRun="$run"
tkn pipelinerun logs "$run" -n demo

say "the image is promoted through the pool's MachineConfig"
kubectl -n demo get poolimage worker
kubectl get machineconfig -l layering.ocl-pipelines.dev/pool=worker \
  -o custom-columns=MACHINECONFIG:.metadata.name,OSIMAGEURL:.spec.osImageURL
echo "built in $(( SECONDS - start ))s"

say "next"
cat <<NEXT
  eval \$(go run ./test/stack/cmd env)
  kubectl -n demo get poolimages
  kubectl -n demo get poolimage worker -o yaml          # status.latestBuild: inputs, image, failure
  tkn pipelinerun logs $run -n demo                     # tkn from the stack (its env)
  kubectl -n demo logs $run-build-pod --all-containers  # the build task's steps
  make down                                             # stop the stack
NEXT
