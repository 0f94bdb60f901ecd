//go:build integration

// Package integration runs the generated pipeline's stages for real, without Kubernetes: the
// steps Tekton would run (after Tekton's own substitution code) execute with the real buildah
// and the real ocl-step stages against a real registry (docker-registry) on 127.0.0.1.
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/internal/imagetest"
	"github.com/ocl-pipelines/ocl-pipelines/internal/tektontest"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/steps"
)

// env is shared by the tests: the registry, the buildah storage and the stand-in images.
var env struct {
	registry    string
	storageConf string
	base, ext   string
}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	for _, bin := range []string{"buildah", "docker-registry", "skopeo"} {
		if _, err := exec.LookPath(bin); err != nil {
			return 0, fmt.Errorf("%s not found: run hack/install-packages.sh", bin)
		}
	}
	dir, err := os.MkdirTemp("", "ocl-integration-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	// A real registry on a free loopback port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	env.registry = l.Addr().String()
	_ = l.Close()
	conf := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n",
		filepath.Join(dir, "registry"), env.registry)), 0o644); err != nil {
		return 0, err
	}
	reg := exec.Command("docker-registry", "serve", conf)
	regLog, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return 0, err
	}
	reg.Stdout, reg.Stderr = regLog, regLog
	if err := reg.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = reg.Process.Kill(); _, _ = reg.Process.Wait() }()
	if err := waitFor(func() error {
		resp, err := http.Get("http://" + env.registry + "/v2/")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}, 30*time.Second); err != nil {
		return 0, fmt.Errorf("registry did not come up: %w", err)
	}

	// buildah storage of its own, so the tests never touch the machine's.
	env.storageConf = filepath.Join(dir, "storage.conf")
	if err := os.WriteFile(env.storageConf, []byte(fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "storage"), filepath.Join(dir, "run"))), 0o644); err != nil {
		return 0, err
	}
	_ = os.Setenv("CONTAINERS_STORAGE_CONF", env.storageConf)

	script, _ := filepath.Abs("../images/build-standin-images.sh")
	out, err := exec.Command("bash", script, env.registry, "1").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("stand-in images: %w\n%s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) < 2 {
		return 0, fmt.Errorf("stand-in images: unexpected output %q", out)
	}
	env.base, env.ext = lines[len(lines)-2], lines[len(lines)-1]
	return m.Run(), nil
}

