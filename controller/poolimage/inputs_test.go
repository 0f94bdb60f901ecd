package poolimage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/internal/cli"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/mco"
)

// TestCLIComputesTheControllersInputs: for every example, `ocl hash --facts DIR` and `ocl
// render --facts DIR`, given the cluster objects the controller reads (written as `oc get -o
// yaml` would), print exactly the inputs hash the controller records in
// status.latestBuild.inputsHash and the PipelineRun it creates, with the cluster's entitlement,
// a default pull secret, yum repositories, a trusted CA bundle, a proxy and the controller's
// ConfigMap among the facts.
func TestCLIComputesTheControllersInputs(t *testing.T) {
	examples, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(examples) < 4 {
		t.Fatalf("examples: %v %v", examples, err)
	}
	for _, example := range examples {
		t.Run(filepath.Base(example), func(t *testing.T) {
			pi := loadPoolImage(t, example)
			objs := clusterFacts(pi)
			cm := objs[len(objs)-1].(*corev1.ConfigMap) // the controller's ConfigMap
			cfg, err := config.FromConfigMap(cm)
			if err != nil {
				t.Fatal(err)
			}

			// The controller, reconciling the PoolImage among those objects.
			env := newTestEnv(t, append([]runtime.Object{pi.DeepCopy()}, objs...), cfg, nil)
			if err := env.reconciler.Reconcile(context.Background(), pi.Namespace+"/"+pi.Name); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			got, err := env.layering.LayeringV1alpha1().PoolImages(pi.Namespace).Get(context.Background(), pi.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.LatestBuild == nil || got.Status.LatestBuild.InputsHash == "" {
				t.Fatalf("the controller started no build: status %+v", got.Status)
			}
			runs, err := env.tekton.TektonV1().PipelineRuns(pi.Namespace).List(context.Background(), metav1.ListOptions{})
			if err != nil || len(runs.Items) != 1 {
				t.Fatalf("runs: %v %v", runs, err)
			}
			run := runs.Items[0]

			// The CLI, with the same objects as files.
			dir := t.TempDir()
			var b bytes.Buffer
			for _, o := range objs {
				y, err := yaml.Marshal(o)
				if err != nil {
					t.Fatal(err)
				}
				b.WriteString("---\n")
				b.Write(y)
			}
			if err := os.WriteFile(filepath.Join(dir, "cluster.yaml"), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			hash := oclOut(t, "hash", "-f", example, "--facts", dir)
			if strings.TrimSpace(hash) != got.Status.LatestBuild.InputsHash {
				t.Errorf("ocl hash = %s, controller's status.latestBuild.inputsHash = %s", strings.TrimSpace(hash), got.Status.LatestBuild.InputsHash)
			}
			pl, rendered, err := cli.SplitRender([]byte(oclOut(t, "render", "-f", example, "--facts", dir, "--trigger", "spec")))
			if err != nil {
				t.Fatal(err)
			}
			created, err := env.tekton.TektonV1().Pipelines(pi.Namespace).Get(context.Background(), pl.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the controller did not create the Pipeline ocl render prints: %v", err)
			}
			if d := cmp.Diff(created.Spec, pl.Spec); d != "" {
				t.Errorf("ocl render's Pipeline differs from the controller's (-controller +ocl):\n%s", d)
			}
			if rendered.Name != run.Name {
				t.Errorf("ocl render names the run %s, the controller %s", rendered.Name, run.Name)
			}
			if d := cmp.Diff(run.Spec, rendered.Spec); d != "" {
				t.Errorf("ocl render's spec differs from the controller's run (-controller +ocl):\n%s", d)
			}
			for k, v := range rendered.Labels {
				if run.Labels[k] != v {
					t.Errorf("label %s: ocl %q, controller %q", k, v, run.Labels[k])
				}
			}
		})
	}
}

// TestCLIFactsChangeTheHash: each fact the CLI reads moves its hash as it moves the
// controller's: the check above would pass if the CLI ignored them all.
func TestCLIFactsChangeTheHash(t *testing.T) {
	example := "../../examples/entitlements.yaml"
	pi := loadPoolImage(t, example)
	hashWith := func(edit func(objs []runtime.Object)) string {
		objs := clusterFacts(pi)
		edit(objs)
		dir := t.TempDir()
		var b bytes.Buffer
		for _, o := range objs {
			y, _ := yaml.Marshal(o)
			b.WriteString("---\n")
			b.Write(y)
		}
		if err := os.WriteFile(filepath.Join(dir, "f.yaml"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return oclOut(t, "hash", "-f", example, "--facts", dir)
	}
	base := hashWith(func([]runtime.Object) {})
	edits := map[string]func(objs []runtime.Object){
		"yum repos": func(objs []runtime.Object) {
			for _, o := range objs {
				if cm, ok := o.(*corev1.ConfigMap); ok && cm.Name == pi.Spec.Entitlements.YumRepos.Name {
					cm.Data["satellite.repo"] += "\n# changed"
				}
			}
		},
		"base image": func(objs []runtime.Object) {
			for _, o := range objs {
				if cc, ok := o.(*mcfgv1.ControllerConfig); ok {
					cc.Spec.BaseOSContainerImage = strings.Replace(cc.Spec.BaseOSContainerImage, "@sha256:1", "@sha256:2", 1)
				}
			}
		},
		"node architecture": func(objs []runtime.Object) {
			for _, o := range objs {
				if n, ok := o.(*corev1.Node); ok {
					n.Labels[corev1.LabelArchStable] = "arm64"
				}
			}
		},
	}
	for name, edit := range edits {
		if got := hashWith(edit); got == base {
			t.Errorf("a change of the %s left ocl hash at %s", name, strings.TrimSpace(got))
		}
	}
}

func oclOut(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("ocl %v: exit %d: %s", args, code, errOut.String())
	}
	return out.String()
}

func loadPoolImage(t *testing.T, path string) *v1alpha1.PoolImage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pi v1alpha1.PoolImage
	if err := yaml.UnmarshalStrict(b, &pi); err != nil {
		t.Fatal(err)
	}
	pi.UID, pi.Generation = "pi-uid", 1
	pi.CreationTimestamp = metav1.NewTime(now)
	pi.SetDefaults(context.Background())
	return &pi
}

// clusterFacts are the objects a cluster holds for pi: the pools (the built-in ones and pi's),
// a node in each, the ControllerConfig with a proxy, every Secret and ConfigMap pi names, the
// namespace's entitlement and default pull secret, a trust bundle, and last the controller's
// ConfigMap (quiet period 0: the controller builds on its first reconcile).
func clusterFacts(pi *v1alpha1.PoolImage) []runtime.Object {
	pool := func(name, arch string) (*mcfgv1.MachineConfigPool, *corev1.Node) {
		sel := map[string]string{"node-role.kubernetes.io/" + name: ""}
		p := &mcfgv1.MachineConfigPool{
			TypeMeta:   metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfigPool"},
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: mcfgv1.MachineConfigPoolSpec{
				MachineConfigSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: mco.RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"worker", name}}}},
				NodeSelector: &metav1.LabelSelector{MatchLabels: sel},
			},
		}
		if name == mco.MasterPool {
			p.Spec.MachineConfigSelector.MatchExpressions[0].Values = []string{name}
		}
		labels := map[string]string{corev1.LabelArchStable: arch}
		for k, v := range sel {
			labels[k] = v
		}
		n := &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
			ObjectMeta: metav1.ObjectMeta{Name: name + "-0", Labels: labels}}
		return p, n
	}
	var objs []runtime.Object
	names := []string{mco.MasterPool, mco.WorkerPool}
	if p := pi.Spec.MachineConfigPool.Name; p != mco.MasterPool && p != mco.WorkerPool {
		names = append(names, p)
	}
	for _, name := range names {
		arch := "amd64"
		if strings.Contains(name, "arm64") {
			arch = "arm64"
		}
		p, n := pool(name, arch)
		objs = append(objs, p, n)
	}
	objs = append(objs, &mcfgv1.ControllerConfig{
		TypeMeta:   metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "ControllerConfig"},
		ObjectMeta: metav1.ObjectMeta{Name: mco.ControllerConfigName},
		Spec: mcfgv1.ControllerConfigSpec{
			BaseOSContainerImage:           "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:1" + strings.Repeat("0", 63),
			BaseOSExtensionsContainerImage: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:3" + strings.Repeat("0", 63),
			Proxy:                          &configv1.ProxyStatus{HTTPProxy: "http://proxy.example.com:3128", NoProxy: ".cluster.local"},
		},
	})
	secret := func(name string, typ corev1.SecretType) *corev1.Secret {
		return &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pi.Namespace}, Type: typ,
			Data: map[string][]byte{"key": []byte("never read")}}
	}
	objs = append(objs, secret(v1alpha1.DefaultEntitlementSecretName, corev1.SecretTypeOpaque),
		secret("global-pull-secret", corev1.SecretTypeDockerConfigJson))
	if r := pi.Spec.PushSecret; r != nil {
		objs = append(objs, secret(r.Name, corev1.SecretTypeDockerConfigJson))
	}
	if r := pi.Spec.BaseImagePullSecret; r != nil && r.Name != "global-pull-secret" {
		objs = append(objs, secret(r.Name, corev1.SecretTypeDockerConfigJson))
	}
	configMap := func(name string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pi.Namespace}, Data: data}
	}
	if e := pi.Spec.Entitlements; e != nil {
		for _, r := range []*v1alpha1.SecretReference{e.Secret, e.ActivationKey, e.RPMGPG} {
			if r != nil && r.Name != v1alpha1.DefaultEntitlementSecretName {
				objs = append(objs, secret(r.Name, corev1.SecretTypeOpaque))
			}
		}
		if e.YumRepos != nil {
			objs = append(objs, configMap(e.YumRepos.Name, map[string]string{"satellite.repo": "[satellite]\nbaseurl=https://satellite.example.com/repo\n"}))
		}
	}
	objs = append(objs, configMap(facts.TrustedCAConfigMapName, map[string]string{"ca-bundle.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}))
	ctrl := configMap(config.Name, map[string]string{config.KeyQuietPeriod: "0s",
		config.KeyToolsImage: "registry.example.com/ocl-step@sha256:" + strings.Repeat("4", 64), config.KeyStorageDriver: "overlay"})
	ctrl.Namespace = "ocl-pipelines"
	return append(objs, ctrl)
}
