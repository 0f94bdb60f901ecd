package manifests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/metrics"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

const (
	root         = "../.."
	namespace    = "ocl-pipelines"
	controllerSA = "ocl-pipelines-controller"
)

type object struct {
	file string
	u    *unstructured.Unstructured
	raw  []byte
}

// load returns the objects of config/kustomization.yaml's resources, in order (what
// `kubectl kustomize config/` renders: the kustomization has no transformers).
func load(t *testing.T) []object {
	t.Helper()
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &k, yaml.DisallowUnknownFields); err != nil {
		t.Fatalf("kustomization.yaml: %v (this test renders resources only; teach it any transformer you add)", err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "config", "*.yaml"))
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(k.Resources, base) {
			t.Errorf("config/%s is not listed in config/kustomization.yaml: kubectl apply -k would skip it", base)
		}
	}
	var out []object
	for _, r := range k.Resources {
		b, err := os.ReadFile(filepath.Join(root, "config", r))
		if err != nil {
			t.Fatalf("kustomization resource %s: %v", r, err)
		}
		for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			u := &unstructured.Unstructured{}
			j, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			if err := u.UnmarshalJSON(j); err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			out = append(out, object{file: r, u: u, raw: j})
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func find(t *testing.T, objs []object, kind, ns, name string, into any) {
	t.Helper()
	for _, o := range objs {
		if o.u.GetKind() == kind && o.u.GetNamespace() == ns && o.u.GetName() == name {
			if into != nil {
				if err := yaml.Unmarshal(o.raw, into); err != nil {
					t.Fatalf("%s %s: %v", kind, name, err)
				}
			}
			return
		}
	}
	t.Fatalf("config/ has no %s %s/%s", kind, ns, name)
}

// Every object an install needs is there, namespaced ones in the controller's namespace.
func TestInstallHasEveryObject(t *testing.T) {
	objs := load(t)
	want := []struct{ kind, ns, name string }{
		{"Namespace", "", namespace},
		{"ServiceAccount", namespace, controllerSA},
		{"ServiceAccount", namespace, "ocl-build"},
		{"ClusterRole", "", "ocl-pipelines-controller"},
		{"ClusterRole", "", "ocl-pipelines-build"},
		{"Role", namespace, "ocl-pipelines-controller"},
		{"ClusterRoleBinding", "", "ocl-pipelines-controller"},
		{"RoleBinding", namespace, "ocl-pipelines-controller"},
		{"RoleBinding", namespace, "ocl-pipelines-build"},
		{"ClusterRole", "", "ocl-pipelines-secrets"},
		{"RoleBinding", namespace, "ocl-pipelines-secrets"},
		{"CustomResourceDefinition", "", "poolimages.layering.ocl-pipelines.dev"},
		{"ConfigMap", namespace, "config-ocl-pipelines"},
		{"ConfigMap", namespace, "config-logging"},
		{"ConfigMap", namespace, "config-observability"},
		{"ConfigMap", namespace, "config-leader-election-ocl-pipelines"},
		{"Deployment", namespace, "ocl-pipelines-controller"},
		{"Service", namespace, "ocl-pipelines-controller-metrics"},
		{"PrometheusRule", namespace, "ocl-pipelines"},
	}
	for _, w := range want {
		find(t, objs, w.kind, w.ns, w.name, nil)
	}
	for _, o := range objs {
		clusterScoped := slices.Contains([]string{"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}, o.u.GetKind())
		globalPullSecret := o.u.GetName() == "ocl-pipelines-global-pull-secret" && o.u.GetNamespace() == "openshift-config"
		if !clusterScoped && !globalPullSecret && o.u.GetNamespace() != namespace {
			t.Errorf("%s %s in %s: namespace %q, want %q", o.u.GetKind(), o.u.GetName(), o.file, o.u.GetNamespace(), namespace)
		}
		if o.u.GetLabels()["app.kubernetes.io/part-of"] != "ocl-pipelines" && o.u.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s %s has no app.kubernetes.io/part-of=ocl-pipelines label", o.u.GetKind(), o.u.GetName())
		}
	}

	var d appsv1.Deployment
	find(t, objs, "Deployment", namespace, "ocl-pipelines-controller", &d)
	var svc corev1.Service
	find(t, objs, "Service", namespace, "ocl-pipelines-controller-metrics", &svc)
	if d.Spec.Template.Spec.ServiceAccountName != controllerSA {
		t.Errorf("Deployment runs as %q, want %s", d.Spec.Template.Spec.ServiceAccountName, controllerSA)
	}
	// Two replicas (a leader and a standby), a budget that keeps one through a drain, and the
	// image as a ko reference that the release pins by digest (hack/release.sh).
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("Deployment replicas %v, want at least 2 (a standby takes over within the lease)", d.Spec.Replicas)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "ko://github.com/ocl-pipelines/ocl-pipelines/cmd/controller" {
		t.Errorf("controller image %q, want the ko:// reference of cmd/controller", img)
	}
	var pdb policyv1.PodDisruptionBudget
	find(t, objs, "PodDisruptionBudget", namespace, "ocl-pipelines-controller", &pdb)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil || pdb.Spec.Selector == nil {
		t.Errorf("PodDisruptionBudget %+v, want maxUnavailable 1 of the controller's pods (minAvailable would block a drain whose evicted replica cannot move)", pdb.Spec)
	} else {
		for k, v := range pdb.Spec.Selector.MatchLabels {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("PodDisruptionBudget selects %s=%s, which the controller's pods do not carry", k, v)
			}
		}
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("metrics Service selects %s=%s, which the controller's pods do not carry", k, v)
		}
	}
	c := d.Spec.Template.Spec.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["SYSTEM_NAMESPACE"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("SYSTEM_NAMESPACE is not the pod's namespace: %+v", e)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if env["METRICS_PROMETHEUS_PORT"].Value != "9090" || ports["metrics"] != 9090 || svc.Spec.Ports[0].TargetPort.StrVal != "metrics" {
		t.Errorf("metrics port: env %q, container port %d, Service targetPort %v; want 9090 throughout",
			env["METRICS_PROMETHEUS_PORT"].Value, ports["metrics"], svc.Spec.Ports[0].TargetPort)
	}
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("the controller container is not locked down: %+v", sc)
	}
}