// waitFor polls check until it succeeds or the timeout passes.
func waitFor(check func() error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const canary = "CANARY-ENTITLEMENT-CERT-5d1e"

func poolImage(containerfile string) *v1alpha1.PoolImage {
	return builders.PoolImage("ocl", "worker", builders.WithContainerfile(containerfile),
		builders.WithPushSpec(env.registry+"/os/worker:latest"), builders.WithEntitlementSecret("etc-pki-entitlement"),
		builders.WithParam(contract.ParamTLSVerify, "false"))
}

// run is one pipeline run's outcome.
type run struct {
	image    name.Digest // the pushed image
	url      string      // its IMAGE_URL result, repository:<inputs hash>-<run id>
	log      strings.Builder
	failedAt string // "task/step" that failed, if any
	exitCode int    // the failed script step's exit code
	lastStep string // the build task's LAST_STEP result
}

// runPipeline runs the stages of the rendered PipelineRun in order, as Tekton would, stopping
// at the first failure like the pipeline's runAfter chain.
func runPipeline(t *testing.T, pi *v1alpha1.PoolImage, runName ...string) *run {
	t.Helper()
	o := runOpts{}
	if len(runName) > 0 {
		o.name = runName[0]
	}
	return runPipelineWith(t, pi, o)
}

// runOpts vary a run: another run name (a retry or re-run: another uid, so another push tag),
// more files in the build pod's workspaces, other inputs.
type runOpts struct {
	name   string
	files  map[string]string
	inputs func(*generator.Inputs)
}

func runPipelineWith(t *testing.T, pi *v1alpha1.PoolImage, o runOpts) *run {
	t.Helper()
	in := generator.Inputs{BaseImage: env.base, ExtensionsImage: env.ext, Arch: v1alpha1.ArchAMD64}
	if o.inputs != nil {
		o.inputs(&in)
	}
	pr, err := generator.Render(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	if o.name != "" {
		pr.Name = o.name
	}
	r := &run{}
	results := map[string]string{}
	ctx := context.Background()

	goStage := func(task string, resultNames ...string) bool {
		ts, err := tektontest.TaskSpec(pr, task, results)
		if err != nil {
			t.Fatal(err)
		}
		pod, err := tektontest.NewPod(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := steps.Run(ctx, task, steps.Env{Getenv: pod.Getenv(ts.Steps[0]), Stdout: &r.log}); err != nil {
			r.failedAt = task
			return false
		}
		for _, n := range resultNames {
			v, err := pod.Result(n)
			if err != nil {
				t.Fatalf("%s: result %s: %v", task, n, err)
			}
			results["tasks."+task+".results."+n] = v
		}
		return true
	}

	if !goStage(contract.TaskFetchBaseDigest, contract.ResultBaseImage) {
		return r
	}
	ts, err := tektontest.TaskSpec(pr, contract.TaskBuild, results)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := tektontest.NewPod(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := pod.WriteFile("entitlement/entitlement.pem", canary+"\n"); err != nil {
		t.Fatal(err)
	}
	for f, content := range o.files {
		if err := pod.WriteFile(f, content); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range ts.Steps {
		var err error
		if s.Script == "" {
			// A Go stage of the tools image (check-push), in-process with the step's env.
			err = steps.Run(ctx, s.Command[len(s.Command)-1], steps.Env{Getenv: pod.Getenv(s), Stdout: &r.log})
		} else {
			var out string
			out, err = pod.Run(s, "CONTAINERS_STORAGE_CONF="+env.storageConf)
			r.log.WriteString(out)
		}
		if err != nil {
			r.failedAt = contract.TaskBuild + "/" + s.Name
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				r.exitCode = exit.ExitCode()
			}
			r.lastStep, _ = pod.Result(contract.ResultLastStep)
			return r
		}
	}
	url, _ := pod.Result(contract.ResultImageURL)
	digest, _ := pod.Result(contract.ResultImageDigest)
	results["tasks.build.results.IMAGE_URL"], results["tasks.build.results.IMAGE_DIGEST"] = url, digest
	r.image, err = name.NewDigest(url[:strings.LastIndex(url, ":")]+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatalf("results IMAGE_URL=%q IMAGE_DIGEST=%q: %v", url, digest, err)
	}
	r.url = url
	if !goStage(contract.TaskVerify) {
		return r
	}
	// The build's promote task is skipped (CURRENT_TAG is empty in the controller's runs, and
	// its when expression says so): the tag moves when the controller promotes, below.
	for _, pt := range pr.Spec.PipelineSpec.Tasks {
		if pt.Name == contract.TaskPromote && (len(pt.When) != 1 || pt.When[0].Input != "$(params.CURRENT_TAG)") {
			t.Fatalf("the promote task runs without the CURRENT_TAG guard: %+v", pt.When)
		}
	}
	return r
}

// promote runs the tag TaskRun the controller creates once it has promoted r's image
// (generator.RenderTag), as Tekton would run it.
func promote(t *testing.T, pi *v1alpha1.PoolImage, r *run) {
	t.Helper()
	tr, err := generator.RenderTag(pi, generator.Inputs{BaseImage: env.base, ExtensionsImage: env.ext, Arch: v1alpha1.ArchAMD64},
		r.image.Context().Name()+"@"+r.image.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, p := range tr.Spec.Params {
		env[p.Name] = p.Value.StringVal
	}
	for _, e := range tr.Spec.TaskSpec.Steps[0].Env {
		if v, ok := env[strings.TrimSuffix(strings.TrimPrefix(e.Value, "$(params."), ")")]; ok {
			env[e.Name] = v
		}
	}
	env["PUSH_SECRET_BOUND"] = "false"
	dir := t.TempDir()
	env["RESULT_PROMOTED_IMAGE"] = dir + "/promoted"
	if err := steps.Run(context.Background(), contract.TaskPromote, steps.Env{Getenv: func(k string) string { return env[k] }, Stdout: &r.log}); err != nil {
		t.Fatalf("the tag TaskRun failed: %v\n%s", err, r.log.String())
	}
}

// files returns the contents of the regular files of the flattened image whose paths are
// wanted, and whether any layer contains needle.
func files(t *testing.T, img v1.Image, needle string, wanted ...string) (map[string]string, bool) {
	t.Helper()
	got, found := map[string]string{}, false
	if err := imagetest.EachFile(img, func(f imagetest.File) {
		if bytes.Contains(f.Content, []byte(needle)) || strings.Contains(f.Header.Name, needle) {
			found = true
		}
		for _, w := range wanted {
			if f.Path == w {
				got[w] = string(f.Content)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return got, found
}

func tagDigest(t *testing.T, tag string) string {
	t.Helper()
	ref, err := name.NewTag(tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(ref)
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

func TestBuildVerifyPromote(t *testing.T) {
	containerfile := "FROM configs AS final\n" +
		"RUN echo hello > /etc/ocl-hello\n" +
		"RUN test -s /etc/pki/entitlement/entitlement.pem && echo visible > /etc/entitlement-was-visible\n" +
		"RUN echo '$(params.IMAGE) $(context.taskRun.name)' > /etc/literal\n" +
		"RUN echo $(touch /etc/marker-from-shell) > /etc/shell-ran-inside-build\n"
	r := runPipeline(t, poolImage(containerfile))
	defer func() {
		if t.Failed() {
			t.Logf("pipeline log:\n%s", r.log.String())
		}
	}()
	if r.failedAt != "" {
		t.Fatalf("the pipeline failed at %s:\n%s", r.failedAt, r.log.String())
	}

	// The digest the push step reported is the registry's, by skopeo and by go-containerregistry,
	// under a tag of its own: the inputs hash and the run's id.
	hash, _ := generator.InputsHash(poolImage(containerfile), generator.Inputs{BaseImage: env.base, ExtensionsImage: env.ext})
	if !strings.HasPrefix(r.url, r.image.Context().Name()+":"+hash+"-") {
		t.Errorf("IMAGE_URL %s is not a tag of its own (<inputs hash>-<run id>)", r.url)
	}
	skopeo, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
		"docker://"+r.url).CombinedOutput()
	if err != nil || strings.TrimSpace(string(skopeo)) != r.image.DigestStr() {
		t.Errorf("skopeo sees %s (%v), the push step reported %s", skopeo, err, r.image.DigestStr())
	}

	img, err := remote.Image(r.image)
	if err != nil {
		t.Fatal(err)
	}
	base, err := remote.Image(mustDigest(t, env.base))
	if err != nil {
		t.Fatal(err)
	}
	imgCfg, _ := img.ConfigFile()
	baseCfg, _ := base.ConfigFile()
	if len(imgCfg.RootFS.DiffIDs) <= len(baseCfg.RootFS.DiffIDs) {
		t.Fatalf("the image has %d layers, the base %d", len(imgCfg.RootFS.DiffIDs), len(baseCfg.RootFS.DiffIDs))
	}
	for i, id := range baseCfg.RootFS.DiffIDs {
		if imgCfg.RootFS.DiffIDs[i] != id {
			t.Errorf("layer %d is not the base's", i)
		}
	}
	// The build step sets these with buildah --label (not in the Containerfile: layer cache).
	for label, want := range map[string]string{generator.LabelInputsHash: hash, generator.LabelBaseImage: env.base, generator.LabelPool: "worker"} {
		if got := imgCfg.Config.Labels[label]; got != want {
			t.Errorf("label %s = %q, want %q", label, got, want)
		}
	}

	got, leaked := files(t, img, canary, "etc/ocl-hello", "etc/entitlement-was-visible", "etc/literal", "etc/shell-ran-inside-build")
	if leaked {
		t.Error("the entitlement certificate is in a layer of the image")
	}
	want := map[string]string{
		"etc/ocl-hello":               "hello\n",
		"etc/entitlement-was-visible": "visible\n",
		"etc/literal":                 "$(params.IMAGE) $(context.taskRun.name)\n",
		"etc/shell-ran-inside-build":  "\n",
	}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("/%s = %q, want %q", f, got[f], w)
		}
	}
	if strings.Contains(r.log.String(), canary) {
		t.Error("the entitlement certificate is in the step logs")
	}
	// The build moved no tag; the controller's tag TaskRun, once it promotes, moves latest.
	if d := tagDigest(t, env.registry+"/os/worker:latest"); d == r.image.DigestStr() {
		t.Errorf("latest names %s before the controller promoted it", d)
	}
	promote(t, poolImage(containerfile), r)
	if d := tagDigest(t, env.registry+"/os/worker:latest"); d != r.image.DigestStr() {
		t.Errorf("promote: latest = %s, want %s", d, r.image.DigestStr())
	}
}

// TestEveryPushKeepsATag (defect B9 of modelTraces): a retry of the same inputs pushes a new digest under a tag
// of its own, so the digest the nodes run keeps its tag (registries that delete untagged
// manifests keep it), and no tag moves before the controller promotes.
func TestEveryPushKeepsATag(t *testing.T) {
	pi := poolImage("FROM configs AS final\nRUN date +%s%N > /etc/built-at\n")
	first := runPipeline(t, pi)
	hash, _ := generator.InputsHash(pi, generator.Inputs{BaseImage: env.base, ExtensionsImage: env.ext})
	second := runPipeline(t, pi, generator.RetryRunName("worker", hash, "retry-1"))
	if first.failedAt != "" || second.failedAt != "" {
		t.Fatalf("a run failed: %q %q\n%s%s", first.failedAt, second.failedAt, first.log.String(), second.log.String())
	}
	if first.url == second.url || first.image.DigestStr() == second.image.DigestStr() {
		t.Fatalf("the retry pushed %s (%s), the first run %s (%s): want another tag and digest", second.url, second.image.DigestStr(), first.url, first.image.DigestStr())
	}
	for _, r := range []*run{first, second} {
		if d := tagDigest(t, r.url); d != r.image.DigestStr() {
			t.Errorf("tag %s names %q, want the digest it pushed, %s", r.url, d, r.image.DigestStr())
		}
	}
}

// TestCacheRebuildsOnMountedInputs: with the layer cache, a change of what reaches
// RUN steps only through buildah --volume (here the yum repositories' content) changes the inputs
// hash and must rebuild the RUN steps, which a cache keyed on the step's text alone would reuse.
// The same inputs do reuse them (else the check would pass without a cache).
func TestCacheRebuildsOnMountedInputs(t *testing.T) {
	pi := poolImage("FROM configs AS final\nRUN cat /etc/yum.repos.d/*.repo > /etc/repos-seen && date +%s%N > /etc/built-at\n")
	pi.Spec.Entitlements.YumRepos = &v1alpha1.ConfigMapReference{Name: "repos"}
	pi.Spec.Pipeline.Cache = &v1alpha1.Cache{Repository: env.registry + "/cache/worker"}
	build := func(n int, repo string) (stamp, seen string) {
		t.Helper()
		r := runPipelineWith(t, pi, runOpts{name: fmt.Sprintf("ocl-worker-cache-%d", n),
			files: map[string]string{"yum-repos/a.repo": repo},
			inputs: func(in *generator.Inputs) {
				in.YumReposSHA256 = generator.ContentSHA256(map[string]string{"a.repo": repo})
			}})
		if r.failedAt != "" {
			t.Fatalf("build %d failed at %s:\n%s", n, r.failedAt, r.log.String())
		}
		img, err := remote.Image(r.image)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := files(t, img, "\x00never", "etc/built-at", "etc/repos-seen")
		return got["etc/built-at"], got["etc/repos-seen"]
	}
	first, _ := build(1, "[a]\nbaseurl=http://mirror-1/\n")
	again, _ := build(2, "[a]\nbaseurl=http://mirror-1/\n")
	if again != first {
		t.Fatalf("the same inputs rebuilt the RUN step (%q, then %q): the cache is not used, so this test shows nothing", first, again)
	}
	changed, seen := build(3, "[a]\nbaseurl=http://mirror-2/\n")
	if changed == first || !strings.Contains(seen, "mirror-2") {
		t.Errorf("after the yum repositories changed, the RUN step came from the cache: built-at %q (was %q), repos seen %q", changed, first, seen)
	}
}

// TestVerifyGate: an image whose Containerfile deletes the kernel is built and pushed, refused by
// verify, and never promoted.
func TestVerifyGate(t *testing.T) {
	before := tagDigest(t, env.registry+"/os/worker:latest")
	r := runPipeline(t, poolImage("FROM configs AS final\nRUN rm -rf /usr/lib/modules/*\n"))
	if r.failedAt != contract.TaskVerify {
		t.Fatalf("failed at %q, want verify:\n%s", r.failedAt, r.log.String())
	}
	if !strings.Contains(r.log.String(), "verify: problem: no kernel") {
		t.Errorf("verify log:\n%s", r.log.String())
	}
	if after := tagDigest(t, env.registry+"/os/worker:latest"); after != before {
		t.Errorf("latest moved from %s to %s after a failed verify", before, after)
	}
}

// TestBuildFailure: a failing RUN fails the build step with the RUN's exit code and a clear final
// line, after the log showed the Containerfile; nothing is pushed.
func TestBuildFailure(t *testing.T) {
	r := runPipeline(t, poolImage("FROM configs AS final\nRUN echo about to fail && exit 3\n"))
	if r.failedAt != "build/build" {
		t.Fatalf("failed at %q, want build/build:\n%s", r.failedAt, r.log.String())
	}
	log := r.log.String()
	if !strings.Contains(log, "about to fail") || !strings.Contains(log, "build: FAILED (exit code 3): a Containerfile instruction failed; its output is above") {
		t.Errorf("build log:\n%s", log)
	}
	if r.exitCode != 3 || r.lastStep != contract.StepBuild {
		t.Errorf("the build step exited %d with LAST_STEP %q, want the RUN's 3 and %q", r.exitCode, r.lastStep, contract.StepBuild)
	}
	if !strings.Contains(log, "build: ---- Containerfile ----\n# Rendered by ocl-pipelines") || !strings.Contains(log, "RUN echo about to fail && exit 3\nbuild: ---- end of Containerfile ----") {
		t.Errorf("the build log does not show the rendered Containerfile:\n%s", log)
	}
}

func mustDigest(t *testing.T, ref string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
