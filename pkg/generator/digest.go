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
// does not.
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
		s.PipelineSpec = spec.PipelineSpec.DeepCopy()
		s.PipelineSpec.SetDefaults(context.Background())
	}
	sort.SliceStable(s.Params, func(i, j int) bool { return s.Params[i].Name < s.Params[j].Name })
	b, err := json.Marshal(s)
	if err != nil { // Tekton's API types always marshal
		panic(fmt.Sprintf("generator: marshal PipelineRun spec: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
