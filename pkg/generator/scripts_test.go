package generator

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/ocl-pipelines/ocl-pipelines/internal/tektontest"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// tektonVar matches every kind of Tekton variable reference.
var tektonVar = regexp.MustCompile(`\$\((params|context|workspaces|results|tasks|steps|credentials|artifacts)\.`)

// TestScriptsUseNoTektonVariables: parameters, workspaces and results reach scripts only through
// environment variables, in every Task, the Pipeline and every rendered run.
func TestScriptsUseNoTektonVariables(t *testing.T) {
	var specs []tektonv1.TaskSpec
	for _, st := range Tasks(Config{}) {
		specs = append(specs, st.Task.Spec)
	}
	for _, name := range examples(t) {
		ps := pipelineOf(t, loadExample(t, name), testInputs())
		for _, pt := range append(ps.Tasks, ps.Finally...) {
			specs = append(specs, pt.TaskSpec.TaskSpec)
		}
	}
	scripts := 0
	for _, spec := range specs {
		for _, s := range spec.Steps {
			if s.Script != "" {
				scripts++
			}
			if m := tektonVar.FindString(s.Script); m != "" {
				t.Errorf("step %s: script contains the Tekton variable %s…", s.Name, m)
			}
			for _, a := range append(append([]string{}, s.Command...), s.Args...) {
				if tektonVar.MatchString(a) {
					t.Errorf("step %s: command line contains a Tekton variable: %q", s.Name, a)
				}
			}
			if s.Script == "" && len(s.Command) == 0 {
				t.Errorf("step %s runs neither a script nor a command", s.Name)
			}
		}
	}
	if scripts < 3 {
		t.Fatalf("found %d scripts, want inject, build and push", scripts)
	}
}

