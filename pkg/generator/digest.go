package generator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

// SpecDigest returns the sha256 (hex) of what a PipelineRun runs: its embedded pipeline (tasks,
// steps, scripts, images, results, finally), parameters, workspaces and per-task overrides. A
// controller compares the digest of a run it finds with the digest of the run it rendered for
// the same inputs before it trusts the run's results: a copy made by the dashboard's re-run
// has the same digest, an "edit and run" that drops the verify task or points IMAGE elsewhere
// does not, nor does a run that references a Pipeline (what that runs is not in the run: Tekton
// stores the referenced spec in its status only with the parameters substituted).
//
// The pipeline is defaulted as Tekton's admission webhook defaults it (for embedded task specs
// that defaulting does not depend on the cluster's config-defaults), so the digest of a
// rendered run equals the digest of the same run as the API server stores it. The service
// account, pod template and timeouts are left out: the webhook fills them in from the cluster's
// config-defaults, and they do not change what the steps execute. spec.status (cancellation)
// is left out too.
func SpecDigest(spec *tektonv1.PipelineRunSpec) string {
	s := struct {
		PipelineRef  *tektonv1.PipelineRef          `json:"pipelineRef,omitempty"`
		PipelineSpec *tektonv1.PipelineSpec         `json:"pipelineSpec,omitempty"`
		Params       tektonv1.Params                `json:"params,omitempty"`
		Workspaces   []tektonv1.WorkspaceBinding    `json:"workspaces,omitempty"`
		TaskRunSpecs []tektonv1.PipelineTaskRunSpec `json:"taskRunSpecs,omitempty"`
	}{PipelineRef: spec.PipelineRef, Params: append(tektonv1.Params(nil), spec.Params...),
		Workspaces: spec.Workspaces, TaskRunSpecs: spec.TaskRunSpecs}
	if spec.PipelineSpec != nil {
		s.PipelineSpec = defaulted(spec.PipelineSpec)
	}
	sort.SliceStable(s.Params, func(i, j int) bool { return s.Params[i].Name < s.Params[j].Name })
	return digestJSON(s)
}

// PipelineDigest returns the sha256 (hex) of a Pipeline's spec, defaulted as Tekton's admission
// webhook defaults it, so a spec digests the same before it is created and as the API server
// stores it. PipelineNameFor carries its first characters.
func PipelineDigest(spec *tektonv1.PipelineSpec) string {
	return digestJSON(defaulted(spec))
}

func defaulted(spec *tektonv1.PipelineSpec) *tektonv1.PipelineSpec {
	out := spec.DeepCopy()
	out.SetDefaults(context.Background())
	return out
}

func digestJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // Tekton's API types always marshal
		panic(fmt.Sprintf("generator: marshal for a digest: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
