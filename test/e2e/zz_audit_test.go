//go:build e2e

package e2e

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ocl-pipelines/ocl-pipelines/test/stack"
)

// TestControllerRBACFromAudit reads the API server's audit log of the controller's
// ServiceAccount (hack/stack/audit-policy.yaml, read by test/stack) after the other tests of this package (Go runs
// files in name order: zz_ makes this one last). The controller ran as that ServiceAccount with the
// RBAC of config/, so: none of its requests was forbidden, and the calls the tests drove through
// every main path (build, supersede, promote, upgrade, revert, leader election, events, config)
// were all made, by that identity. Secrets were only ever requested per namespace, and in the
// namespace without a RoleBinding they were refused. The calls of rarer paths (get a PipelineRun after
// AlreadyExists, delete runs beyond retention, re-read a PoolImage after a status conflict,
// patch a repeated event) are logged when they happen; test/manifests maps each to its code.
func TestControllerRBACFromAudit(t *testing.T) {
	if !cluster.Local() {
		t.Skip("needs the local API server's audit log")
	}
	const sa = stack.ControllerUser
	seen := map[string]int{}
	var forbidden, clusterSecrets []string
	lockedRefusals, uninstallRefusals := 0, 0
	n := 0
	skipped, err := cluster.Audit(0, func(e stack.AuditEvent) {
		if e.User.Username != sa {
			return
		}
		n++
		if e.ObjectRef != nil && e.ObjectRef.Resource == "secrets" && e.ObjectRef.Namespace == "" {
			clusterSecrets = append(clusterSecrets, e.Verb+" "+e.RequestURI)
		}
		if e.ResponseStatus != nil && e.ResponseStatus.Code == 403 {
			// TestSecretsNeedARoleBinding's namespace has no RoleBinding until the test adds it;
			// TestUninstall deletes the controller's RBAC while it still runs.
			if duringUninstall(e.Received) {
				uninstallRefusals++
			} else if e.ObjectRef != nil && e.ObjectRef.Resource == "secrets" && e.ObjectRef.Namespace == lockedNamespace {
				lockedRefusals++
			} else {
				forbidden = append(forbidden, e.Verb+" "+e.RequestURI)
			}
		}
		if e.ObjectRef == nil {
			return
		}
		res := e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			res += "/" + e.ObjectRef.Subresource
		}
		g := e.ObjectRef.APIGroup
		if g == "" {
			g = "core"
		}
		seen[e.Verb+" "+g+"/"+res]++
	})
	if err != nil {
		t.Fatal(err)
	}
	if skipped > 1 { // the last line may be half written
		t.Errorf("%d lines of the audit log are not events", skipped)
	}
	if n == 0 {
		t.Fatalf("no request of %s in the audit log: the controller did not run as its ServiceAccount", sa)
	}
	for _, r := range forbidden {
		t.Errorf("forbidden by the RBAC of config/: %s", r)
	}
	for _, r := range clusterSecrets {
		t.Errorf("a cluster-wide request for Secrets: %s (the controller reads them per namespace)", r)
	}
	if lockedRefusals == 0 {
		t.Errorf("no refused Secret request in %s: the controller read that namespace's Secrets before it was granted them", lockedNamespace)
	}
	var calls []string
	for k, v := range seen {
		calls = append(calls, k+" ×"+strconv.Itoa(v))
	}
	sort.Strings(calls)
	t.Logf("%d requests as %s (%d refused while TestUninstall had deleted the release):\n%s", n, sa, uninstallRefusals, strings.Join(calls, "\n"))
	for _, want := range []string{
		// No "list": against this API server (1.35) client-go's informers stream their initial
		// state with a watch (watch-list, authorized as watch); list is their fallback on API
		// servers without it, which is why the ClusterRole keeps it.
		"watch layering.ocl-pipelines.dev/poolimages",
		"patch layering.ocl-pipelines.dev/poolimages", "update layering.ocl-pipelines.dev/poolimages/status",
		"create tekton.dev/pipelineruns", "patch tekton.dev/pipelineruns", "watch tekton.dev/taskruns",
		"get tekton.dev/pipelines", "create tekton.dev/pipelines",
		"create machineconfiguration.openshift.io/machineconfigs", "update machineconfiguration.openshift.io/machineconfigs",
		"delete machineconfiguration.openshift.io/machineconfigs",
		"watch machineconfiguration.openshift.io/machineconfigpools", "patch machineconfiguration.openshift.io/machineconfigpools",
		"watch machineconfiguration.openshift.io/controllerconfigs",
		"watch core/secrets", "watch core/configmaps", "watch core/nodes", "create core/events",
		"get core/configmaps", "get coordination.k8s.io/leases", "create coordination.k8s.io/leases", "update coordination.k8s.io/leases",
	} {
		if seen[want] == 0 {
			t.Errorf("the e2e run never made %q as the controller: the path that needs it was not exercised, or the rule is unused", want)
		}
	}
}