func tektonTaskSpec(t *testing.T, pr *tektonv1.PipelineRun, task string, results map[string]string) *tektonv1.TaskSpec {
	t.Helper()
	ts, err := tektontest.TaskSpec(pr, task, results)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// fakePod is a tektontest.Pod with a stand-in buildah on its PATH.
type fakePod struct {
	*tektontest.Pod
	root    string
	fakeLog string
}

func newPod(t *testing.T) *fakePod {
	t.Helper()
	root := t.TempDir()
	pod, err := tektontest.NewPod(root)
	if err != nil {
		t.Fatal(err)
	}
	// A stand-in buildah: records its arguments and the credential files it could read, writes
	// the digest file of a push, and fails when FAKE_BUILDAH_EXIT says so, printing
	// FAKE_BUILDAH_STDERR (containers/image's error) to stderr.
	fake := `#!/usr/bin/env bash
printf '%s\n' "$@" > "$FAKE_BUILDAH_LOG"
{ [ -f "$XDG_RUNTIME_DIR/containers/auth.json" ] && echo "xdg-auth";
  [ -f "$HOME/.docker/config.json" ] && echo "home-auth"; } > "$FAKE_BUILDAH_LOG.auth"
if [ -n "${SSL_CERT_FILE:-}" ] && [ -f "$SSL_CERT_FILE" ]; then echo "$SSL_CERT_FILE"; fi > "$FAKE_BUILDAH_LOG.ca"
prev=
for a in "$@"; do
  if [ "$prev" = "--digestfile" ]; then printf 'sha256:%064d' 7 > "$a"; fi
  prev=$a
done
echo "buildah output"
if [ -n "${FAKE_BUILDAH_STDERR:-}" ]; then echo "$FAKE_BUILDAH_STDERR" >&2; fi
exit "${FAKE_BUILDAH_EXIT:-0}"
`
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "buildah"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	pod.PathPrefix = bin
	return &fakePod{Pod: pod, root: root, fakeLog: filepath.Join(root, "buildah.args")}
}

func (p *fakePod) write(t *testing.T, rel, content string) {
	t.Helper()
	if err := p.WriteFile(rel, content); err != nil {
		t.Fatal(err)
	}
}

func (p *fakePod) run(t *testing.T, step tektonv1.Step, extraEnv ...string) (string, error) {
	t.Helper()
	return p.Run(step, append([]string{"FAKE_BUILDAH_LOG=" + p.fakeLog}, extraEnv...)...)
}

func step(t *testing.T, ts *tektonv1.TaskSpec, name string) tektonv1.Step {
	t.Helper()
	s, err := tektontest.Step(ts, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var fetchResults = map[string]string{
	"tasks.fetch-base-digest.results.BASE_IMAGE": testBase,
}

func hostileContainerfile(marker string) string {
	return "FROM configs AS final\n" +
		"RUN echo $(params.IMAGE) $(params.CONTAINERFILE_BASE64) $(context.taskRun.name) $(context.pipelineRun.name)\n" +
		"RUN echo $(workspaces.push-secret.path) $(workspaces.entitlement.bound) $(results.IMAGE_URL.path) $(tasks.status)\n" +
		"RUN echo `touch " + marker + "` $(touch " + marker + ") ; touch " + marker + " && echo '\\'\" ${HOME} $$ \n" +
		"COPY <<EOF /etc/x\n$(touch " + marker + ")\nEOF\n" +
		"# unicode ✓ and\ttabs and a trailing backslash \\"
}

// TestContainerfileReachesBuildahByteForByte renders a Containerfile full of Tekton variables and
// shell metacharacters, applies Tekton's real substitution code, runs the real inject script and
// compares the Containerfile buildah would read: identical, and nothing in it was executed.
func TestContainerfileReachesBuildahByteForByte(t *testing.T) {
	p := newPod(t)
	marker := filepath.Join(p.root, "MARKER")
	pi := loadExample(t, "minimal")
	pi.Spec.Containerfile[0].Content = hostileContainerfile(marker)
	pr, err := Render(pi, testInputs())
	if err != nil {
		t.Fatal(err)
	}
	rendered := decodeContainerfile(t, pr)
	if !strings.HasSuffix(rendered, pi.Spec.Containerfile[0].Content+"\n") {
		t.Fatalf("the rendered Containerfile does not end with the admin's content verbatim:\n%s", rendered)
	}

	p.write(t, "push-secret/.dockerconfigjson", canaryPush)
	ts := tektonTaskSpec(t, pr, contract.TaskBuild, fetchResults)
	out, err := p.run(t, step(t, ts, contract.StepInject))
	if err != nil {
		t.Fatalf("inject: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(p.root, "ocl", "context", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != rendered {
		t.Errorf("buildah would read a different Containerfile:\n%s\nwant:\n%s", got, rendered)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a command in the Containerfile was executed")
	}
	if !strings.Contains(out, "inject: Containerfile of ") || !strings.Contains(out, "inject: build context ready") {
		t.Errorf("inject log lacks its Containerfile or final line:\n%s", out)
	}
}

const (
	canaryCert = "-----BEGIN CERTIFICATE----- CANARY-ENTITLEMENT-3f9a1c -----END CERTIFICATE-----"
	canaryKey  = "CANARY-ACTIVATION-KEY-77d2"
	canaryPull = `{"auths":{"quay.io":{"auth":"Q0FOQVJZLVBVTEwtU0VDUkVU"}}}`
	canaryPush = `{"auths":{"registry.example.com":{"auth":"Q0FOQVJZLVBVU0gtU0VDUkVU"}}}`
)

// TestSecretsAreMountedNotCopied runs inject, build and push with every secret bound: the build
// sees entitlements only through read-only --volume mounts outside the build context, buildah
// gets credentials through auth files, and no secret content reaches a log or a command line.
func TestSecretsAreMountedNotCopied(t *testing.T) {
	p := newPod(t)
	pi := loadExample(t, "entitlements")
	pi.Spec.Entitlements.ActivationKey = &v1alpha1.SecretReference{Name: "activation"}
	in := testInputs()
	in.TrustedCA = &TrustedCA{ConfigMapName: "trusted-ca", SHA256: "abc"}
	pr, err := Render(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	// Secret volumes as the kubelet projects them: files are symlinks into a ..data directory.
	p.write(t, "entitlement/..2026_11_24/entitlement.pem", canaryCert)
	p.write(t, "entitlement/..2026_11_24/entitlement-key.pem", canaryCert)
	for _, f := range []string{"entitlement.pem", "entitlement-key.pem"} {
		if err := os.Symlink("..2026_11_24/"+f, filepath.Join(p.root, "workspace", "entitlement", f)); err != nil {
			t.Fatal(err)
		}
	}
	p.write(t, "activation-key/activationkey", canaryKey)
	p.write(t, "activation-key/org", "1234")
	p.write(t, "yum-repos/satellite.repo", "[satellite]\nbaseurl=https://satellite.example.com\n")
	p.write(t, "rpm-gpg/RPM-GPG-KEY-satellite", "gpg")
	p.write(t, "base-pull-secret/.dockerconfigjson", canaryPull)
	p.write(t, "push-secret/.dockerconfigjson", canaryPush)
	p.write(t, "trusted-ca/ca-bundle.crt", "-----BEGIN CERTIFICATE----- public -----END CERTIFICATE-----")

	ts := tektonTaskSpec(t, pr, contract.TaskBuild, fetchResults)
	var logs strings.Builder
	for _, name := range []string{contract.StepInject, contract.StepBuild, contract.StepPush} {
		out, err := p.run(t, step(t, ts, name))
		logs.WriteString(out)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		args, _ := os.ReadFile(p.fakeLog)
		for _, secret := range []string{"CANARY", "Q0FOQVJZ"} {
			if strings.Contains(string(args), secret) {
				t.Errorf("%s: a secret reached buildah's command line:\n%s", name, args)
			}
		}
		switch name {
		case contract.StepBuild:
			secrets := filepath.Join(p.root, "secrets")
			for _, want := range []string{
				"--volume\n" + secrets + "/entitlement:/etc/pki/entitlement:ro\n",
				"--volume\n" + secrets + "/activation-key:/run/secrets/rhsm-activation:ro\n",
				"--volume\n" + secrets + "/yum-repos:/etc/yum.repos.d:ro\n",
				"--volume\n" + secrets + "/rpm-gpg:/etc/pki/rpm-gpg:ro\n",
				"--build-arg\nOCL_BASE_IMAGE=" + testBase + "\n",
				"--build-arg\nOCL_EXTENSIONS_IMAGE=" + testExt + "\n",
				"--tls-verify=true\n", "--storage-driver\nvfs\n",
				filepath.Join(p.root, "ocl", "context") + "\n",
			} {
				if !strings.Contains(string(args), want) {
					t.Errorf("build: buildah args lack %q:\n%s", want, args)
				}
			}
			auth, _ := os.ReadFile(p.fakeLog + ".auth")
			if string(auth) != "xdg-auth\nhome-auth\n" {
				t.Errorf("build: buildah could read auth files %q, want both the pull and the push secret", auth)
			}
		case contract.StepPush:
			if !strings.Contains(string(args), "--authfile\n"+filepath.Join(p.root, "workspace", "push-secret", ".dockerconfigjson")+"\n") {
				t.Errorf("push: no --authfile for the push secret:\n%s", args)
			}
		}
		if name == contract.StepBuild || name == contract.StepPush {
			// buildah's pulls and push trust the staged bundle (the step mounts the memory volume).
			ca, _ := os.ReadFile(p.fakeLog + ".ca")
			if want := filepath.Join(p.root, "secrets", "trusted-ca", "tls-ca-bundle.pem") + "\n"; string(ca) != want {
				t.Errorf("%s: buildah ran with SSL_CERT_FILE %q, want the staged trust bundle %q", name, ca, want)
			}
		}
	}
	if l := logs.String(); strings.Contains(l, "CANARY") || strings.Contains(l, "Q0FOQVJZ") {
		t.Errorf("a secret reached the step logs:\n%s", l)
	}
	// Nothing but the Containerfile is in the build context; the trust bundle is staged for
	// mounting into RUN steps (it is not baked into the image).
	entries, _ := os.ReadDir(filepath.Join(p.root, "ocl", "context"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "Containerfile" {
		t.Errorf("build context holds %s", got)
	}
	if b, err := os.ReadFile(filepath.Join(p.root, "secrets", "trusted-ca", "tls-ca-bundle.pem")); err != nil || !strings.Contains(string(b), "BEGIN CERTIFICATE----- public") {
		t.Errorf("trust bundle not staged for mounting: %v", err)
	}
	staged, err := os.ReadFile(filepath.Join(p.root, "secrets", "entitlement", "entitlement.pem"))
	if err != nil || string(staged) != canaryCert {
		t.Errorf("entitlement not staged for mounting: %q, %v", staged, err)
	}
	if _, err := os.Stat(filepath.Join(p.root, "secrets", "entitlement", "..2026_11_24")); err == nil {
		t.Error("inject copied the kubelet's ..data directories")
	}
	// The rendered Containerfile never COPYs or ADDs secret material.
	cf := decodeContainerfile(t, pr)
	for _, line := range strings.Split(cf, "\n") {
		if strings.HasPrefix(line, "COPY") || strings.HasPrefix(line, "ADD") {
			t.Errorf("rendered Containerfile copies something: %q", line)
		}
	}
	for _, e := range ts.Steps {
		for _, v := range e.Env {
			if v.ValueFrom != nil {
				t.Errorf("step %s: env %s comes from a Secret or ConfigMap", e.Name, v.Name)
			}
		}
	}
	url, _ := os.ReadFile(filepath.Join(p.root, "results", contract.ResultImageURL))
	digest, _ := os.ReadFile(filepath.Join(p.root, "results", contract.ResultImageDigest))
	hash, _ := InputsHash(pi, in)
	// A tag of its own: the inputs hash and 12 characters of the TaskRun's uid.
	if !regexp.MustCompile(`^registry\.example\.com/os/infra:`+hash+`-[0-9a-f]{12}$`).Match(url) || string(digest) != fmt.Sprintf("sha256:%064d", 7) {
		t.Errorf("results: IMAGE_URL=%q IMAGE_DIGEST=%q", url, digest)
	}
}

// TestBuildFailureSaysSo: a failing buildah fails the step with one clear final line.
func TestBuildFailureSaysSo(t *testing.T) {
	p := newPod(t)
	pr, err := Render(loadExample(t, "minimal"), testInputs())
	if err != nil {
		t.Fatal(err)
	}
	ts := tektonTaskSpec(t, pr, contract.TaskBuild, fetchResults)
	out, err := p.run(t, step(t, ts, contract.StepInject))
	if err == nil || !strings.Contains(out, "inject: FAILED: the push-secret Secret has no .dockerconfigjson key; it must be of type kubernetes.io/dockerconfigjson") {
		t.Errorf("inject with a push secret that is not a dockerconfigjson: err=%v\n%s", err, out)
	}
	p.write(t, "push-secret/.dockerconfigjson", canaryPush)
	if out, err := p.run(t, step(t, ts, contract.StepInject)); err != nil {
		t.Fatalf("inject: %v\n%s", err, out)
	}
	for _, name := range []string{contract.StepBuild, contract.StepPush} {
		out, err := p.run(t, step(t, ts, name), "FAKE_BUILDAH_EXIT=3")
		if err == nil {
			t.Fatalf("%s succeeded with a failing buildah", name)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, name+": FAILED") || len(last) > 100 {
			t.Errorf("%s: last log line %q is not a short, clear failure line", name, last)
		}
		if b, _ := os.ReadFile(filepath.Join(p.root, "results", contract.ResultLastStep)); string(b) != name {
			t.Errorf("%s failed with LAST_STEP %q: the report would name another step", name, b)
		}
	}
	// buildah exits with the failing RUN's code, and so does the build step.
	var exit *exec.ExitError
	if _, err := p.run(t, step(t, ts, contract.StepBuild), "FAKE_BUILDAH_EXIT=3"); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("the build step's exit: %v, want buildah's 3", err)
	}
	if _, err := os.Stat(filepath.Join(p.root, "results", contract.ResultImageDigest)); err == nil {
		t.Error("a failed push wrote IMAGE_DIGEST")
	}

	// A failed push says why, in the log and in the FAILURE result the controller shows.
	var image string
	for _, p := range pr.Spec.Params {
		if p.Name == "IMAGE" {
			image = p.Value.StringVal
		}
	}
	registry, _, _ := strings.Cut(image, "/")
	// The push goes to a tag of its own: IMAGE-<12 characters of the TaskRun's uid>.
	runID := strings.ReplaceAll(p.Getenv(step(t, ts, contract.StepPush))("RUN_ID"), "-", "")
	if len(runID) < 12 {
		t.Fatalf("the push step's RUN_ID %q is not a uid", runID)
	}
	image += "-" + runID[:12]
	// Whether the registry takes the credentials is check-push's verdict (typed errors, before the
	// build, pkg/steps); buildah's text is never parsed: whatever it says, the line is the same.
	want := "buildah's push failed after the registry took the push secret; its error is above" +
		" (pushing " + image + " to registry " + registry + ")"
	for _, c := range []struct{ name, stderr, want string }{
		{"reads like refused credentials",
			`Error: pushing image "x" to "docker://x": initiating layer upload to /v2/os/worker/blobs/uploads/ in ` + registry + `: unauthorized: authentication required`, want},
		{"reads like a registry down",
			`Error: pushing image "x": trying to reuse blob: pinging container registry ` + registry + `: Get "https://` + registry + `/v2/": dial tcp 10.0.0.1:443: connect: connection refused`, want},
		{"anything else", `Error: writing blob: storage is full`, want},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := p.run(t, step(t, ts, contract.StepPush), "FAKE_BUILDAH_EXIT=125", "FAKE_BUILDAH_STDERR="+c.stderr)
			if err == nil {
				t.Fatal("push succeeded with a failing buildah")
			}
			if !strings.Contains(out, c.stderr) {
				t.Errorf("buildah's own error is not in the log:\n%s", out)
			}
			line, _, _ := strings.Cut(c.want, " (pushing ")
			if !strings.HasSuffix(strings.TrimSpace(out), "push: FAILED: "+line) {
				t.Errorf("last log line of\n%s\nwant %q", out, "push: FAILED: "+line)
			}
			got, err := os.ReadFile(filepath.Join(p.root, "results", contract.ResultFailure))
			if err != nil || string(got) != c.want {
				t.Errorf("FAILURE result = %q (%v), want %q", got, err, c.want)
			}
		})
	}
}

// TestParamsReachStepsThroughEnv: after Tekton's substitution every step of every task sees its
// inputs as environment variables with concrete values; no variable is left unresolved.
func TestParamsReachStepsThroughEnv(t *testing.T) {
	pi := loadExample(t, "entitlements")
	pr, err := Render(pi, testInputs())
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]string{
		"tasks.fetch-base-digest.results.BASE_IMAGE": testBase,
		"tasks.build.results.IMAGE_URL":              "registry.example.com/os/infra:x",
		"tasks.build.results.IMAGE_DIGEST":           "sha256:1",
	}
	for _, task := range []string{contract.TaskFetchBaseDigest, contract.TaskBuild, contract.TaskVerify, contract.TaskPromote} {
		ts := tektonTaskSpec(t, pr, task, results)
		for _, s := range ts.Steps {
			if tektonVar.MatchString(s.Image) {
				t.Errorf("%s/%s: image %q unresolved", task, s.Name, s.Image)
			}
			for _, e := range s.Env {
				if tektonVar.MatchString(e.Value) {
					t.Errorf("%s/%s: env %s=%q unresolved", task, s.Name, e.Name, e.Value)
				}
			}
		}
	}
	ts := tektonTaskSpec(t, pr, contract.TaskVerify, results)
	env := map[string]string{}
	for _, e := range ts.Steps[0].Env {
		env[e.Name] = e.Value
	}
	if env["IMAGE_DIGEST"] != "sha256:1" || env["PINNED_BASE_IMAGE"] != testBase || env["PUSH_SECRET_BOUND"] != "true" ||
		env["PUSH_SECRET_PATH"] != "/workspace/push-secret" || env["TARGET_ARCH"] != "amd64" {
		t.Errorf("verify env = %v", env)
	}
}

// TestNoShadowedPipelineParams: Tekton propagates pipeline parameters into embedded task specs,
// where a pipeline task's own parameter of the same name wins with its unresolved value. So a
// pipeline task may pass a pipeline parameter only under its own name, as $(params.<name>).
func TestNoShadowedPipelineParams(t *testing.T) {
	spec := PipelineSpec(Config{})
	declared := map[string]bool{}
	for _, p := range spec.Params {
		declared[p.Name] = true
	}
	for _, pt := range append(spec.Tasks, spec.Finally...) {
		for _, p := range pt.Params {
			if declared[p.Name] && p.Value.StringVal != "$(params."+p.Name+")" {
				t.Errorf("task %s: param %s shadows the pipeline parameter with %q", pt.Name, p.Name, p.Value.StringVal)
			}
		}
	}
}

// scriptVar matches a variable a script expands; scriptAssign one it sets itself.
var (
	scriptVar    = regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*)`)
	scriptAssign = regexp.MustCompile(`(?m)(?:^|\s|export\s+|for\s+)([A-Z][A-Z0-9_]*)(?:=|\s+in\s)`)
)

// TestScriptsReadOnlyTheirStepEnv: every upper-case variable a build step's script expands is
// set for that step by the generator (from the contract), set by the script itself, or one of
// the few the container provides; so a variable renamed on one side fails here.
func TestScriptsReadOnlyTheirStepEnv(t *testing.T) {
	provided := map[string]bool{"HOME": true, "XDG_RUNTIME_DIR": true,
		// Overrides of the work and secrets directories, for running the scripts outside a pod (tests).
		"OCL_WORKDIR": true, "OCL_SECRETS_DIR": true}
	spec := BuildTaskSpec(Config{})
	for _, s := range spec.Steps {
		env := map[string]bool{}
		for _, e := range s.Env {
			env[e.Name] = true
		}
		for _, m := range scriptAssign.FindAllStringSubmatch(s.Script, -1) {
			env[m[1]] = true
		}
		for _, m := range scriptVar.FindAllStringSubmatch(s.Script, -1) {
			if !env[m[1]] && !provided[m[1]] {
				t.Errorf("step %s: the script reads $%s, which the step's env does not set", s.Name, m[1])
			}
		}
	}
	// The check sees a variable the step lacks.
	if !scriptVar.MatchString("echo ${" + contract.ParamPool + "}") {
		t.Fatal("scriptVar does not match ${POOL}")
	}
}