// The shipped config-ocl-pipelines parses with the controller's own parser (the same one that
// reads it live), with no key the parser does not know, once the release resolved its ko://
// tools image (hack/release.sh; unresolved, the parser refuses it: controller/config's tests).
func TestConfigMapParses(t *testing.T) {
	objs := load(t)
	var cm corev1.ConfigMap
	find(t, objs, "ConfigMap", namespace, config.Name, &cm)
	if v := cm.Data[config.KeyToolsImage]; !strings.HasPrefix(v, "ko://") {
		t.Errorf("%s = %q: want the ko:// reference of cmd/ocl-step, which the release pins by digest", config.KeyToolsImage, v)
	}
	cm.Data[config.KeyToolsImage] = "registry.example.com/ocl-pipelines/ocl-step@sha256:" + strings.Repeat("0", 64)
	if _, err := config.FromConfigMap(&cm); err != nil {
		t.Fatalf("config/%s does not parse: %v", config.Name, err)
	}
	for k := range cm.Data {
		if !slices.Contains(config.Keys(), k) {
			t.Errorf("config-ocl-pipelines key %q is not read by the controller", k)
		}
	}
	for _, k := range config.Keys() {
		if _, ok := cm.Data[k]; !ok {
			t.Errorf("config-ocl-pipelines does not show key %q with its default", k)
		}
	}
}

// use is one API call the controller makes, with where the code makes it: a file (relative to
// the repository, or "knative.dev/pkg:" + a file of that module) and a pattern in it.
type use struct {
	group, resource, verb string
	namespaced            bool // only in the controller's own namespace (Role)
	file, pattern         string
}

