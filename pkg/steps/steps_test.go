package steps

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one tar entry of a test layer: a regular file, a hard link (link != ""), or a
// whiteout when the base name starts with .wh.
type entry struct {
	path, content, link string
}

func layer(t testing.TB, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.path, Mode: 0o644, Size: int64(len(e.content)), Typeflag: tar.TypeReg}
		if e.link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.link == "" {
			if _, err := tw.Write([]byte(e.content)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t testing.TB, base v1.Image, arch string, labels map[string]string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	if labels != nil {
		cfg.Config.Labels = labels
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

const kver = "5.14.0-570.el9.x86_64"

var bootable = map[string]string{"ostree.bootable": "true", "containers.bootc": "1"}

// standInBase is a small stand-in for an RHCOS base image: os-release, a kernel and an
// initramfs (a hard link, as in ostree images), the bootable labels.
func standInBase(t testing.TB) v1.Image {
	return image(t, empty.Image, "amd64", bootable,
		layer(t, entry{path: "usr/lib/os-release", content: "NAME=\"Red Hat Enterprise Linux CoreOS\"\n"},
			entry{path: "usr/lib/modules/" + kver + "/vmlinuz", content: "kernel"},
			entry{path: "sysroot/ostree/repo/objects/ab/initramfs.file", content: "initramfs"},
			entry{path: "usr/lib/modules/" + kver + "/initramfs.img", link: "sysroot/ostree/repo/objects/ab/initramfs.file"}),
		layer(t, entry{path: "./etc/machine-config-daemon/placeholder", content: "x"}))
}

func TestVerify(t *testing.T) {
	base := standInBase(t)
	motd := layer(t, entry{path: "etc/motd", content: "hi"})
	tests := []struct {
		name     string
		img      func() v1.Image
		arch     string
		problems []string
		kernels  []string
	}{{
		name:    "derived and bootable",
		img:     func() v1.Image { return image(t, base, "amd64", nil, motd) },
		kernels: []string{kver},
	}, {
		name: "kernel swapped for another version",
		img: func() v1.Image {
			return image(t, base, "amd64", nil, layer(t,
				entry{path: "usr/lib/modules/.wh." + kver},
				entry{path: "usr/lib/modules/6.1.0-rt/vmlinuz", content: "rt"},
				entry{path: "usr/lib/modules/6.1.0-rt/initramfs.img", content: "rt"}))
		},
		kernels: []string{"6.1.0-rt"},
	}, {
		// A defect once: one complete kernel beside a second one is not bootable on ostree.
		name: "a second kernel added beside the base's",
		img: func() v1.Image {
			return image(t, base, "amd64", nil, layer(t,
				entry{path: "usr/lib/modules/6.1.0-rt/vmlinuz", content: "rt"},
				entry{path: "usr/lib/modules/6.1.0-rt/initramfs.img", content: "rt"}))
		},
		problems: []string{"2 kernels under /usr/lib/modules (" + kver + ", 6.1.0-rt): an ostree-based OS boots exactly one"},
		kernels:  []string{kver, "6.1.0-rt"},
	}, {
		name: "an incomplete second kernel beside a complete one",
		img: func() v1.Image {
			return image(t, base, "amd64", nil, layer(t, entry{path: "usr/lib/modules/6.1.0-rt/vmlinuz", content: "rt"}))
		},
		problems: []string{"2 kernels under /usr/lib/modules"},
		kernels:  []string{kver},
	}, {
		name: "kernel deleted",
		img: func() v1.Image {
			return image(t, base, "amd64", nil, layer(t, entry{path: "usr/lib/modules/" + kver + "/.wh.vmlinuz"}))
		},
		problems: []string{"no kernel: no /usr/lib/modules/<version>/vmlinuz (was it removed by the Containerfile?)"},
	}, {
		name:     "all modules deleted",
		img:      func() v1.Image { return image(t, base, "amd64", nil, layer(t, entry{path: "./usr/lib/.wh.modules"})) },
		problems: []string{"no kernel: no /usr/lib/modules/<version>/vmlinuz (was it removed by the Containerfile?)"},
	}, {
		name: "initramfs deleted",
		img: func() v1.Image {
			return image(t, base, "amd64", nil, layer(t, entry{path: "usr/lib/modules/" + kver + "/.wh.initramfs.img"}))
		},
		problems: []string{"no initramfs: /usr/lib/modules/" + kver + "/vmlinuz has no initramfs.img beside it"},
	}, {
		name: "opaque kernel directory keeps only this layer's files",
		img: func() v1.Image {
			return image(t, base, "amd64", nil, layer(t,
				entry{path: "usr/lib/modules/" + kver + "/.wh..wh..opq"},
				entry{path: "usr/lib/modules/" + kver + "/vmlinuz", content: "patched"}))
		},
		problems: []string{"no initramfs: /usr/lib/modules/" + kver + "/vmlinuz has no initramfs.img beside it"},
	}, {
		name:     "os-release deleted",
		img:      func() v1.Image { return image(t, base, "amd64", nil, layer(t, entry{path: "usr/lib/.wh.os-release"})) },
		problems: []string{"/usr/lib/os-release is missing"},
		kernels:  []string{kver},
	}, {
		name: "not built on the base",
		img: func() v1.Image {
			return image(t, empty.Image, "amd64", bootable, layer(t,
				entry{path: "usr/lib/os-release", content: "NAME=Other\n"},
				entry{path: "usr/lib/modules/" + kver + "/vmlinuz", content: "k"},
				entry{path: "usr/lib/modules/" + kver + "/initramfs.img", content: "i"}), motd)
		},
		problems: []string{"layer 0 of the image"},
		kernels:  []string{kver},
	}, {
		name:     "fewer layers than the base",
		img:      func() v1.Image { return image(t, empty.Image, "amd64", bootable, motd) },
		problems: []string{"the image has 1 layers, fewer than the base image's 2", "/usr/lib/os-release is missing", "no kernel"},
	}, {
		name:     "wrong architecture",
		img:      func() v1.Image { return image(t, base, "arm64", nil, motd) },
		problems: []string{"the image is for linux/arm64 but the pool's nodes are linux/amd64"},
		kernels:  []string{kver},
	}, {
		name:     "bootable label removed",
		img:      func() v1.Image { return image(t, base, "amd64", map[string]string{"ostree.bootable": "false"}, motd) },
		problems: []string{"the image has neither the containers.bootc=1 nor the ostree.bootable=true label: it is not a bootable container image"},
		kernels:  []string{kver},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(tc.img(), base, "amd64")
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Problems) != len(tc.problems) {
				t.Fatalf("problems = %q, want %d: %q", res.Problems, len(tc.problems), tc.problems)
			}
			for i, want := range tc.problems {
				if !strings.HasPrefix(res.Problems[i], want) {
					t.Errorf("problem %d = %q, want prefix %q", i, res.Problems[i], want)
				}
			}
			if strings.Join(res.Kernels, ",") != strings.Join(tc.kernels, ",") {
				t.Errorf("kernels = %v, want %v", res.Kernels, tc.kernels)
			}
		})
	}
}

// testRegistry is a real OCI distribution registry (go-containerregistry's) on 127.0.0.1,
// optionally requiring basic auth.
type testRegistry struct {
	host, user, pass string
}

func newRegistry(t *testing.T, user, pass string) *testRegistry {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testRegistry{host: strings.TrimPrefix(srv.URL, "http://"), user: user, pass: pass}
}

func (r *testRegistry) auth() remote.Option {
	return remote.WithAuthFromKeychain(keychainFunc(func(string) (string, string) { return r.user, r.pass }))
}

type keychainFunc func(string) (string, string)

func (k keychainFunc) Resolve(r authn.Resource) (authn.Authenticator, error) {
	u, p := k(r.RegistryStr())
	if u == "" {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: u, Password: p}, nil
}

func (r *testRegistry) push(t *testing.T, ref string, img v1.Image) name.Digest {
	t.Helper()
	tag, err := name.NewTag(r.host+"/"+ref, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, r.auth()); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}

// dockerconfig writes a dockerconfigjson Secret volume for the registry and returns its dir.
func (r *testRegistry) dockerconfig(t *testing.T, pass string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(r.user + ":" + pass))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.host, auth)
	if err := os.WriteFile(filepath.Join(dir, ".dockerconfigjson"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stepEnv is the environment of one stage run, with result files in a temp dir.
type stepEnv struct {
	vars    map[string]string
	results string
	out     bytes.Buffer
}

func newStepEnv(t *testing.T, vars map[string]string) *stepEnv {
	s := &stepEnv{vars: vars, results: t.TempDir()}
	for _, r := range []string{"BASE_IMAGE", "BASE_IMAGE_DIGEST", "PROMOTED_IMAGE", "FAILURE", "LAST_STEP"} {
		s.vars["RESULT_"+r] = filepath.Join(s.results, r)
	}
	return s
}

func (s *stepEnv) env() Env {
	return Env{Getenv: func(k string) string { return s.vars[k] }, Stdout: &s.out}
}

func (s *stepEnv) result(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.results, name))
	if err != nil {
		t.Fatalf("result %s: %v\nlog:\n%s", name, err, s.out.String())
	}
	return string(b)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestFetchBaseDigest(t *testing.T) {
	reg := newRegistry(t, "puller", "s3cret-pull-password")
	amd := standInBase(t)
	arm := image(t, amd, "arm64", nil)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	idxTag, _ := name.NewTag(reg.host + "/release/rhcos:4.20")
	if err := remote.WriteIndex(idxTag, idx, reg.auth()); err != nil {
		t.Fatal(err)
	}
	amdDigest, _ := amd.Digest()
	armDigest, _ := arm.Digest()
	single := reg.push(t, "release/rhcos-single:4.20", amd)
	creds := reg.dockerconfig(t, "s3cret-pull-password")

	for _, tc := range []struct{ ref, arch, want string }{
		{idxTag.String(), "amd64", amdDigest.String()},
		{idxTag.String(), "arm64", armDigest.String()},
		{single.String(), "amd64", amdDigest.String()},
	} {
		s := newStepEnv(t, map[string]string{"BASE_IMAGE": tc.ref, "TARGET_ARCH": tc.arch,
			"BASE_PULL_SECRET_BOUND": "true", "BASE_PULL_SECRET_PATH": creds})
		if err := Run(context.Background(), "fetch-base-digest", s.env()); err != nil {
			t.Fatalf("%s %s: %v\n%s", tc.ref, tc.arch, err, s.out.String())
		}
		if got := s.result(t, "BASE_IMAGE_DIGEST"); got != tc.want {
			t.Errorf("%s %s: digest %s, want %s", tc.ref, tc.arch, got, tc.want)
		}
		if got := s.result(t, "BASE_IMAGE"); got != reg.host+"/"+strings.Split(strings.TrimPrefix(tc.ref, reg.host+"/"), ":")[0]+"@"+tc.want &&
			got != single.Context().Digest(tc.want).String() {
			t.Errorf("%s %s: BASE_IMAGE %s", tc.ref, tc.arch, got)
		}
		if strings.Contains(s.out.String(), "s3cret") {
			t.Errorf("the log shows the password:\n%s", s.out.String())
		}
	}

	for _, tc := range []struct {
		name, ref, arch, creds string
		want                   string
	}{
		{"arch not in index", idxTag.String(), "s390x", creds, "has no linux/s390x image (it has [linux/amd64 linux/arm64])"},
		{"single image of another arch", single.String(), "arm64", creds, "is built for linux/amd64 but the pool's nodes are arm64"},
		{"missing image", reg.host + "/release/nope:1", "amd64", creds, "check that the image exists and that spec.baseImagePullSecret can pull from " + reg.host},
		{"wrong password", idxTag.String(), "amd64", reg.dockerconfig(t, "wrong"), "check that the image exists and that spec.baseImagePullSecret can pull from " + reg.host},
		{"no pull secret", idxTag.String(), "amd64", "", "check that the image exists and that spec.baseImagePullSecret can pull from " + reg.host},
	} {
		vars := map[string]string{"BASE_IMAGE": tc.ref, "TARGET_ARCH": tc.arch}
		if tc.creds != "" {
			vars["BASE_PULL_SECRET_BOUND"], vars["BASE_PULL_SECRET_PATH"] = "true", tc.creds
		}
		s := newStepEnv(t, vars)
		err := Run(context.Background(), "fetch-base-digest", s.env())
		if err == nil {
			t.Errorf("%s: succeeded", tc.name)
			continue
		}
		if !strings.Contains(lastLine(s.out.String()), tc.want) {
			t.Errorf("%s: last log line %q, want %q", tc.name, lastLine(s.out.String()), tc.want)
		}
		if strings.Contains(s.out.String(), "s3cret") {
			t.Errorf("%s: the log shows the password", tc.name)
		}
		if _, err := os.Stat(filepath.Join(s.results, "BASE_IMAGE")); err == nil {
			t.Errorf("%s: wrote a result", tc.name)
		}
	}
}

func TestVerifyAndPromoteStages(t *testing.T) {
	reg := newRegistry(t, "pusher", "s3cret-push-password")
	base := standInBase(t)
	baseRef := reg.push(t, "release/rhcos:4.20", base)
	good := image(t, base, "amd64", nil, layer(t, entry{path: "etc/motd", content: "hi"}))
	bad := image(t, base, "amd64", nil, layer(t, entry{path: "usr/lib/modules/" + kver + "/.wh.vmlinuz"}))
	goodRef := reg.push(t, "os/worker:aaaa", good)
	badRef := reg.push(t, "os/worker:bbbb", bad)
	creds := reg.dockerconfig(t, "s3cret-push-password")

	vars := func(ref name.Digest) map[string]string {
		return map[string]string{
			"IMAGE_URL": ref.Context().Name() + ":aaaa", "IMAGE_DIGEST": ref.DigestStr(),
			"PINNED_BASE_IMAGE": baseRef.String(), "TARGET_ARCH": "amd64", "CURRENT_TAG": "latest",
			"PUSH_SECRET_BOUND": "true", "PUSH_SECRET_PATH": creds,
		}
	}

	s := newStepEnv(t, vars(goodRef))
	if err := Run(context.Background(), "verify", s.env()); err != nil {
		t.Fatalf("verify good image: %v\n%s", err, s.out.String())
	}
	if !strings.Contains(s.out.String(), "verify: 3 layers, the first 2 from the base; kernels with initramfs: ["+kver+"]") {
		t.Errorf("verify log:\n%s", s.out.String())
	}

	s = newStepEnv(t, vars(badRef))
	if err := Run(context.Background(), "verify", s.env()); err == nil || !IsReported(err) {
		t.Fatalf("verify of an image without kernel: err = %v\n%s", err, s.out.String())
	}
	if !strings.Contains(s.out.String(), "verify: problem: no kernel") ||
		!strings.HasPrefix(lastLine(s.out.String()), "verify: FAILED: "+badRef.String()+" is not a bootable image derived from the base (1 problem(s) above); nothing is promoted") {
		t.Errorf("verify log:\n%s", s.out.String())
	}

	s = newStepEnv(t, vars(goodRef))
	if err := Run(context.Background(), "promote", s.env()); err != nil {
		t.Fatalf("promote: %v\n%s", err, s.out.String())
	}
	latest, err := remote.Get(goodRef.Context().Tag("latest"), reg.auth())
	if err != nil {
		t.Fatal(err)
	}
	if latest.Digest.String() != goodRef.DigestStr() {
		t.Errorf("latest = %s, want %s", latest.Digest, goodRef.DigestStr())
	}
	if got := s.result(t, "PROMOTED_IMAGE"); got != goodRef.String() {
		t.Errorf("PROMOTED_IMAGE = %s", got)
	}

	// Without credentials the push registry refuses: promote fails, naming the repository.
	v := vars(goodRef)
	delete(v, "PUSH_SECRET_BOUND")
	s = newStepEnv(t, v)
	if err := Run(context.Background(), "promote", s.env()); err == nil {
		t.Fatal("promote without credentials succeeded")
	}
	if !strings.Contains(lastLine(s.out.String()), "promote: FAILED: cannot read the verified image "+goodRef.String()) {
		t.Errorf("promote log:\n%s", s.out.String())
	}
	if strings.Contains(s.out.String(), "s3cret") {
		t.Error("a log shows the password")
	}
}

// TestReport: the verdict is the first line, the failed task, step and logs command follow on
// lines of their own, every line fits the dashboard's log view (100 characters), and a task that
// did not run is "Skipped", not Tekton's "None".
func TestReport(t *testing.T) {
	base := map[string]string{"POOL": "worker", "PIPELINE_RUN": "ocl-worker-0123456789", "NAMESPACE": "ocl-pipelines",
		"AGGREGATE_STATUS": "Failed", "FETCH_STATUS": "Succeeded", "BUILD_STATUS": "Failed", "VERIFY_STATUS": "None", "PROMOTE_STATUS": "None"}
	cases := []struct {
		name string
		vars map[string]string
		want []string // the first lines
	}{{
		name: "the build step failed",
		vars: map[string]string{"BUILD_STEP": "build"},
		want: []string{"FAILED: the OS image was not built; the pool keeps its current image", "  pool: worker", "  task: build", "  step: build",
			"  logs:", "tkn pipelinerun logs ocl-worker-0123456789 -n ocl-pipelines --task build"},
	}, {
		name: "check-push failed",
		vars: map[string]string{"BUILD_STEP": "check-push"},
		want: []string{"FAILED: the OS image was not built; the pool keeps its current image", "  pool: worker", "  task: build", "  step: check-push"},
	}, {
		name: "the build task failed before any step wrote its name (the pod never started)",
		vars: map[string]string{"BUILD_STEP": "", "BUILD_REASON": "PodCreationFailed"},
		want: []string{"FAILED: the OS image was not built; the pool keeps its current image", "  pool: worker", "  task: build",
			"  step: not known (PodCreationFailed before a step reported): one of inject, check-push, build, push"},
	}, {
		name: "fetch-base-digest failed: its only step",
		vars: map[string]string{"FETCH_STATUS": "Failed", "BUILD_STATUS": "None"},
		want: []string{"FAILED: the OS image was not built; the pool keeps its current image", "  pool: worker", "  task: fetch-base-digest",
			"  step: fetch-base-digest", "  logs:", "tkn pipelinerun logs ocl-worker-0123456789 -n ocl-pipelines --task fetch-base-digest"},
	}, {
		name: "verify refused the image",
		vars: map[string]string{"BUILD_STATUS": "Succeeded", "BUILD_STEP": "push", "VERIFY_STATUS": "Failed"},
		want: []string{"FAILED: the OS image was not built; the pool keeps its current image", "  pool: worker", "  task: verify", "  step: verify"},
	}, {
		name: "succeeded",
		vars: map[string]string{"AGGREGATE_STATUS": "Completed", "BUILD_STATUS": "Succeeded", "VERIFY_STATUS": "Succeeded", "BUILD_STEP": "push"},
		want: []string{"SUCCEEDED: the OS image is built and verified; the controller promotes it", "  pool: worker", "stages:",
			"  fetch-base-digest  Succeeded", "  build              Succeeded", "  verify             Succeeded", "  promote            Skipped"},
	}, {
		// Tekton's aggregate is Completed when a task was skipped: a run stopped gracefully
		// during fetch-base-digest is not a success.
		name: "stopped before the build (StoppedRunFinally): Completed, nothing built",
		vars: map[string]string{"AGGREGATE_STATUS": "Completed", "FETCH_STATUS": "Succeeded", "BUILD_STATUS": "None"},
		want: []string{"NOT BUILT: the run ended Completed before every stage ran; the pool keeps its image", "  pool: worker",
			"  logs:", "tkn pipelinerun logs ocl-worker-0123456789 -n ocl-pipelines"},
	}, {
		name: "stopped during the build: verify skipped",
		vars: map[string]string{"AGGREGATE_STATUS": "Completed", "BUILD_STATUS": "Succeeded", "BUILD_STEP": "push", "VERIFY_STATUS": "None"},
		want: []string{"NOT BUILT: the run ended Completed before every stage ran; the pool keeps its image"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tc.vars {
				vars[k] = v
			}
			s := newStepEnv(t, vars)
			if err := Run(context.Background(), "report", s.env()); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(s.out.String(), "\n"), "\n")
			if len(lines) < len(tc.want) || strings.Join(lines[:len(tc.want)], "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("report:\n%s\nwant it to start with:\n%s", s.out.String(), strings.Join(tc.want, "\n"))
			}
			for _, l := range lines {
				if len(l) > 100 {
					t.Errorf("line of %d characters: %q", len(l), l)
				}
				if strings.HasSuffix(l, " None") {
					t.Errorf("Tekton's None in %q", l)
				}
			}
		})
	}
}

func TestRunUnknownStageAndMissingInputs(t *testing.T) {
	s := newStepEnv(t, map[string]string{})
	if err := Run(context.Background(), "deploy", s.env()); err == nil || !strings.Contains(err.Error(), `unknown stage "deploy"`) {
		t.Errorf("unknown stage: %v", err)
	}
	err := Run(context.Background(), "verify", s.env())
	if err == nil || !strings.Contains(err.Error(), "missing environment variable(s) IMAGE_URL, IMAGE_DIGEST, PINNED_BASE_IMAGE, TARGET_ARCH") {
		t.Errorf("missing inputs: %v", err)
	}
}
