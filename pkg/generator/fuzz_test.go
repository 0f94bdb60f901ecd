package generator

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

func fuzzPoolImage(content, pushSpec, pool, arch string) *v1alpha1.PoolImage {
	pi := fuzzBase()
	pi.Spec.Containerfile[0].Content = content
	pi.Spec.Containerfile[0].Arch = v1alpha1.Arch(arch)
	pi.Spec.ImagePushSpec = pushSpec
	pi.Spec.MachineConfigPool.Name = pool
	return pi
}

var fuzzSeeds = []struct{ content, pushSpec, pool, arch string }{
	{"FROM configs AS final\nRUN true\n", "registry.example.com/os/worker:latest", "worker", "noarch"},
	{"FROM scratch\nCOPY --from=configs / /\n", "localhost:5000/os/w:1", "infra.edge", "amd64"},
	{"RUN echo $(params.IMAGE) $(context.taskRun.name) `id` $(id) ; rm -rf / #", "quay.io/o/r:t", "w", ""},
	{"COPY <<EOF /x\n$(touch /tmp/pwned)\nEOF\nARG OCL_BASE_IMAGE=evil\nFROM evil AS configs\n", "r.io:5000/a/b:c", "p", "arm64"},
	{"RUN true\x00", "r.io/a:b", "w", "noarch"},
	{strings.Repeat("A", 20000), "r.io/a:b@sha256:" + strings.Repeat("a", 64), "W", "x86"},
	{"RUN \xff\xfe", "$(whoami)/a:b", "-bad-", "s390x"},
}

// FuzzRender: any PoolImage either fails validation with a message naming a spec field, or
// renders a run whose Containerfile ends with the admin's content byte for byte.
func FuzzRender(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.content, s.pushSpec, s.pool, s.arch)
	}
	f.Fuzz(func(t *testing.T, content, pushSpec, pool, arch string) {
		pi := fuzzPoolImage(content, pushSpec, pool, arch)
		pr, err := Render(pi, testInputs())
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, "spec.") {
				t.Fatalf("error does not name a spec field: %q", msg)
			}
			if _, herr := InputsHash(pi, testInputs()); herr == nil {
				t.Fatal("Render failed but InputsHash succeeded")
			}
			return
		}
		var encoded string
		for _, p := range pr.Spec.Params {
			if p.Name == "CONTAINERFILE_BASE64" {
				encoded = p.Value.StringVal
			}
		}
		b, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			t.Fatal(err)
		}
		want := content
		if !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		if !strings.HasSuffix(string(b), "\n# ---- spec.containerfile (amd64), verbatim ----\n"+want) {
			t.Fatalf("the Containerfile does not end with the admin's content")
		}
		if len(pr.Name) > MaxRunNameLength {
			t.Fatalf("run name %q too long", pr.Name)
		}
		for _, pt := range pipelineOf(t, pi, testInputs()).Tasks {
			for _, s := range pt.TaskSpec.Steps {
				if tektonVar.MatchString(s.Script) {
					t.Fatalf("a script contains a Tekton variable")
				}
			}
		}
	})
}

// FuzzInputsHash: two valid PoolImages differing only in their Containerfile hash differently
// exactly when the contents differ; the same one hashes the same every time.
func FuzzInputsHash(f *testing.F) {
	f.Add("RUN a\n", "RUN b\n")
	f.Add("RUN a", "RUN a")
	f.Add("RUN a\n", "RUN a")
	f.Fuzz(func(t *testing.T, a, b string) {
		pa := fuzzPoolImage(a, "registry.example.com/os/worker:latest", "worker", "noarch")
		pb := fuzzPoolImage(b, "registry.example.com/os/worker:latest", "worker", "noarch")
		ha, errA := InputsHash(pa, testInputs())
		hb, errB := InputsHash(pb, testInputs())
		if errA != nil || errB != nil {
			return
		}
		if again, _ := InputsHash(pa, testInputs()); again != ha {
			t.Fatal("the same inputs hashed differently")
		}
		if (a == b) != (ha == hb) {
			t.Fatalf("contents equal=%v but hashes equal=%v", a == b, ha == hb)
		}
	})
}

// fuzzBase is a valid PoolImage the fuzz targets mutate.
func fuzzBase() *v1alpha1.PoolImage {
	return &v1alpha1.PoolImage{
		Spec: v1alpha1.PoolImageSpec{
			MachineConfigPool: v1alpha1.MachineConfigPoolReference{Name: "worker"},
			Containerfile:     []v1alpha1.Containerfile{{}},
			ImagePushSpec:     "registry.example.com/os/worker:latest",
		},
	}
}

// corpusStrings returns the string arguments of every committed corpus entry of a fuzz target
// (testdata/fuzz/<target>/, the `go test fuzz v1` format), seeds included.
func corpusStrings(t *testing.T, target string) [][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "string("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(v, ")"))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				args = append(args, s)
			}
		}
		out = append(out, args)
	}
	return out
}

// TestCorpusHashesDoNotCollide hashes every Containerfile of the committed fuzz corpora (and the
// seeds) on the same cluster facts: distinct contents never share a hash, and the same content
// always gets the same one.
func TestCorpusHashesDoNotCollide(t *testing.T) {
	contents := map[string]bool{}
	for _, s := range fuzzSeeds {
		contents[s.content] = true
	}
	for _, target := range []string{"FuzzInputsHash", "FuzzRender"} {
		for _, args := range corpusStrings(t, target) {
			n := len(args)
			if target == "FuzzRender" {
				n = min(n, 1) // content is its first argument
			}
			for _, a := range args[:n] {
				contents[a] = true
			}
		}
	}
	byHash := map[string]string{}
	hashed := 0
	for c := range contents {
		pi := fuzzPoolImage(c, "registry.example.com/os/worker:latest", "worker", "noarch")
		h, err := InputsHash(pi, testInputs())
		if err != nil {
			continue // invalid content: nothing is built
		}
		hashed++
		if other, ok := byHash[h]; ok && other != c {
			t.Fatalf("%q and %q share the inputs hash %s", other, c, h)
		}
		byHash[h] = c
		if again, _ := InputsHash(pi, testInputs()); again != h {
			t.Fatalf("%q hashed to %s, then %s", c, h, again)
		}
	}
	t.Logf("%d distinct valid Containerfiles, %d distinct hashes", hashed, len(byHash))
	if hashed < len(fuzzSeeds)/2 {
		t.Errorf("only %d corpus entries hashed: the corpus was not read", hashed)
	}
}
