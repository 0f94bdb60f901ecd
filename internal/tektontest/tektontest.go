// Package tektontest runs the steps of a generated PipelineRun outside Kubernetes, for tests:
// it applies Tekton's own substitution code to one pipeline task, in the order its reconcilers
// do, and runs the resulting steps' scripts with bash in a directory standing in for the pod.
package tektontest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	presources "github.com/tektoncd/pipeline/pkg/reconciler/pipelinerun/resources"
	tresources "github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	"github.com/tektoncd/pipeline/pkg/substitution"
	"github.com/tektoncd/pipeline/pkg/workspace"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// TaskSpec returns the TaskSpec the pod of pipeline task `task` of pr would run: pipeline
// parameters, context and workspaces are applied (with Tekton's propagation into embedded specs),
// then the results of earlier tasks (results maps "tasks.<task>.results.<name>" to values, as
// Tekton's ApplyTaskResults and PropagateResults do), then the TaskRun's parameters, context,
// results and workspaces.
func TaskSpec(pr *tektonv1.PipelineRun, task string, results map[string]string) (*tektonv1.TaskSpec, error) {
	if pr.Spec.PipelineSpec == nil {
		return nil, fmt.Errorf("PipelineRun %s embeds no pipeline", pr.Name)
	}
	ps, err := presources.ApplyParameters(pr.Spec.PipelineSpec.DeepCopy(), pr)
	if err != nil {
		return nil, fmt.Errorf("apply pipeline parameters: %w", err)
	}
	ps = presources.ApplyContexts(ps, "", pr)
	ps = presources.ApplyWorkspaces(ps, pr)
	var pt *tektonv1.PipelineTask
	all := append(append([]tektonv1.PipelineTask{}, ps.Tasks...), ps.Finally...)
	for i := range all {
		if all[i].Name == task {
			pt = &all[i]
		}
	}
	if pt == nil || pt.TaskSpec == nil {
		return nil, fmt.Errorf("no pipeline task %q with an embedded spec", task)
	}
	// A uid as the API server gives one ($(context.taskRun.uid)): derived from the names, so
	// the same run gives the same uid.
	sum := sha256.Sum256([]byte(pr.Namespace + "/" + pr.Name + "-" + task))
	h := hex.EncodeToString(sum[:16])
	uid := types.UID(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32])
	tr := &tektonv1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: pr.Name + "-" + task, Namespace: pr.Namespace, UID: uid}}
	for _, p := range pt.Params {
		p.Value.StringVal = substitution.ApplyReplacements(p.Value.StringVal, results)
		tr.Spec.Params = append(tr.Spec.Params, p)
	}
	bound := map[string]tektonv1.WorkspaceBinding{}
	for _, w := range pr.Spec.Workspaces {
		bound[w.Name] = w
	}
	for _, w := range pt.Workspaces {
		if b, ok := bound[w.Workspace]; ok {
			b.Name = w.Name
			tr.Spec.Workspaces = append(tr.Spec.Workspaces, b)
		}
	}
	ts := tresources.ApplyReplacements(pt.TaskSpec.TaskSpec.DeepCopy(), results, nil, nil)
	ts = tresources.ApplyParameters(ts, tr, ts.Params...)
	ts = tresources.ApplyContexts(ts, task, tr)
	ts = tresources.ApplyResults(ts)
	ts = tresources.ApplyWorkspaces(context.Background(), ts, ts.Workspaces, tr.Spec.Workspaces, workspace.CreateVolumes(tr.Spec.Workspaces))
	return ts, nil
}

// Step returns the named step of ts.
func Step(ts *tektonv1.TaskSpec, name string) (tektonv1.Step, error) {
	for _, s := range ts.Steps {
		if s.Name == name {
			return s, nil
		}
	}
	return tektonv1.Step{}, fmt.Errorf("no step %q", name)
}

// Pod stands in for a build pod: Root holds workspace/ (the pod's /workspace), results/ (its
// /tekton/results), ocl/ (the task's work directory) and secrets/ (its memory volume).
type Pod struct {
	// Root is the directory standing in for the pod's filesystem.
	Root string
	// PathPrefix is prepended to PATH (e.g. a directory with a stand-in buildah).
	PathPrefix string
}

// NewPod creates the pod's directories under root.
func NewPod(root string) (*Pod, error) {
	for _, d := range []string{"workspace", "results", "secrets", "ocl"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}
	return &Pod{Root: root}, nil
}

// WriteFile creates a file under the pod's /workspace (a bound Secret or ConfigMap).
func (p *Pod) WriteFile(rel, content string) error {
	path := filepath.Join(p.Root, "workspace", rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o600)
}

// Env returns a step's environment with the pod's paths mapped into Root.
func (p *Pod) Env(step tektonv1.Step) []string {
	path := os.Getenv("PATH")
	if p.PathPrefix != "" {
		path = p.PathPrefix + ":" + path
	}
	env := []string{
		"PATH=" + path,
		"OCL_WORKDIR=" + filepath.Join(p.Root, "ocl"),
	}
	// The memory volume exists for a step only when the step mounts it, as in the pod.
	for _, m := range step.VolumeMounts {
		if m.MountPath == contract.SecretsDir {
			env = append(env, "OCL_SECRETS_DIR="+filepath.Join(p.Root, "secrets"))
		}
	}
	for _, e := range step.Env {
		v := strings.Replace(e.Value, "/workspace/", filepath.Join(p.Root, "workspace")+"/", 1)
		v = strings.Replace(v, "/tekton/results/", filepath.Join(p.Root, "results")+"/", 1)
		env = append(env, e.Name+"="+v)
	}
	return env
}

// Run executes a script step with bash and returns its combined output.
func (p *Pod) Run(step tektonv1.Step, extraEnv ...string) (string, error) {
	if step.Script == "" {
		return "", fmt.Errorf("step %s has no script", step.Name)
	}
	script := filepath.Join(p.Root, "script-"+step.Name)
	if err := os.WriteFile(script, []byte(step.Script), 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("bash", script)
	cmd.Dir = p.Root
	cmd.Env = append(p.Env(step), extraEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Getenv returns a lookup over a step's mapped environment, for running Go stages in-process.
func (p *Pod) Getenv(step tektonv1.Step) func(string) string {
	m := map[string]string{}
	for _, kv := range p.Env(step) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// Result reads a result the pod's steps wrote.
func (p *Pod) Result(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(p.Root, "results", name))
	return string(b), err
}
