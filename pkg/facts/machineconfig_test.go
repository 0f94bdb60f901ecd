package facts_test

import (
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
)

// TestMachineConfigName: the name fits the API's limit for any pool name, stays distinct for
// distinct pools, and sorts the worker pool's MachineConfig before custom pools' ones (the MCO
// merges by name, the last one wins).
func TestMachineConfigName(t *testing.T) {
	long := strings.Repeat("p", 250)
	if n := facts.MachineConfigName(long); len(n) > 253 || !strings.HasPrefix(n, "zz-ocl-1-") || n == facts.MachineConfigName(long+"q") {
		t.Errorf("MachineConfigName of a long pool = %q", n)
	}
	if facts.MachineConfigName("worker") >= facts.MachineConfigName("infra") {
		t.Error("the worker MachineConfig must sort before custom pools' ones")
	}
}

// TestMachineConfigLabels: labels are derived from any satisfiable machineConfigSelector, and an
// unsatisfiable one is refused with the fix.
func TestMachineConfigLabels(t *testing.T) {
	pool := func(exprs ...metav1.LabelSelectorRequirement) *mcfgv1.MachineConfigPool {
		return &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: "infra"},
			Spec: mcfgv1.MachineConfigPoolSpec{MachineConfigSelector: &metav1.LabelSelector{MatchExpressions: exprs}}}
	}
	labels, err := facts.MachineConfigLabels(pool(
		metav1.LabelSelectorRequirement{Key: "a", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"x"}},
		metav1.LabelSelectorRequirement{Key: "b", Operator: metav1.LabelSelectorOpExists}))
	if err != nil {
		t.Fatalf("NotIn + Exists selector: %v", err)
	}
	if _, ok := labels["b"]; !ok || labels["a"] == "x" {
		t.Errorf("labels %v do not satisfy a NotIn (x), b Exists", labels)
	}
	_, err = facts.MachineConfigLabels(pool(
		metav1.LabelSelectorRequirement{Key: "a", Operator: metav1.LabelSelectorOpDoesNotExist},
		metav1.LabelSelectorRequirement{Key: "a", Operator: metav1.LabelSelectorOpExists}))
	if err == nil || !strings.Contains(err.Error(), "give the selector matchLabels") {
		t.Errorf("unsatisfiable selector: %v", err)
	}
}
