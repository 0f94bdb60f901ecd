package generator

import (
	"regexp"
	"strings"
	"testing"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// TestDisplayNames: what the dashboard's task list and tkn show stays short and the same from run
// to run: no Tekton variable (a parameter would bring an image reference in), no registry host,
// digest or hash; pipeline-task names fit the dashboard's task list (32 characters), step, task
// and pipeline names stay within 60. The image references are in the logs' first lines and in
// the results.
func TestDisplayNames(t *testing.T) {
	hexRun := regexp.MustCompile(`[0-9a-f]{7,}`)
	check := func(t *testing.T, what, name string, limit int) {
		t.Helper()
		switch {
		case name == "":
			t.Errorf("%s has no displayName", what)
		case len(name) > limit:
			t.Errorf("%s displayName %q is %d characters, want at most %d", what, name, len(name), limit)
		case strings.Contains(name, "$("), strings.Contains(name, "/"), strings.Contains(name, "@"), hexRun.MatchString(name):
			t.Errorf("%s displayName %q carries a variable, a reference, a digest or a hash", what, name)
		}
	}
	checkTask := func(t *testing.T, what string, ts *tektonv1.TaskSpec) {
		t.Helper()
		check(t, what, ts.DisplayName, 60)
		for _, s := range ts.Steps {
			check(t, what+" step "+s.Name, s.DisplayName, 60)
		}
	}
	for _, name := range examples(t) {
		t.Run(name, func(t *testing.T) {
			ps := pipelineOf(t, loadExample(t, name), testInputs())
			check(t, "the pipeline", ps.DisplayName, 60)
			for _, pt := range append(append([]tektonv1.PipelineTask{}, ps.Tasks...), ps.Finally...) {
				check(t, "pipeline task "+pt.Name, pt.DisplayName, 32)
				checkTask(t, "task "+pt.Name, &pt.TaskSpec.TaskSpec)
			}
		})
	}
	tr, err := RenderTag(loadExample(t, "minimal"), testInputs(), "registry.example.com/os/worker@sha256:"+strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	checkTask(t, "the tag TaskRun's task", tr.Spec.TaskSpec)
}