// uses lists every call. TestRBACMatchesCode checks that each is granted, that each RBAC rule
// verb is one of them, that each evidence pattern is in its file, and that every client call
// and informer in controller/ appears here.
var uses = []use{
	// Informers (list + watch), one per injection informer NewController gets.
	{"layering.ocl-pipelines.dev", "poolimages", "list", false, "controller/poolimage/controller.go", `poolimageinformer\.Get\(ctx\)`},
	{"layering.ocl-pipelines.dev", "poolimages", "watch", false, "controller/poolimage/controller.go", `poolimageinformer\.Get\(ctx\)`},
	{"tekton.dev", "pipelineruns", "list", false, "controller/poolimage/controller.go", `pipelineruninformer\.Get\(ctx\)`},
	{"tekton.dev", "pipelineruns", "watch", false, "controller/poolimage/controller.go", `pipelineruninformer\.Get\(ctx\)`},
	{"tekton.dev", "taskruns", "list", false, "controller/poolimage/controller.go", `taskruninformer\.Get\(ctx\)`},
	{"tekton.dev", "taskruns", "watch", false, "controller/poolimage/controller.go", `taskruninformer\.Get\(ctx\)`},
	{"machineconfiguration.openshift.io", "machineconfigpools", "list", false, "controller/poolimage/controller.go", `machineconfigpoolinformer\.Get\(ctx\)`},
	{"machineconfiguration.openshift.io", "machineconfigpools", "watch", false, "controller/poolimage/controller.go", `machineconfigpoolinformer\.Get\(ctx\)`},
	{"machineconfiguration.openshift.io", "machineconfigs", "list", false, "controller/poolimage/controller.go", `machineconfiginformer\.Get\(ctx\)`},
	{"machineconfiguration.openshift.io", "machineconfigs", "watch", false, "controller/poolimage/controller.go", `machineconfiginformer\.Get\(ctx\)`},
	{"machineconfiguration.openshift.io", "controllerconfigs", "list", false, "controller/poolimage/controller.go", `controllerconfiginformer\.Get\(ctx\)`},
	{"machineconfiguration.openshift.io", "controllerconfigs", "watch", false, "controller/poolimage/controller.go", `controllerconfiginformer\.Get\(ctx\)`},
	// Secrets: one informer per namespace that holds PoolImages, granted there by a RoleBinding.
	{"", "secrets", "list", true, "controller/secrets/secrets.go", `informers\.WithNamespace\(namespace\)`},
	{"", "secrets", "watch", true, "controller/secrets/secrets.go", `informers\.WithNamespace\(namespace\)`},
	{"", "configmaps", "list", false, "controller/poolimage/controller.go", `configmapinformer\.Get\(ctx\)`},
	{"", "configmaps", "watch", false, "controller/poolimage/controller.go", `configmapinformer\.Get\(ctx\)`},
	{"", "nodes", "list", false, "controller/poolimage/controller.go", `nodeinformer\.Get\(ctx\)`},
	{"", "nodes", "watch", false, "controller/poolimage/controller.go", `nodeinformer\.Get\(ctx\)`},
	// Writes of the reconciler.
	{"tekton.dev", "pipelineruns", "create", false, "controller/poolimage/runs.go", `PipelineRuns\(pi\.Namespace\)\.Create\(ctx`},
	{"tekton.dev", "pipelineruns", "get", false, "controller/poolimage/runs.go", `PipelineRuns\(pi\.Namespace\)\.Get\(ctx`},
	{"tekton.dev", "taskruns", "create", false, "controller/poolimage/promote.go", `TaskRuns\(pi\.Namespace\)\.Create\(ctx`},
	{"tekton.dev", "taskruns", "delete", false, "controller/poolimage/runs.go", `TaskRuns\(tr\.Namespace\)\.Delete\(ctx`},
	{"tekton.dev", "pipelineruns", "patch", false, "controller/poolimage/runs.go", `PipelineRuns\(pr\.Namespace\)\.Patch\(ctx`},
	{"tekton.dev", "pipelineruns", "delete", false, "controller/poolimage/runs.go", `PipelineRuns\(pr\.Namespace\)\.Delete\(ctx`},
	{"tekton.dev", "pipelines", "get", false, "controller/poolimage/pipelines.go", `client\.Get\(ctx, want\.Name`},
	{"tekton.dev", "pipelines", "create", false, "controller/poolimage/pipelines.go", `client\.Create\(ctx, pl`},
	{"tekton.dev", "pipelines", "patch", false, "controller/poolimage/pipelines.go", `client\.Patch\(ctx, want\.Name`},
	{"tekton.dev", "pipelines", "list", false, "controller/poolimage/pipelines.go", `Pipelines\(namespace\)\.List\(ctx`},
	{"tekton.dev", "pipelines", "delete", false, "controller/poolimage/pipelines.go", `Pipelines\(namespace\)\.Delete\(ctx`},
	{"config.openshift.io", "clusterversions", "list", false, "controller/upgrade/upgrade.go", `Config\(\)\.V1\(\)\.ClusterVersions\(\)`},
	{"config.openshift.io", "clusterversions", "watch", false, "controller/upgrade/upgrade.go", `Config\(\)\.V1\(\)\.ClusterVersions\(\)`},
	{"", "secrets", "get", true, "controller/upgrade/upgrade.go", `Secrets\(c\.pullSecretNS\)\.Get\(ctx, c\.pullSecretName`},
	{"machineconfiguration.openshift.io", "machineconfigpools", "patch", false, "controller/poolimage/hold.go", `MachineConfigPools\(\)\.Patch\(ctx`},
	{"machineconfiguration.openshift.io", "machineconfigs", "create", false, "controller/poolimage/promote.go", `MachineConfigs\(\)\.Create\(ctx`},
	{"machineconfiguration.openshift.io", "machineconfigs", "update", false, "controller/poolimage/promote.go", `MachineConfigs\(\)\.Update\(ctx`},
	{"machineconfiguration.openshift.io", "machineconfigs", "delete", false, "controller/poolimage/promote.go", `MachineConfigs\(\)\.Delete\(ctx`},
	// The generated reconciler: status, finalizers, a re-read on conflict.
	{"layering.ocl-pipelines.dev", "poolimages/status", "update", false, "pkg/client/injection/reconciler/layering/v1alpha1/poolimage/reconciler.go", `updater\.UpdateStatus\(ctx`},
	{"layering.ocl-pipelines.dev", "poolimages", "patch", false, "pkg/client/injection/reconciler/layering/v1alpha1/poolimage/reconciler.go", `patcher\.Patch\(ctx, resourceName, types\.MergePatchType`},
	{"layering.ocl-pipelines.dev", "poolimages", "get", false, "pkg/client/injection/reconciler/layering/v1alpha1/poolimage/reconciler.go", `getter\.Get\(ctx, desired\.Name`},
	{"layering.ocl-pipelines.dev", "poolimages", "patch", false, "controller/poolimage/build.go", `PoolImages\(pi\.Namespace\)\.Patch\(ctx, pi\.Name`},
	{"layering.ocl-pipelines.dev", "poolimages", "get", false, "controller/poolimage/scratch.go", `PoolImages\(pi\.Namespace\)\.Get\(ctx, pi\.Name`},
	// The uninstall guard and its detection (controller/uninstall), on the controller's own
	// objects (resourceNames) but for create, which RBAC cannot limit by name.
	{"", "serviceaccounts", "get", false, "controller/uninstall/uninstall.go", `ServiceAccounts\(g\.ID\.Namespace\)\.Get\(ctx`},
	{"", "serviceaccounts", "update", false, "controller/uninstall/uninstall.go", `ServiceAccounts\(sa\.Namespace\)\.Update\(ctx`},
	{"rbac.authorization.k8s.io", "clusterroles", "get", false, "controller/uninstall/uninstall.go", `roles\.Get\(ctx`},
	{"rbac.authorization.k8s.io", "clusterroles", "create", false, "controller/uninstall/uninstall.go", `roles\.Create\(ctx`},
	{"rbac.authorization.k8s.io", "clusterroles", "update", false, "controller/uninstall/uninstall.go", `roles\.Update\(ctx`},
	{"rbac.authorization.k8s.io", "clusterrolebindings", "get", false, "controller/uninstall/uninstall.go", `bindings\.Get\(ctx`},
	{"rbac.authorization.k8s.io", "clusterrolebindings", "create", false, "controller/uninstall/uninstall.go", `bindings\.Create\(ctx`},
	{"rbac.authorization.k8s.io", "clusterrolebindings", "update", false, "controller/uninstall/uninstall.go", `bindings\.Update\(ctx`},
	{"rbac.authorization.k8s.io", "clusterrolebindings", "delete", false, "controller/uninstall/uninstall.go", `bindings\.Delete\(ctx`},
	{"rbac.authorization.k8s.io", "clusterroles", "delete", false, "controller/uninstall/uninstall.go", `OwnerReferencesPermissionEnforcement admission plugin`},
	{"", "namespaces", "get", false, "controller/uninstall/uninstall.go", `Namespaces\(\)\.Get\(ctx, g\.ID\.Namespace`},
	{"apiextensions.k8s.io", "customresourcedefinitions", "get", false, "controller/uninstall/uninstall.go", `client\.Resource\(o\.gvr\)\.Namespace\(o\.namespace\)\.Get\(ctx, o\.name`},
	// Events (client-go's recorder creates, then patches a repeated event).
	{"", "events", "create", false, "controller/poolimage/reconciler.go", `GetEventRecorder\(ctx\)\.Eventf`},
	{"", "events", "patch", false, "controller/poolimage/reconciler.go", `GetEventRecorder\(ctx\)\.Eventf`},
	// knative's sharedmain in the controller's namespace: its ConfigMaps, leader election.
	{"", "configmaps", "get", true, "knative.dev/pkg:injection/sharedmain/main.go", `ConfigMaps\(system\.Namespace\(\)\)\.Get\(ctx, leaderelection\.ConfigMapName\(\)`},
	{"coordination.k8s.io", "leases", "get", true, "knative.dev/pkg:leaderelection/config.go", `resourcelock\.LeasesResourceLock`},
	{"coordination.k8s.io", "leases", "create", true, "knative.dev/pkg:leaderelection/config.go", `resourcelock\.LeasesResourceLock`},
	{"coordination.k8s.io", "leases", "update", true, "knative.dev/pkg:leaderelection/config.go", `resourcelock\.LeasesResourceLock`},
}

