package facts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
)

const dump = `apiVersion: v1
kind: List
items:
- apiVersion: machineconfiguration.openshift.io/v1
  kind: MachineConfigPool
  metadata: {name: worker}
  spec:
    machineConfigSelector: {matchLabels: {machineconfiguration.openshift.io/role: worker}}
    nodeSelector: {matchLabels: {node-role.kubernetes.io/worker: ""}}
- apiVersion: v1
  kind: Node
  metadata: {name: w0, labels: {node-role.kubernetes.io/worker: "", kubernetes.io/arch: arm64}}
---
apiVersion: v1
kind: Secret
metadata: {name: push, namespace: ocl}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: eyJhdXRocyI6e319}
`

// TestLoad: a List and a second document are read, a Secret keeps its type but not its data, and
// a kind that is no fact is refused with the kinds that are.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(dump), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := facts.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := objs.Source("ocl")
	if p, _ := src.Pool("worker"); p == nil || p.Spec.NodeSelector == nil {
		t.Errorf("pool worker = %+v", p)
	}
	if n, _ := src.Nodes(); len(n) != 1 || n[0].Labels["kubernetes.io/arch"] != "arm64" {
		t.Errorf("nodes = %+v", n)
	}
	s, _ := src.Secret("push")
	if s == nil || s.Type != "kubernetes.io/dockerconfigjson" || len(s.Data) != 0 || len(s.StringData) != 0 {
		t.Errorf("secret = %+v, want its type and no data", s)
	}
	if s, _ := objs.Source("other").Secret("push"); s != nil {
		t.Errorf("a Secret of namespace ocl is found in namespace other")
	}
	err = objs.Decode("pods.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"))
	if err == nil || !strings.Contains(err.Error(), `kind "Pod"`) || !strings.Contains(err.Error(), "MachineConfigPool") {
		t.Errorf("a Pod: %v", err)
	}
}
