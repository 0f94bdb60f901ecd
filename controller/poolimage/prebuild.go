package poolimage

import (
	"context"
	"errors"
	"fmt"
	"time"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/metrics"
	"github.com/ocl-pipelines/ocl-pipelines/controller/upgrade"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// UpgradeCandidates says which release the cluster is about to upgrade to; *upgrade.Candidates
// is the controller's.
type UpgradeCandidates interface {
	// Next returns the candidate release, nil when there is none.
	Next(ctx context.Context) (*upgrade.Candidate, error)
}

// candidateInputs returns the pool's inputs as they will be once the cluster runs the candidate
// release: the release's OS and extensions images in place of the ControllerConfig's. nil when
// no prebuild applies: no candidate, a base image pinned in the spec, or a candidate whose OS
// image is already the cluster's. An error says the candidate is not known yet (its release
// image is being read, or could not be read).
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
	next, err := r.render(pi, &resolved{pool: res.pool, inputs: in,
		annotations: map[string]string{layering.ReleaseAnnotation: cand.Version}})
	if err != nil {
		return nil, cand, fmt.Errorf("inputs for release %s: %w", cand.Version, err)
	}
	return next, cand, nil
}

// prebuild builds the pool's image for the candidate release (once: the run is found again by
// its name and inputs hash) after the quiet period, and reports it in status.upgrade and
// UpgradeReady. When the upgrade comes, the ControllerConfig carries the candidate's images,
// the pool's inputs hash equals this one, and the finished run is promoted without building
// again. A prebuild is cancelled only for a known, different candidate (another release or
// other inputs): while the next release is unknown (ClusterVersion not synced, the release
// image being read or unreadable, the upgrade accepted but not yet in the ControllerConfig)
// prebuilds are left alone. A failed prebuild is retried with the retry annotation.
func (r *Reconciler) prebuild(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, runs []*tektonv1.PipelineRun) error {
	st := &pi.Status
	next, cand, err := r.candidateInputs(ctx, pi, res)
	switch {
	case err != nil:
		var ie *inputError
		if errors.As(err, &ie) {
			return err
		}
		st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonReleaseUnknown,
			"cannot tell whether the image builds on the next release: %s", flatten(err.Error()))
		return nil
	case next == nil:
		st.ClearUpgradeReady()
		return nil
	}
	pool := pi.Spec.MachineConfigPool.Name
	for _, pr := range runs {
		if isPrebuild(pr) && runHash(pr) != next.hash && runHash(pr) != res.hash {
			if err := r.cancel(ctx, pi, pr, fmt.Sprintf("it builds for an older candidate; release %s (inputs %s) replaces it", cand.Version, next.hash)); err != nil {
				return err
			}
		}
	}

	var run *tektonv1.PipelineRun
	token := newRetryToken(pi)
	if token != "" && retryForPrebuild(pi, res) {
		if ok, err := r.honourRetry(ctx, pi, token); err != nil {
			return err
		} else if !ok {
			return errStale
		}
		name := generator.RetryRunName(pool, next.hash, token)
		if run = findRun(runs, name); run == nil || !r.trusted(pi, run, next) {
			if run, err = r.createRun(ctx, pi, next, name, generator.TriggerPrebuild, token); err != nil {
				return err
			}
		}
		if err := r.recordRetry(ctx, pi, token); err != nil {
			return err
		}
		st.Retry = &v1alpha1.RetryStatus{Token: token, PipelineRun: run.Name}
	} else {
		run = r.choosePrebuild(pi, next, runs)
	}
	if run == nil {
		if u := st.Upgrade; u == nil || u.InputsHash != next.hash || u.PendingSince == nil {
			st.Upgrade = &v1alpha1.UpgradeBuild{Release: cand.Version, ReleaseImage: cand.Image, BaseImage: cand.OS.BaseOS,
				InputsHash: next.hash, PendingSince: &metav1.Time{Time: r.Clock.Now()}}
		}
		start := st.Upgrade.PendingSince.Add(config.FromContextOrDefaults(ctx).QuietPeriod)
		if wait := start.Sub(r.Clock.Now()); wait > 0 {
			st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding,
				"the build of MachineConfigPool %s's image for release %s (base image %s) starts at %s unless the inputs change again",
				pool, cand.Version, cand.OS.BaseOS, start.UTC().Format(time.RFC3339))
			r.EnqueueAfter(pi, wait)
			return nil
		}
		if run, err = r.createRun(ctx, pi, next, generator.PrebuildRunName(pool, next.hash), generator.TriggerPrebuild, ""); err != nil {
			return err
		}
	}
	digest := specDigest(run)
	if u := st.Upgrade; u != nil && u.PipelineRun == run.Name && u.SpecSHA256 != "" {
		digest = u.SpecSHA256
	}
	u := &v1alpha1.UpgradeBuild{Release: cand.Version, ReleaseImage: cand.Image, BaseImage: cand.OS.BaseOS,
		InputsHash: next.hash, PipelineRun: run.Name, SpecSHA256: digest}
	st.Upgrade = u
	switch {
	case !run.IsDone():
		st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding,
			"PipelineRun %s builds the image of MachineConfigPool %s for release %s (base image %s)", run.Name, pool, cand.Version, cand.OS.BaseOS)
	case !succeeded(run):
		u.Failure = r.failureOf(run, pi, config.FromContextOrDefaults(ctx).DashboardURL)
		st.MarkUpgradeReady(corev1.ConditionFalse, v1alpha1.ReasonPrebuildFailed,
			"the image of MachineConfigPool %s does not build on release %s: %s; fix the Containerfile before upgrading, or set the annotation %s to a new value to build it again",
			pool, cand.Version, flatten(u.Failure.Summary(" (logs: ", ")")), layering.RetryAnnotation)
		return r.report(ctx, run, outcomeFailed, func() {
			r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonPrebuildFailed, "%s", st.GetCondition(v1alpha1.ConditionUpgradeReady).Message)
			r.Metrics.BuildFinished(ctx, pi, metrics.ResultFailed, runReason(run), u.Failure, timeOf(run.Status.StartTime), timeOf(run.Status.CompletionTime))
		})
	default:
		image, err := runImage(pi, run)
		if err != nil {
			u.Failure = &v1alpha1.BuildFailure{Reason: "MissingResults", Message: err.Error()}
			st.MarkUpgradeReady(corev1.ConditionFalse, v1alpha1.ReasonPrebuildFailed, "PipelineRun %s: %v", run.Name, err)
			return nil
		}
		u.Image = image
		st.MarkUpgradeReady(corev1.ConditionTrue, v1alpha1.ReasonPrebuildSucceeded,
			"the image of MachineConfigPool %s for release %s is built and verified (%s): the upgrade promotes it at once", pool, cand.Version, image)
		return r.report(ctx, run, outcomeSucceeded, func() {
			r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonPrebuildSucceeded, "PipelineRun %s built and verified %s for release %s", run.Name, image, cand.Version)
			r.Metrics.BuildFinished(ctx, pi, metrics.ResultSucceeded, runReason(run), nil, timeOf(run.Status.StartTime), timeOf(run.Status.CompletionTime))
		})
	}
	return nil
}

// choosePrebuild returns pi's trusted prebuild of next's inputs: the one status.upgrade names,
// else the newest that succeeded, else the newest running, else the newest finished.
func (r *Reconciler) choosePrebuild(pi *v1alpha1.PoolImage, next *resolved, runs []*tektonv1.PipelineRun) *tektonv1.PipelineRun {
	var candidates []*tektonv1.PipelineRun
	for _, pr := range runs {
		if isPrebuild(pr) && r.trusted(pi, pr, next) {
			candidates = append(candidates, pr)
		}
	}
	followed := ""
	if u := pi.Status.Upgrade; u != nil {
		followed = u.PipelineRun
	}
	return preferRun(candidates, followed, true)
}