func readEvidence(t *testing.T, file string) string {
	t.Helper()
	path := filepath.Join(root, file)
	if mod, rel, ok := strings.Cut(file, ":"); ok {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
		if err != nil {
			t.Fatalf("locate module %s: %v", mod, err)
		}
		path = filepath.Join(strings.TrimSpace(string(out)), rel)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("evidence file: %v", err)
	}
	return string(b)
}

func rulesOf(t *testing.T, objs []object) (cluster, ns []rbacv1.PolicyRule) {
	var cr rbacv1.ClusterRole
	find(t, objs, "ClusterRole", "", "ocl-pipelines-controller", &cr)
	var r rbacv1.Role
	find(t, objs, "Role", namespace, "ocl-pipelines-controller", &r)
	var crb rbacv1.ClusterRoleBinding
	find(t, objs, "ClusterRoleBinding", "", "ocl-pipelines-controller", &crb)
	var rb rbacv1.RoleBinding
	find(t, objs, "RoleBinding", namespace, "ocl-pipelines-controller", &rb)
	for _, s := range append(crb.Subjects, rb.Subjects...) {
		if s.Kind != "ServiceAccount" || s.Name != controllerSA || s.Namespace != namespace {
			t.Errorf("controller binding subject %+v, want ServiceAccount %s/%s", s, namespace, controllerSA)
		}
	}
	if crb.RoleRef.Name != cr.Name || rb.RoleRef.Name != r.Name || rb.RoleRef.Kind != "Role" {
		t.Errorf("bindings refer to %+v and %+v", crb.RoleRef, rb.RoleRef)
	}
	// The Secrets ClusterRole: bound in the controller's namespace by a RoleBinding, never by a
	// ClusterRoleBinding; its rules count as namespaced.
	var sr rbacv1.ClusterRole
	find(t, objs, "ClusterRole", "", "ocl-pipelines-secrets", &sr)
	var srb rbacv1.RoleBinding
	find(t, objs, "RoleBinding", namespace, "ocl-pipelines-secrets", &srb)
	if srb.RoleRef.Kind != "ClusterRole" || srb.RoleRef.Name != sr.Name || len(srb.Subjects) != 1 ||
		srb.Subjects[0].Name != controllerSA || srb.Subjects[0].Namespace != namespace {
		t.Errorf("RoleBinding ocl-pipelines-secrets: %+v", srb)
	}
	for _, o := range objs {
		if o.u.GetKind() != "ClusterRoleBinding" {
			continue
		}
		var b rbacv1.ClusterRoleBinding
		if err := yaml.Unmarshal(o.raw, &b); err != nil {
			t.Fatal(err)
		}
		if b.RoleRef.Name == sr.Name {
			t.Errorf("ClusterRoleBinding %s grants the Secrets of every namespace: bind %s per namespace", b.Name, sr.Name)
		}
	}
	// The global pull secret's Role (TestGlobalPullSecretRole checks its exact shape): its
	// verbs count as namespaced grants.
	var gr rbacv1.Role
	find(t, objs, "Role", "openshift-config", "ocl-pipelines-global-pull-secret", &gr)
	for _, rule := range gr.Rules {
		rule.ResourceNames = nil
		sr.Rules = append(sr.Rules, rule)
	}
	return cr.Rules, append(r.Rules, sr.Rules...)
}

