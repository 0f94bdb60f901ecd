package generator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	testBase = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	testExt  = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func testInputs() Inputs {
	return Inputs{BaseImage: testBase, ExtensionsImage: testExt, Arch: v1alpha1.ArchAMD64, Trigger: "spec"}
}

func loadExample(t testing.TB, name string) *v1alpha1.PoolImage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pi v1alpha1.PoolImage
	if err := yaml.UnmarshalStrict(b, &pi); err != nil {
		t.Fatalf("example %s: %v", name, err)
	}
	return &pi
}

func examples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("want at least 4 examples, got %v (%v)", files, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	return names
}

func decodeContainerfile(t *testing.T, pr *tektonv1.PipelineRun) string {
	t.Helper()
	for _, p := range pr.Spec.Params {
		if p.Name == "CONTAINERFILE_BASE64" {
			b, err := base64.StdEncoding.DecodeString(p.Value.StringVal)
			if err != nil {
				t.Fatalf("CONTAINERFILE_BASE64: %v", err)
			}
			return string(b)
		}
	}
	t.Fatal("no CONTAINERFILE_BASE64 param")
	return ""
}

// pipelineOf returns the spec of the Pipeline Render's run of pi references.
func pipelineOf(t *testing.T, pi *v1alpha1.PoolImage, in Inputs) *tektonv1.PipelineSpec {
	t.Helper()
	pl, err := RenderPipeline(pi, in)
	if err != nil {
		t.Fatalf("RenderPipeline: %v", err)
	}
	return &pl.Spec
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make golden` to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the rendered output; run `make golden` and review the diff.\ngot:\n%s", path, got)
	}
}

// TestGolden renders every example and compares it with testdata: the minimal example's whole
// PipelineRun (minimal.pipelinerun.yaml), each other example's as a diff from it
// (<example>.pipelinerun.diff: what that example changes), and every Containerfile. Scripts
// appear by the name of their file: they are source files of their own (scripts/), and a step
// running anything else shows as "<unknown script>". `make golden` rewrites them for review.
func TestGolden(t *testing.T) {
	render := func(t *testing.T, name string) ([]byte, *tektonv1.PipelineRun) {
		pr, err := Render(loadExample(t, name), testInputs())
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		elided := pr.DeepCopy()
		elideScripts(elided.Spec.PipelineSpec)
		b, err := yaml.Marshal(elided)
		if err != nil {
			t.Fatal(err)
		}
		return b, pr
	}
	base, _ := render(t, "minimal")
	for _, name := range examples(t) {
		t.Run(name, func(t *testing.T) {
			b, pr := render(t, name)
			if name == "minimal" {
				golden(t, name+".pipelinerun.yaml", b)
			} else {
				diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: difflib.SplitLines(string(base)),
					B: difflib.SplitLines(string(b)), FromFile: "minimal.pipelinerun.yaml", ToFile: name + ".pipelinerun.yaml", Context: 2})
				if err != nil {
					t.Fatal(err)
				}
				golden(t, name+".pipelinerun.diff", []byte(diff))
			}
			golden(t, name+".Containerfile", []byte(decodeContainerfile(t, pr)))
		})
	}
}

// elideScripts replaces every step's script by the name of its file.
func elideScripts(spec *tektonv1.PipelineSpec) {
	names := map[string]string{injectScript: "scripts/inject.sh", buildScript: "scripts/build.sh", pushScript: "scripts/push.sh"}
	for _, tasks := range [][]tektonv1.PipelineTask{spec.Tasks, spec.Finally} {
		for i := range tasks {
			if tasks[i].TaskSpec == nil {
				continue
			}
			for j := range tasks[i].TaskSpec.Steps {
				st := &tasks[i].TaskSpec.Steps[j]
				if st.Script == "" {
					continue
				}
				if n, ok := names[st.Script]; ok {
					st.Script = "<" + n + ">"
				} else {
					st.Script = "<unknown script>"
				}
			}
		}
	}
}

// TestTektonValidate runs Tekton's own defaulting and validation (v1.15 default feature flags)
// on every rendered run, the standalone Tasks and the Pipeline, as its webhook would.
func TestTektonValidate(t *testing.T) {
	ctx := context.Background()
	for _, name := range examples(t) {
		pr, err := Render(loadExample(t, name), testInputs())
		if err != nil {
			t.Fatalf("%s: Render: %v", name, err)
		}
		pr.SetDefaults(ctx)
		if err := pr.Validate(ctx); err != nil {
			t.Errorf("%s: PipelineRun.Validate: %v", name, err)
		}
	}
	for _, st := range Tasks(Config{}) {
		task := st.Task.DeepCopy()
		task.SetDefaults(ctx)
		if err := task.Validate(ctx); err != nil {
			t.Errorf("Task %s: Validate: %v", task.Name, err)
		}
	}
	p := Pipeline(Config{})
	p.SetDefaults(ctx)
	if err := p.Validate(ctx); err != nil {
		t.Errorf("Pipeline: Validate: %v", err)
	}
}

// TestYAMLRoundTrip checks a rendered run survives YAML serialisation unchanged.
func TestYAMLRoundTrip(t *testing.T) {
	for _, name := range examples(t) {
		pr, err := Render(loadExample(t, name), testInputs())
		if err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(pr)
		if err != nil {
			t.Fatal(err)
		}
		var back tektonv1.PipelineRun
		if err := yaml.UnmarshalStrict(b, &back); err != nil {
			t.Fatalf("%s: UnmarshalStrict: %v", name, err)
		}
		if !equality.Semantic.DeepEqual(pr, &back) {
			t.Errorf("%s: the run changed in a YAML round trip", name)
		}
	}
}

func TestRenderDeterministic(t *testing.T) {
	pi := loadExample(t, "per-arch")
	a, _ := Render(pi, testInputs())
	for i := 0; i < 20; i++ {
		b, err := Render(pi, testInputs())
		if err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(a, b) {
			t.Fatal("two renders of the same inputs differ")
		}
	}
}

func TestRenderShape(t *testing.T) {
	pi := loadExample(t, "entitlements")
	in := testInputs()
	in.TrustedCA = &TrustedCA{ConfigMapName: "trusted-ca", SHA256: "abc"}
	pr, err := Render(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := InputsHash(pi, in)
	if pr.Name != RunName("infra", hash) || pr.Namespace != "ocl-pipelines" {
		t.Errorf("name = %s/%s", pr.Namespace, pr.Name)
	}
	pl, err := RenderPipeline(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Spec.PipelineRef != nil || pr.Spec.PipelineSpec == nil || PipelineDigest(pr.Spec.PipelineSpec) != PipelineDigest(&pl.Spec) || pl.Namespace != pr.Namespace {
		t.Fatalf("the run must embed the spec of its Pipeline %s/%s: pipelineRef %+v", pl.Namespace, pl.Name, pr.Spec.PipelineRef)
	}
	// Tekton keeps the label of a run of an embedded pipeline only with a generateName.
	if got := pr.Labels["tekton.dev/pipeline"]; got != pl.Name || pr.GenerateName == "" {
		t.Errorf("tekton.dev/pipeline = %q, generateName %q; want the Pipeline's name %s and a generateName", got, pr.GenerateName, pl.Name)
	}
	if pl.Name != PipelineNameFor(&pl.Spec) || !strings.HasPrefix(pl.Name, PipelineNamePrefix) || len(pl.Name) != len(PipelineNamePrefix)+PipelineHashChars {
		t.Errorf("Pipeline name %s is not its spec's digest", pl.Name)
	}
	spec := &pl.Spec
	var tasks []string
	for _, pt := range spec.Tasks {
		tasks = append(tasks, pt.Name)
		if pt.DisplayName == "" || pt.TaskSpec == nil || pt.TaskSpec.DisplayName == "" {
			t.Errorf("task %s lacks a displayName", pt.Name)
		}
		for _, s := range pt.TaskSpec.Steps {
			if s.DisplayName == "" {
				t.Errorf("step %s/%s lacks a displayName", pt.Name, s.Name)
			}
		}
	}
	if got := strings.Join(tasks, ","); got != "fetch-base-digest,build,verify,promote" {
		t.Errorf("tasks = %s", got)
	}
	build := spec.Tasks[1]
	var steps []string
	for _, s := range build.TaskSpec.Steps {
		steps = append(steps, s.Name)
	}
	if got := strings.Join(steps, ","); got != "inject,check-push,build,push" {
		t.Errorf("build steps = %s", got)
	}
	// Exactly one of two reports runs: report when the build task's steps ran to an end or a
	// failure (it names the failed step from the build's LAST_STEP result), report-no-build
	// otherwise (a finally task with a missing result reference is skipped).
	if f := spec.Finally; len(f) != 2 || f[0].Name != contract.TaskReport || f[1].Name != contract.TaskReportNoBuild ||
		len(f[0].When) != 1 || f[0].When[0].Operator != selection.In || len(f[1].When) != 1 || f[1].When[0].Operator != selection.NotIn ||
		f[0].When[0].Input != "$(tasks.build.reason)" || f[1].When[0].Input != f[0].When[0].Input ||
		strings.Join(f[0].When[0].Values, ",") != "Succeeded,StepFailed,Failed" || strings.Join(f[1].When[0].Values, ",") != "Succeeded,StepFailed,Failed" {
		t.Errorf("finally = %+v", f)
	}
	retries := map[string]int{}
	for _, pt := range spec.Tasks {
		retries[pt.Name] = pt.Retries
	}
	if retries["build"] != 0 || retries["fetch-base-digest"] != DefaultFetchRetries || retries["verify"] != DefaultVerifyRetries ||
		retries["promote"] != DefaultPromoteRetries {
		t.Errorf("retries = %v", retries)
	}
	ws := map[string]string{}
	for _, w := range pr.Spec.Workspaces {
		switch {
		case w.Secret != nil:
			ws[w.Name] = "Secret/" + w.Secret.SecretName
		case w.ConfigMap != nil:
			ws[w.Name] = "ConfigMap/" + w.ConfigMap.Name
		}
	}
	want := map[string]string{
		"base-pull-secret": "Secret/global-pull-secret", "push-secret": "Secret/push-credentials",
		"entitlement": "Secret/etc-pki-entitlement", "yum-repos": "ConfigMap/satellite-repos",
		"rpm-gpg": "Secret/satellite-gpg-keys", "trusted-ca": "ConfigMap/trusted-ca",
	}
	if !equality.Semantic.DeepEqual(ws, want) {
		t.Errorf("workspaces = %v, want %v", ws, want)
	}
	var results []string
	for _, r := range spec.Results {
		results = append(results, r.Name)
	}
	if got := strings.Join(results, ","); got != "IMAGE_URL,IMAGE_DIGEST,BASE_IMAGE" {
		t.Errorf("pipeline results = %s", got)
	}
}

func TestRenderOverrides(t *testing.T) {
	pi := loadExample(t, "per-arch")
	in := testInputs()
	in.Arch = v1alpha1.ArchARM64
	in.Config = Config{BuildahImage: "localhost:5000/buildah:test", ServiceAccountName: "default-builder"}
	pr, err := Render(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	for _, p := range pr.Spec.Params {
		params[p.Name] = p.Value.StringVal
	}
	if params["STORAGE_DRIVER"] != "overlay" || params["BUILDAH_IMAGE"] != "localhost:5000/buildah:test" ||
		params["PUSH_RETRIES"] != "5" || params["TARGET_ARCH"] != "arm64" || params["CURRENT_TAG"] != "" {
		t.Errorf("params = %v", params)
	}
	if !strings.HasSuffix(decodeContainerfile(t, pr), "RUN rpm-ostree install raspberrypi2-firmware && ostree container commit\n") {
		t.Error("arm64 build did not use the arm64 Containerfile")
	}
	if pr.Spec.Timeouts.Pipeline.Duration.String() != "2h0m0s" {
		t.Errorf("timeouts = %+v", pr.Spec.Timeouts)
	}
	if pr.Spec.TaskRunTemplate.ServiceAccountName != "default-builder" || pr.Spec.TaskRunTemplate.PodTemplate.NodeSelector == nil {
		t.Errorf("taskRunTemplate = %+v", pr.Spec.TaskRunTemplate)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.PoolImage, *Inputs)
		want   string
	}{{
		name:   "base image by tag",
		mutate: func(_ *v1alpha1.PoolImage, in *Inputs) { in.BaseImage = "quay.io/openshift/rhcos:4.20" },
		want:   "invalid value: \"quay.io/openshift/rhcos:4.20\": not pinned by digest: inputs.baseImage\ngive repository@sha256:<digest>; resolve tags first (e.g. skopeo inspect --format '{{.Digest}}')",
	}, {
		name:   "no base image",
		mutate: func(_ *v1alpha1.PoolImage, in *Inputs) { in.BaseImage = "" },
		want:   "missing field(s): inputs.baseImage\nresolve the base image to repository@sha256:<digest> (the ControllerConfig's baseOSContainerImage is one)",
	}, {
		name:   "extensions by tag",
		mutate: func(_ *v1alpha1.PoolImage, in *Inputs) { in.ExtensionsImage = "quay.io/ext:latest" },
		want:   "invalid value: \"quay.io/ext:latest\": not pinned by digest: inputs.extensionsImage\ngive repository@sha256:<digest>; resolve tags first (e.g. skopeo inspect --format '{{.Digest}}')",
	}, {
		name:   "noarch pool",
		mutate: func(_ *v1alpha1.PoolImage, in *Inputs) { in.Arch = v1alpha1.ArchNoArch },
		want:   "invalid value: \"noarch\": inputs.arch\nthe pool's architecture must be one of amd64, arm64, ppc64le, s390x",
	}, {
		name: "no Containerfile for the arch",
		mutate: func(pi *v1alpha1.PoolImage, in *Inputs) {
			pi.Spec.Containerfile[0].Arch = v1alpha1.ArchARM64
		},
		want: "no Containerfile for arch amd64: spec.containerfile\nadd an entry with arch amd64 or noarch",
	}, {
		name:   "invalid spec",
		mutate: func(pi *v1alpha1.PoolImage, _ *Inputs) { pi.Spec.ImagePushSpec = "quay.io/os/worker" },
		want:   "invalid value: \"quay.io/os/worker\": no tag: spec.imagePushSpec\nadd the tag that will name the pool's current image; use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest",
	}, {
		name:   "trusted CA without hash",
		mutate: func(_ *v1alpha1.PoolImage, in *Inputs) { in.TrustedCA = &TrustedCA{ConfigMapName: "ca"} },
		want:   "missing field(s): inputs.trustedCA.configMapName, inputs.trustedCA.sha256\nname the ConfigMap holding the trust bundle and give the sha256 of its data",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pi := loadExample(t, "minimal")
			in := testInputs()
			tc.mutate(pi, &in)
			pr, err := Render(pi, in)
			if err == nil || pr != nil {
				t.Fatalf("Render() = %v, %v; want error", pr, err)
			}
			if err.Error() != tc.want {
				t.Errorf("Render() error =\n%s\nwant\n%s", err, tc.want)
			}
			if _, herr := InputsHash(pi, in); herr == nil || herr.Error() != tc.want {
				t.Errorf("InputsHash() error = %v", herr)
			}
		})
	}
	if _, err := Render(nil, testInputs()); err == nil {
		t.Error("Render(nil) succeeded")
	}
}

func TestRenderDoesNotModifyPoolImage(t *testing.T) {
	pi := loadExample(t, "per-arch")
	before := pi.DeepCopy()
	if _, err := Render(pi, testInputs()); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(before, pi) {
		t.Error("Render modified its PoolImage")
	}
}

func TestRunName(t *testing.T) {
	hash := "0123456789abcdef0123456789abcdef01234567"
	long := strings.Repeat("pool-with-a-very-long-name.", 9) + "x"
	names := map[string]bool{}
	for _, tc := range []struct{ pool, want string }{
		{"worker", "ocl-worker-0123456789"},
		{"infra.edge", "ocl-infra-edge-0123456789"},
		{long, ""},
		{long + "y", ""},
	} {
		for _, token := range []string{"", "1", "2", "2026-11-24T10:00:00Z"} {
			got := RetryRunName(tc.pool, hash, token)
			if token == "" && tc.want != "" && got != tc.want {
				t.Errorf("RunName(%q) = %q, want %q", tc.pool, got, tc.want)
			}
			if len(got) > MaxRunNameLength || !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).MatchString(got) {
				t.Errorf("RetryRunName(%q, %q) = %q: not a DNS-1123 label of at most %d characters", tc.pool, token, got, MaxRunNameLength)
			}
			if names[got] {
				t.Errorf("RetryRunName(%q, %q) = %q collides with another pool's or retry's name", tc.pool, token, got)
			}
			names[got] = true
			if again := RetryRunName(tc.pool, hash, token); again != got {
				t.Errorf("RetryRunName is not deterministic: %q then %q", got, again)
			}
		}
	}
	if RunName("worker", hash) != RetryRunName("worker", hash, "") {
		t.Error("a retry without token is not the first run")
	}
}

func TestLabelsFitLongPoolNames(t *testing.T) {
	long := strings.Repeat("a", 200)
	for k, v := range Labels(long, long, "0123456789abcdef0123456789abcdef01234567") {
		if len(v) > 63 {
			t.Errorf("label %s=%q is longer than 63 characters", k, v)
		}
	}
	if PoolLabelValue(long) == PoolLabelValue(long+"b") {
		t.Error("two long pool names share a pool label")
	}
}

// TestRenderTag: the TaskRun the controller creates once it has promoted an image moves the push
// spec's tag to that digest (and nothing else does: the build's promote task is skipped unless a
// GitOps run sets CURRENT_TAG).
func TestRenderTag(t *testing.T) {
	pi := loadExample(t, "minimal")
	in := testInputs()
	image := "registry.example.com/os/worker@sha256:" + strings.Repeat("ab", 32)
	tr, err := RenderTag(pi, in, image)
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	for _, p := range tr.Spec.Params {
		params[p.Name] = p.Value.StringVal
	}
	if params["CURRENT_TAG"] != "latest" || params["IMAGE_URL"] != image || params["IMAGE_DIGEST"] != "sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("params %v", params)
	}
	if tr.Name != "ocl-worker-ababababab-tag" || len(tr.Name) > MaxRunNameLength || tr.Spec.TaskSpec == nil || tr.Spec.TaskSpec.Steps[0].Name != contract.TaskPromote {
		t.Errorf("TaskRun %s runs %+v", tr.Name, tr.Spec.TaskSpec)
	}
	if len(tr.Spec.Workspaces) != 1 || tr.Spec.Workspaces[0].Secret == nil || tr.Spec.Workspaces[0].Secret.SecretName != pi.Spec.PushSecret.Name {
		t.Errorf("workspaces %+v, want the push secret", tr.Spec.Workspaces)
	}
	if _, err := RenderTag(pi, in, "registry.example.com/os/other@sha256:"+strings.Repeat("ab", 32)); err == nil {
		t.Error("an image of another repository got the push spec's tag")
	}
	pr, err := Render(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range pipelineOf(t, pi, in).Tasks {
		if pt.Name == contract.TaskPromote && (len(pt.When) != 1 || pt.When[0].Input != "$(params.CURRENT_TAG)") {
			t.Errorf("the build's promote task runs unconditionally: %+v", pt.When)
		}
	}
	for _, p := range pr.Spec.Params {
		if p.Name == "CURRENT_TAG" && p.Value.StringVal != "" {
			t.Errorf("the controller's run moves the tag %q itself", p.Value.StringVal)
		}
	}
}

// TestProxyCredentialsNeverInParams (defect B12 of modelTraces): a cluster proxy URL with credentials is
// refused, naming the field and the fix; with spec.pipeline.proxySecret the build reads its proxy
// from that Secret and no parameter carries the cluster's proxy.
func TestProxyCredentialsNeverInParams(t *testing.T) {
	pi := loadExample(t, "minimal")
	in := testInputs()
	in.Proxy = Proxy{HTTPProxy: "http://alice:s3cret@proxy.example.com:3128", NoProxy: ".cluster.local"}
	_, err := Render(pi, in)
	if err == nil || !strings.Contains(err.Error(), "inputs.proxy.httpProxy") || !strings.Contains(err.Error(), "spec.pipeline.proxySecret") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Render with a proxy URL with credentials: %v", err)
	}
	pi.Spec.Pipeline = &v1alpha1.PipelineOptions{ProxySecret: &v1alpha1.SecretReference{Name: "build-proxy"}}
	pr, err := Render(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(pr)
	if strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "alice") {
		t.Error("the proxy's credentials are in the rendered PipelineRun")
	}
	bound := false
	for _, w := range pr.Spec.Workspaces {
		bound = bound || (w.Name == contract.WorkspaceProxy && w.Secret != nil && w.Secret.SecretName == "build-proxy")
	}
	if !bound {
		t.Errorf("the proxy Secret is not bound: %+v", pr.Spec.Workspaces)
	}
}
