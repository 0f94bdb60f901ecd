package poolimage

import (
	"context"
	"fmt"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/upgrade"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// TriggerPrebuild is the trigger of a build for a release the cluster is about to upgrade to.
const TriggerPrebuild = "prebuild"

// UpgradeCandidates says which release the cluster is about to upgrade to; *upgrade.Candidates
// is the controller's.
type UpgradeCandidates interface {
	// Next returns the candidate release, nil when there is none.
	Next(ctx context.Context) (*upgrade.Candidate, error)
}

// candidateInputs returns the pool's inputs as they will be once the cluster runs the candidate
// release: the release's OS and extensions images in place of the ControllerConfig's. nil when
// no prebuild applies: no candidate, a base image pinned in the spec, or a candidate whose OS
// image is already the cluster's.
func (r *Reconciler) candidateInputs(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved) (*resolved, *upgrade.Candidate, error) {
	if r.Releases == nil || pi.Spec.BaseImage != "" {
		return nil, nil, nil
	}
	cand, err := r.Releases.Next(ctx)
	if err != nil || cand == nil || cand.OS.BaseOS == res.inputs.BaseImage {
		return nil, cand, err
	}
	in := res.inputs
	in.BaseImage = cand.OS.BaseOS
	if pi.Spec.ExtensionsImage == "" {
		in.ExtensionsImage = cand.OS.Extensions
	}
	hash, err := generator.InputsHash(pi, in)
	if err != nil {
		return nil, cand, fmt.Errorf("inputs for release %s: %w", cand.Version, err)
	}
	sum, err := generator.Summary(pi, in)
	if err != nil {
		return nil, cand, fmt.Errorf("inputs for release %s: %w", cand.Version, err)
	}
	sum.Changed = generator.ChangedInputs(pi.Status.CurrentInputs, sum)
	return &resolved{pool: res.pool, inputs: in, hash: hash, sum: sum,
		annotations: map[string]string{layering.ReleaseAnnotation: cand.Version}}, cand, nil
}

// prebuild builds the pool's image for the candidate release (once: the run is found again by
// its inputs hash) and reports it in status.upgrade and UpgradeReady. When the upgrade comes,
// the ControllerConfig carries the candidate's images, the pool's inputs hash equals this one,
// and the finished run is promoted without building again.
func (r *Reconciler) prebuild(ctx context.Context, pi *v1alpha1.PoolImage, next *resolved, cand *upgrade.Candidate, candErr error, runs []*tektonv1.PipelineRun) error {
	st := &pi.Status
	switch {
	case candErr != nil:
		st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonReleaseUnknown,
			"cannot tell whether the image builds on the next release: %s", flatten(candErr.Error()))
		return nil
	case next == nil:
		st.ClearUpgradeReady()
		return nil
	}
	var run *tektonv1.PipelineRun
	for _, pr := range runs {
		if runHash(pr) == next.hash {
			run = pr
			break
		}
	}
	if run == nil {
		created, err := r.createRun(ctx, pi, next, TriggerPrebuild, "")
		if err != nil {
			return err
		}
		run = created
	}
	u := &v1alpha1.UpgradeBuild{Release: cand.Version, ReleaseImage: cand.Image, BaseImage: cand.OS.BaseOS,
		InputsHash: next.hash, PipelineRun: run.Name}
	st.Upgrade = u
	pool := pi.Spec.MachineConfigPool.Name
	switch {
	case !run.IsDone():
		st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding,
			"PipelineRun %s builds the image of MachineConfigPool %s for release %s (base image %s)", run.Name, pool, cand.Version, cand.OS.BaseOS)
	case !succeeded(run):
		u.Failure = r.failureOf(run, pi, config.FromContextOrDefaults(ctx).DashboardURL)
		st.MarkUpgradeReady(corev1.ConditionFalse, v1alpha1.ReasonPrebuildFailed,
			"the image of MachineConfigPool %s does not build on release %s: %s; fix the Containerfile before upgrading, or the pool keeps its current image after the upgrade",
			pool, cand.Version, flatten(u.Failure.Summary(" (logs: ", ")")))
	default:
		image, err := runImage(run)
		if err != nil {
			u.Failure = &v1alpha1.BuildFailure{Reason: "MissingResults", Message: err.Error()}
			st.MarkUpgradeReady(corev1.ConditionFalse, v1alpha1.ReasonPrebuildFailed, "PipelineRun %s: %v", run.Name, err)
			return nil
		}
		u.Image = image
		st.MarkUpgradeReady(corev1.ConditionTrue, v1alpha1.ReasonPrebuildSucceeded,
			"the image of MachineConfigPool %s for release %s is built and verified (%s): the upgrade promotes it at once", pool, cand.Version, image)
	}
	return nil
}
