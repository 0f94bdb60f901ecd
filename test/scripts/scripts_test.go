package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const root = "../.."

// moduleDir matches a module directory looked up without a download: on a new machine (an empty
// GOMODCACHE) `go list -m -f '{{.Dir}}'` prints nothing, and the script goes on with "" (once
// `make demo` failed after 8 minutes on "/machineconfiguration/v1/..." not found).
var moduleDir = regexp.MustCompile(`go list -m[^|;&\n]*\.Dir`)

// scripts returns the repository's shell scripts and Makefile.
func scripts(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"hack", "test", ".ci"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if strings.HasSuffix(path, ".sh") || filepath.Base(path) == "run" {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return append(out, filepath.Join(root, "Makefile"))
}

func TestModuleDirectoriesComeFromModdir(t *testing.T) {
	n := 0
	// The scripts and the Go harness, which runs the same lookups (test/stack).
	harness, err := filepath.Glob(filepath.Join(root, "test/stack/*.go"))
	if err != nil || len(harness) == 0 {
		t.Fatalf("test/stack: %v %v", harness, err)
	}
	for _, path := range append(scripts(t), harness...) {
		if filepath.Base(path) == "moddir.sh" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if moduleDir.MatchString(line) {
				t.Errorf("%s:%d looks up a module directory without downloading it (empty on a new machine): use hack/moddir.sh\n\t%s", path, i+1, strings.TrimSpace(line))
			}
			if strings.Contains(line, "moddir.sh") {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no script uses hack/moddir.sh: the check would pass vacuously (test/stack reads the CRDs of openshift/api and tektoncd/pipeline through it)")
	}
}

// TestModdirDownloadsIntoAnEmptyCache runs hack/moddir.sh as a new machine would: an empty
// GOMODCACHE. It must print an existing directory, where `go list -m` alone prints "".
func TestModdirDownloadsIntoAnEmptyCache(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads a module")
	}
	cache := t.TempDir()
	env := append(os.Environ(), "GOMODCACHE="+cache, "GOFLAGS=-modcacherw")
	// The module is small and required by the root go.mod: the check is about the empty cache.
	const mod = "sigs.k8s.io/yaml"

	list := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod)
	list.Dir, list.Env = root, env
	got, err := list.Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	if strings.TrimSpace(string(got)) != "" {
		t.Fatalf("precondition: go list -m printed %q for a module not in an empty cache; this test no longer shows the failure it guards against", got)
	}

	cmd := exec.Command(filepath.Join(root, "hack/moddir.sh"), mod)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/moddir.sh %s: %v\n%s", mod, err, out)
	}
	dir := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dir, cache) {
		t.Fatalf("hack/moddir.sh printed %q, not a directory of the module cache %s", dir, cache)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("hack/moddir.sh printed %s, which holds no module: %v", dir, err)
	}
}

func TestModdirFailsOnAnUnknownModule(t *testing.T) {
	cmd := exec.Command(filepath.Join(root, "hack/moddir.sh"), "example.com/not-required-by-this-module")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("hack/moddir.sh succeeded for a module go.mod does not require, printing %q", out)
	}
	if !strings.Contains(string(out), "moddir:") || !strings.Contains(string(out), "example.com/not-required-by-this-module") {
		t.Fatalf("the error does not name the module: %s", out)
	}
}
