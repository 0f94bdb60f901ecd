package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

const base = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:1111111111111111111111111111111111111111111111111111111111111111"

func ocl(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestRender(t *testing.T) {
	out, stderr, code := ocl(t, "", "render", "-f", "../../examples/minimal.yaml", "--base-image", base, "--trigger", "upgrade")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	pl, pr, err := SplitRender([]byte(out))
	if err != nil {
		t.Fatalf("output: %v\n%s", err, out)
	}
	if pr.Labels["tekton.dev/pipeline"] != pl.Name || pl.Name != generator.PipelineNameFor(&pl.Spec) || pl.Namespace != pr.Namespace ||
		pr.Spec.PipelineSpec == nil || generator.PipelineDigest(pr.Spec.PipelineSpec) != generator.PipelineDigest(&pl.Spec) {
		t.Errorf("the run is labelled %q, the Pipeline printed is %s/%s (its spec's name %s); want the run to embed its spec and carry its name",
			pr.Labels["tekton.dev/pipeline"], pl.Namespace, pl.Name, generator.PipelineNameFor(&pl.Spec))
	}
	if pr.Namespace != "ocl-pipelines" || !strings.HasPrefix(pr.Name, "ocl-worker-") || pr.Annotations["layering.ocl-pipelines.dev/trigger"] != "upgrade" {
		t.Errorf("metadata = %+v", pr.ObjectMeta)
	}
	hash, _, _ := ocl(t, "", "hash", "-f", "../../examples/minimal.yaml", "--base-image", base)
	if strings.TrimSpace(hash) != pr.Labels["layering.ocl-pipelines.dev/inputs-hash"] {
		t.Errorf("ocl hash = %q, run label %q", hash, pr.Labels["layering.ocl-pipelines.dev/inputs-hash"])
	}
	cf, _, _ := ocl(t, "", "containerfile", "-f", "../../examples/minimal.yaml", "--base-image", base)
	for _, p := range pr.Spec.Params {
		if p.Name == "CONTAINERFILE_BASE64" {
			b, _ := base64.StdEncoding.DecodeString(p.Value.StringVal)
			if string(b) != cf {
				t.Errorf("ocl containerfile differs from the run's Containerfile")
			}
		}
	}
	in, _ := os.ReadFile("../../examples/minimal.yaml")
	stdinOut, _, code := ocl(t, string(in), "render", "-f", "-", "--base-image", base, "-o", "json", "--trigger", "upgrade")
	if code != 0 || !strings.Contains(stdinOut, `"name": "`+pr.Name+`"`) || !strings.Contains(stdinOut, `"name": "`+pl.Name+`"`) || !strings.Contains(stdinOut, `"kind": "List"`) {
		t.Errorf("render from stdin as JSON: exit %d\n%s", code, stdinOut)
	}
}

func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.yaml", "apiVersion: layering.ocl-pipelines.dev/v1alpha1\nkind: PoolImage\nmetadata: {name: w}\nspec: {machineConfigPool: {name: w}, containerFile: []}\n")
	wrongKind := write("kind.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w}\n")
	bad := write("bad.yaml", "apiVersion: layering.ocl-pipelines.dev/v1alpha1\nkind: PoolImage\nmetadata: {name: w, namespace: ns}\nspec: {machineConfigPool: {name: w}, imagePushSpec: quay.io/os/w, containerfile: [{content: 'RUN true'}]}\n")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "Usage:"},
		{[]string{"deploy"}, 2, `unknown command "deploy"`},
		{[]string{"render", "-f", "../../examples/minimal.yaml"}, 2, "--facts or --base-image is required"},
		{[]string{"render", "-f", unknown, "--base-image", base}, 1, `unknown field "spec.containerFile"`},
		{[]string{"render", "-f", wrongKind, "--base-image", base}, 1, `want apiVersion layering.ocl-pipelines.dev/v1alpha1, kind PoolImage; got apiVersion "v1", kind "ConfigMap"`},
		{[]string{"render", "-f", bad, "--base-image", base}, 1, "ocl render: PoolImage ns/w: invalid value: \"quay.io/os/w\": no tag: spec.imagePushSpec"},
		{[]string{"render", "-f", "../../examples/minimal.yaml", "--base-image", "quay.io/x/rhcos:4.20"}, 1, "not pinned by digest: inputs.baseImage"},
		{[]string{"render", "-f", "../../examples/minimal.yaml", "--base-image", base, "-o", "xml"}, 1, `unknown output format "xml"`},
	}
	for _, tc := range tests {
		_, stderr, code := ocl(t, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("ocl %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

const machineOSConfig = `apiVersion: machineconfiguration.openshift.io/v1
kind: MachineOSConfig
metadata:
  name: worker
spec:
  machineConfigPool:
    name: worker
  imageBuilder:
    imageBuilderType: Job
  renderedImagePushSecret:
    name: push-creds
  renderedImagePushSpec: quay.example.com/os/worker:latest
  baseImagePullSecret:
    name: pull-creds
  containerFile:
  - containerfileArch: NoArch
    content: |
      FROM configs AS final
      RUN dnf install -y tmux && dnf clean all
`

// TestMigrate: ocl migrate prints the PoolImage of a MachineOSConfig: same pool, push spec,
// secrets and Containerfile, in the namespace given, and one that renders.
func TestMigrate(t *testing.T) {
	out, stderr, code := ocl(t, machineOSConfig, "migrate", "-f", "-", "--namespace", "openshift-machine-config-operator")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var pi v1alpha1.PoolImage
	if err := yaml.UnmarshalStrict([]byte(out), &pi); err != nil {
		t.Fatalf("output is not a PoolImage: %v\n%s", err, out)
	}
	if pi.Kind != "PoolImage" || pi.Namespace != "openshift-machine-config-operator" || pi.Spec.MachineConfigPool.Name != "worker" ||
		pi.Spec.ImagePushSpec != "quay.example.com/os/worker:latest" || pi.Spec.PushSecret == nil || pi.Spec.PushSecret.Name != "push-creds" ||
		pi.Spec.BaseImagePullSecret == nil || pi.Spec.BaseImagePullSecret.Name != "pull-creds" ||
		len(pi.Spec.Containerfile) != 1 || !strings.Contains(pi.Spec.Containerfile[0].Content, "dnf install -y tmux") {
		t.Errorf("migrated PoolImage = %+v", pi)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pi.yaml"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := ocl(t, "", "hash", "-f", filepath.Join(dir, "pi.yaml"), "--base-image", base); code != 0 {
		t.Errorf("the migrated PoolImage does not hash: %s", stderr)
	}

	// What cannot be carried over is named.
	bad := strings.Replace(machineOSConfig, "containerfileArch: NoArch", "containerfileArch: MIPS", 1)
	if _, stderr, code := ocl(t, bad, "migrate", "-f", "-"); code != 1 || !strings.Contains(stderr, "spec.containerFile[0].containerfileArch") {
		t.Errorf("a bad architecture: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := ocl(t, strings.Replace(machineOSConfig, "kind: MachineOSConfig", "kind: MachineConfig", 1), "migrate", "-f", "-"); code != 1 || !strings.Contains(stderr, "kind MachineOSConfig") {
		t.Errorf("another kind: exit %d, stderr %q", code, stderr)
	}
}

// TestFactsRefusesFlagsItReplaces: --facts and a flag giving the same fact is an error naming
// the flag, not a silent choice of one.
func TestFactsRefusesFlagsItReplaces(t *testing.T) {
	_, stderr, code := ocl(t, "", "hash", "-f", "../../examples/minimal.yaml", "--facts", t.TempDir(), "--base-image", base)
	if code != 2 || !strings.Contains(stderr, "--base-image and --facts") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = ocl(t, "", "hash", "-f", "../../examples/minimal.yaml", "--base-image", base, "--trigger", "schedule")
	if code != 2 || !strings.Contains(stderr, `--trigger "schedule"`) {
		t.Errorf("an unknown trigger: exit %d, stderr %q", code, stderr)
	}
}