// Outside the namespaces of PoolImages the controller reads one Secret, the cluster's global pull
// secret, by name; the watch that needs it is in the code.
func TestGlobalPullSecretRole(t *testing.T) {
	objs := load(t)
	var r rbacv1.Role
	find(t, objs, "Role", "openshift-config", "ocl-pipelines-global-pull-secret", &r)
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"pull-secret"}, Verbs: []string{"get", "list", "watch"}}}
	if !equalRules(r.Rules, want) {
		t.Errorf("Role openshift-config/ocl-pipelines-global-pull-secret grants %+v, want exactly %+v", r.Rules, want)
	}
	var b rbacv1.RoleBinding
	find(t, objs, "RoleBinding", "openshift-config", "ocl-pipelines-global-pull-secret", &b)
	if b.RoleRef.Kind != "Role" || b.RoleRef.Name != r.Name || len(b.Subjects) != 1 || b.Subjects[0].Name != controllerSA || b.Subjects[0].Namespace != namespace {
		t.Errorf("RoleBinding openshift-config/ocl-pipelines-global-pull-secret: %+v", b)
	}
	if !regexp.MustCompile(`secrets\.NewPullSecretHosts\(ctx, kubeclient\.Get\(ctx\), secrets\.GlobalPullSecretNamespace, secrets\.GlobalPullSecretName`).
		MatchString(readEvidence(t, "controller/poolimage/controller.go")) {
		t.Error("the controller no longer watches the global pull secret: drop the Role")
	}
}

// No ClusterRole bound cluster-wide grants anything on Secrets.
func TestNoClusterWideSecrets(t *testing.T) {
	objs := load(t)
	bound := map[string]bool{}
	for _, o := range objs {
		if o.u.GetKind() == "ClusterRoleBinding" {
			var b rbacv1.ClusterRoleBinding
			if err := yaml.Unmarshal(o.raw, &b); err != nil {
				t.Fatal(err)
			}
			bound[b.RoleRef.Name] = true
		}
	}
	for _, o := range objs {
		if o.u.GetKind() != "ClusterRole" || !bound[o.u.GetName()] {
			continue
		}
		var r rbacv1.ClusterRole
		if err := yaml.Unmarshal(o.raw, &r); err != nil {
			t.Fatal(err)
		}
		for _, rule := range r.Rules {
			if slices.Contains(rule.Resources, "secrets") {
				t.Errorf("ClusterRole %s, bound cluster-wide, grants %v on secrets", r.Name, rule.Verbs)
			}
		}
	}
}

// No RBAC rule of any role uses a wildcard.
func TestRBACHasNoWildcard(t *testing.T) {
	for _, o := range load(t) {
		if k := o.u.GetKind(); k != "ClusterRole" && k != "Role" {
			continue
		}
		var r rbacv1.ClusterRole
		if err := yaml.Unmarshal(o.raw, &r); err != nil {
			t.Fatal(err)
		}
		for _, rule := range r.Rules {
			for _, list := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames, rule.NonResourceURLs} {
				for _, v := range list {
					if strings.Contains(v, "*") {
						t.Errorf("%s %s: rule %+v uses a wildcard", o.u.GetKind(), o.u.GetName(), rule)
					}
				}
			}
		}
		if o.u.GetName() == "ocl-pipelines-build" {
			want := []rbacv1.PolicyRule{{APIGroups: []string{"security.openshift.io"}, Resources: []string{"securitycontextconstraints"},
				ResourceNames: []string{"privileged"}, Verbs: []string{"use"}}}
			if !equalRules(r.Rules, want) {
				t.Errorf("the build ServiceAccount's role grants %+v; the tasks call no API and need only %+v", r.Rules, want)
			}
		}
	}
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	ja, _ := yaml.Marshal(a)
	jb, _ := yaml.Marshal(b)
	return bytes.Equal(ja, jb)
}

// Every verb the controller's roles grant is a call the code makes, and every call is granted.
func TestRBACMatchesCode(t *testing.T) {
	cluster, ns := rulesOf(t, load(t))
	key := func(g, r, v string, namespaced bool) string {
		return strings.Join([]string{g, r, v, map[bool]string{true: "ns", false: "cluster"}[namespaced]}, " ")
	}
	granted := map[string]bool{}
	for namespaced, rules := range map[bool][]rbacv1.PolicyRule{false: cluster, true: ns} {
		for _, rule := range rules {
			if len(rule.NonResourceURLs) > 0 {
				t.Errorf("unexpected rule shape %+v", rule)
			}
			for _, g := range rule.APIGroups {
				for _, r := range rule.Resources {
					for _, v := range rule.Verbs {
						granted[key(g, r, v, namespaced)] = true
					}
				}
			}
		}
	}
	used := map[string]bool{}
	for _, u := range uses {
		k := key(u.group, u.resource, u.verb, u.namespaced)
		used[k] = true
		// A namespaced call is also granted by a cluster-wide rule.
		if !granted[k] && !granted[key(u.group, u.resource, u.verb, false)] {
			t.Errorf("the code calls %s %s/%s (%s) but no rule grants it", u.verb, u.group, u.resource, u.file)
		}
		if !regexp.MustCompile(u.pattern).MatchString(readEvidence(t, u.file)) {
			t.Errorf("evidence for %s %s/%s is gone: %s no longer matches %q; drop the rule if the call is gone", u.verb, u.group, u.resource, u.file, u.pattern)
		}
	}
	var unused []string
	for k := range granted {
		if !used[k] {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	for _, k := range unused {
		t.Errorf("RBAC grants %q, which no code path uses: remove it (or add the call to uses with its evidence)", k)
	}

	// Every client call and informer in controller/ is in uses (a new call needs its rule).
	files, _ := filepath.Glob(filepath.Join(root, "controller", "*", "*.go"))
	callRE := regexp.MustCompile(`\.(PipelineRuns|TaskRuns|MachineConfigs|MachineConfigPools|ControllerConfigs|PoolImages|Secrets|ConfigMaps|Nodes|Events|Leases)\([^)]*\)\.(Create|Update|UpdateStatus|Patch|Delete|Get|List|Watch)\(ctx`)
	informerRE := regexp.MustCompile(`(\w+)informer\.Get\(ctx\)`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(f)
		for _, m := range callRE.FindAllStringSubmatch(string(b), -1) {
			res, verb := strings.ToLower(m[1]), strings.ToLower(m[2])
			if verb == "updatestatus" {
				res, verb = res+"/status", "update"
			}
			if !slices.ContainsFunc(uses, func(u use) bool { return u.resource == res && u.verb == verb }) {
				t.Errorf("%s calls %s %s; add it to uses and to config/200-clusterrole.yaml", f, verb, res)
			}
		}
		for _, m := range informerRE.FindAllStringSubmatch(string(b), -1) {
			if !slices.ContainsFunc(uses, func(u use) bool { return strings.Contains(u.pattern, m[1]+`informer\.Get`) }) {
				t.Errorf("%s starts the %s informer; add its list and watch to uses and the ClusterRole", f, m[1])
			}
		}
	}
}

// The alerts select metrics the controller exports, and each description says what to run.
func TestAlertsUseExportedMetrics(t *testing.T) {
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert       string            `json:"alert"`
					Expr        string            `json:"expr"`
					Annotations map[string]string `json:"annotations"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	find(t, load(t), "PrometheusRule", namespace, "ocl-pipelines", &rule)

	// The instruments metrics.New creates, as the Prometheus exporter names them.
	// Two PoolImages between them in every state a gauge reports: a failed build of a pool held
	// past its timeout on an old base, and a build pending and running.
	reader := sdkmetric.NewManualReader()
	pi := &v1alpha1.PoolImage{}
	pi.Status.InitializeConditions()
	held := pi.DeepCopy()
	held.Status.CurrentImage = "r/os@sha256:1"
	held.Status.CurrentInputs = &v1alpha1.BuildInputs{BaseImage: "base@sha256:old"}
	held.Status.MarkUpToDate("base@sha256:new")
	held.Status.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: "run", Failure: &v1alpha1.BuildFailure{Task: "build"}}
	held.Status.MarkBuildFailed(held.Status.LatestBuild.Failure)
	held.Status.Hold = &v1alpha1.PoolHold{BaseImage: "base@sha256:new"}
	held.Status.MarkPoolHeld(v1alpha1.ReasonHoldTimeout, "held")
	busy := pi.DeepCopy()
	busy.Status.Pending = &v1alpha1.PendingBuild{InputsHash: "h"}
	busy.Status.MarkBuilding("run")
	rec, err := metrics.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), metrics.Source{
		PoolImages:  func() ([]*v1alpha1.PoolImage, error) { return []*v1alpha1.PoolImage{held, busy}, nil },
		LastSuccess: func(*v1alpha1.PoolImage) time.Time { return time.Unix(1, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec.BuildStarted(ctx, pi, "spec")
	rec.BuildFinished(ctx, pi, metrics.ResultFailed, "Failed", &v1alpha1.BuildFailure{}, pi.CreationTimestamp.Time, pi.CreationTimestamp.Time)
	rec.Superseded(ctx, pi)
	rec.HoldReleasedEarly(ctx, pi, "worker", "HoldTimeout")
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			name := m.Name
			if m.Unit == "s" {
				name += "_seconds"
			}
			if _, ok := m.Data.(metricdata.Sum[int64]); ok {
				name += "_total"
			}
			exported[name] = true
		}
	}
	metricRE := regexp.MustCompile(`ocl_pipelines_\w+`)
	n := 0
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			n++
			for _, m := range metricRE.FindAllString(r.Expr, -1) {
				if !exported[m] {
					t.Errorf("alert %s uses %s, which the controller does not export (exported: %v)", r.Alert, m, exported)
				}
			}
			d := r.Annotations["description"]
			if !strings.Contains(d, "`oc ") && !strings.Contains(d, "`tkn ") {
				t.Errorf("alert %s: the description does not say what to run next: %q", r.Alert, d)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d alerts, want build failed, out of date with the release, held too long, push failed", n)
	}

	// Label values name the pipeline's real tasks and steps, and the push alert every step that
	// fails a push.
	known := map[string]bool{}
	for _, n := range []string{contract.TaskFetchBaseDigest, contract.TaskBuild, contract.TaskVerify, contract.TaskPromote, contract.TaskReport,
		contract.StepInject, contract.StepCheckPush, contract.StepBuild, contract.StepPush} {
		known[n] = true
	}
	labelRE := regexp.MustCompile(`\b(task|step)=~?"([^"]*)"`)
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			steps := map[string]bool{}
			for _, m := range labelRE.FindAllStringSubmatch(r.Expr, -1) {
				for _, v := range strings.Split(m[2], "|") {
					if !known[v] {
						t.Errorf("alert %s selects %s=%q, which is no task or step of the pipeline", r.Alert, m[1], v)
					}
					if m[1] == "step" {
						steps[v] = true
					}
				}
			}
			if r.Alert == "OCLPoolImagePushFailed" && (!steps[contract.StepCheckPush] || !steps[contract.StepPush]) {
				t.Errorf("alert %s selects steps %v, want %s and %s (both fail a push)", r.Alert, steps, contract.StepCheckPush, contract.StepPush)
			}
		}
	}
}
