package poolimage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	mcoclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	mcolisters "github.com/openshift/client-go/machineconfiguration/listers/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	tektonlisters "github.com/tektoncd/pipeline/pkg/client/listers/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/logging"
	pkgreconciler "knative.dev/pkg/reconciler"
	"knative.dev/pkg/tracker"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/metrics"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// Triggers recorded on the PipelineRuns the reconciler starts.
const (
	TriggerSpec    = "spec"
	TriggerUpgrade = "upgrade"
	TriggerRetry   = "retry"
)

// SecretReader gives the Secrets of one namespace; *secrets.Set is the controller's.
type SecretReader interface {
	// Lister returns the Secrets of namespace, or a *secrets.ForbiddenError.
	Lister(ctx context.Context, namespace string) (corelisters.SecretNamespaceLister, error)
}

// Reconciler reconciles PoolImages. It reads only from listers and writes only PoolImage status
// (through the generated reconciler), its PipelineRuns and its MachineConfigs.
type Reconciler struct {
	// PipelineClient creates, cancels and prunes the PipelineRuns.
	PipelineClient tektonclient.Interface
	// MCOClient writes the pools' promotion MachineConfigs.
	MCOClient mcoclient.Interface

	// TaskRunLister reads the TaskRuns of a failed run.
	TaskRunLister tektonlisters.TaskRunLister
	// PoolLister reads MachineConfigPools.
	PoolLister mcolisters.MachineConfigPoolLister
	// MachineConfigLister reads the promotion MachineConfigs.
	MachineConfigLister mcolisters.MachineConfigLister
	// ControllerConfigLister reads the MCO's ControllerConfig (base and extensions images, proxy).
	ControllerConfigLister mcolisters.ControllerConfigLister
	// Secrets reads the Secrets a PoolImage references, one namespace at a time (never their data).
	Secrets SecretReader
	// Releases says which release the cluster is about to upgrade to (prebuilds); nil builds
	// only for the cluster's current release.
	Releases UpgradeCandidates
	// PullSecret gives the registries of the cluster's global pull secret (FirstBootPullable);
	// nil skips that check.
	PullSecret PullSecretReader
	// ConfigMapLister reads the yum repos and trusted CA ConfigMaps.
	ConfigMapLister corelisters.ConfigMapLister
	// NodeLister reads the pools' nodes, for their architecture.
	NodeLister corelisters.NodeLister

	// PipelineRunIndexer is the PipelineRun informer's indexer, with ByPoolIndex.
	PipelineRunIndexer cache.Indexer
	// PoolImageIndexer is the PoolImage informer's indexer, with ByPoolIndex.
	PoolImageIndexer cache.Indexer

	// Tracker re-enqueues a PoolImage when an object it depends on changes.
	Tracker tracker.Interface
	// Clock is the reconciler's time source (the quiet period).
	Clock clock.PassiveClock
	// EnqueueAfter re-enqueues a PoolImage after a delay (the end of a quiet period).
	EnqueueAfter func(obj interface{}, after time.Duration)
	// Metrics records build transitions; nil records nothing.
	Metrics *metrics.Recorder
}

// ReconcileKind moves a PoolImage one step towards its declared image: validate, resolve the
// inputs, then follow or start the build of those inputs and promote its image.
func (r *Reconciler) ReconcileKind(ctx context.Context, pi *v1alpha1.PoolImage) pkgreconciler.Event {
	if err := pi.Validate(ctx); err != nil {
		msg := flatten(err.Error())
		pi.Status.MarkInvalid(v1alpha1.ReasonInvalidSpec, "%s", msg)
		return pkgreconciler.NewEvent(corev1.EventTypeWarning, v1alpha1.ReasonInvalidSpec, "%s", msg)
	}
	if pi.Spec.Revert {
		return r.revert(ctx, pi)
	}

	res, err := r.resolve(ctx, pi)
	if err != nil {
		return r.inputFailure(pi, err)
	}
	runs, err := r.poolRuns(pi)
	if err != nil {
		return err
	}
	// The build for the release the cluster is about to upgrade to is not a stale build of
	// this pool: the current inputs' reconcile does not see (nor cancel) it.
	next, cand, candErr := r.candidateInputs(ctx, pi, res)
	current := runs
	if next != nil {
		current = nil
		for _, pr := range runs {
			if runHash(pr) != next.hash {
				current = append(current, pr)
			}
		}
	}
	if err := r.reconcileBuild(ctx, pi, res, current); err != nil {
		return r.inputFailure(pi, err)
	}
	pi.Status.MarkUpToDate(res.sum.BaseImage)
	if err := r.reconcileHold(ctx, pi, res.pool, res.sum.BaseImage); err != nil {
		return err
	}
	if err := r.prebuild(ctx, pi, next, cand, candErr, runs); err != nil {
		return r.inputFailure(pi, err)
	}
	r.preflight(ctx, pi)
	if runs, err = r.poolRuns(pi); err != nil {
		return err
	}
	return r.prune(ctx, pi, runs, retentionKeep(ctx, pi))
}

// inputFailure turns an inputError into a False condition and a Warning event (no requeue: a
// change of the named object or of the spec re-enqueues); other errors are returned for a retry.
func (r *Reconciler) inputFailure(pi *v1alpha1.PoolImage, err error) pkgreconciler.Event {
	var ie *inputError
	if !errors.As(err, &ie) {
		return err
	}
	pi.Status.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "%s", ie.msg)
	return pkgreconciler.NewEvent(corev1.EventTypeWarning, v1alpha1.ReasonInputsUnresolved, "%s", ie.msg)
}

// reconcileBuild decides what the resolved inputs need: nothing (already promoted), following
// their run, or starting one after the quiet period.
func (r *Reconciler) reconcileBuild(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, runs []*tektonv1.PipelineRun) error {
	cfg := config.FromContextOrDefaults(ctx)
	st := &pi.Status
	token := pi.Annotations[layering.RetryAnnotation]
	retry := token != "" && (st.LatestBuild == nil || st.LatestBuild.Retry != token)

	var run *tektonv1.PipelineRun
	retryName := generator.RetryRunName(pi.Spec.MachineConfigPool.Name, res.hash, token)
	for _, pr := range runs {
		if runHash(pr) != res.hash {
			continue
		}
		if !retry || pr.Name == retryName {
			run = pr // the newest run of these inputs (or of this retry)
			break
		}
	}

	if run == nil && !retry && res.hash == st.CurrentInputsHash {
		// Built and promoted already: keep the MachineConfig as it should be, stop stale builds.
		st.Pending = nil
		if err := r.supersede(ctx, pi, runs, "", res.hash); err != nil {
			return err
		}
		return r.promote(ctx, pi, res, st.CurrentImage)
	}

	if run == nil && !retry && st.LatestBuild != nil && st.LatestBuild.InputsHash == res.hash && st.LatestBuild.PipelineRun != "" {
		// The run of these inputs is not in the informer's cache: either the cache has not seen
		// the run this controller just created (follow it), or it was deleted by hand (do not
		// rebuild on our own). Only the API server can tell.
		live, err := r.PipelineClient.TektonV1().PipelineRuns(pi.Namespace).Get(ctx, st.LatestBuild.PipelineRun, metav1.GetOptions{})
		switch {
		case err == nil && runHash(live) == res.hash:
			return r.follow(ctx, pi, res, live, runs)
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("get PipelineRun %s/%s: %w", pi.Namespace, st.LatestBuild.PipelineRun, err)
		}
		st.Pending = nil
		if b := st.LatestBuild; b.Image != "" && st.GetCondition(v1alpha1.ConditionBuildSucceeded).IsTrue() {
			// It had built and verified its image: that image can still be promoted.
			if pi.Spec.PromotionPaused() {
				st.MarkPromotionPaused(b.Image)
				return nil
			}
			return r.promote(ctx, pi, res, b.Image)
		}
		if st.LatestBuild.Failure == nil && st.GetCondition(v1alpha1.ConditionBuildSucceeded).IsUnknown() {
			f := &v1alpha1.BuildFailure{
				Reason:  "PipelineRunDeleted",
				Message: fmt.Sprintf("PipelineRun %s was deleted before it finished; set the annotation %s to a new value to build again", st.LatestBuild.PipelineRun, layering.RetryAnnotation),
			}
			st.MarkBuildFailed(f)
			r.Metrics.BuildFinished(ctx, pi, metrics.ResultFailed, f.Reason, f, time.Time{}, time.Time{})
			r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonBuildFailed, "PipelineRun %s was deleted before it finished", st.LatestBuild.PipelineRun)
		}
		return nil
	}

	if run == nil {
		trigger := TriggerSpec
		switch {
		case retry:
			trigger = TriggerRetry
		case st.CurrentInputs != nil && st.CurrentInputs.BaseImage != res.sum.BaseImage:
			trigger = TriggerUpgrade
		}
		if !retry && !r.quiet(ctx, pi, res.hash, cfg.QuietPeriod) {
			return nil
		}
		created, err := r.createRun(ctx, pi, res, trigger, token)
		if err != nil {
			return err
		}
		run = created
		st.Pending = nil
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: run.Name, InputsHash: res.hash, Inputs: res.sum}
		if retry {
			st.LatestBuild.Retry = token
		}
	}
	return r.follow(ctx, pi, res, run, runs)
}

// quiet reports whether the inputs hash has stayed unchanged for the quiet period; if not, it
// records when they were first seen and re-enqueues the PoolImage for the end of the period.
func (r *Reconciler) quiet(ctx context.Context, pi *v1alpha1.PoolImage, hash string, period time.Duration) bool {
	st := &pi.Status
	now := r.Clock.Now()
	if st.Pending == nil || st.Pending.InputsHash != hash {
		st.Pending = &v1alpha1.PendingBuild{InputsHash: hash, Since: metav1.NewTime(now)}
	}
	wait := st.Pending.Since.Add(period).Sub(now)
	if wait <= 0 {
		return true
	}
	st.MarkAwaitingBuild()
	st.MarkQuietPeriod(st.Pending.Since.Add(period))
	r.EnqueueAfter(pi, wait)
	logging.FromContext(ctx).Infof("inputs %s of pool %s change; building once they stay unchanged for %s", hash, pi.Spec.MachineConfigPool.Name, period)
	return false
}

// follow reflects the state of the run of the current inputs in the status and, once it has
// succeeded, promotes its image.
func (r *Reconciler) follow(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, run *tektonv1.PipelineRun, runs []*tektonv1.PipelineRun) error {
	st := &pi.Status
	if st.LatestBuild == nil || st.LatestBuild.PipelineRun != run.Name {
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: run.Name, InputsHash: res.hash, Inputs: res.sum,
			Retry: run.Annotations[layering.RetryAnnotation]}
	}
	// The inputs (and what changed in them) are recorded when the build starts and kept: they
	// say why this build happened, also after it is promoted.
	b := st.LatestBuild
	b.StartTime = run.Status.StartTime
	b.CompletionTime = run.Status.CompletionTime
	st.Pending = nil
	// Whatever state it is in, this run is the one of the current inputs: any other active run
	// of the pool builds stale inputs.
	if err := r.supersede(ctx, pi, runs, run.Name, res.hash); err != nil {
		return err
	}

	if !run.IsDone() {
		// Promoted first, so that Ready reports the more telling condition: Building.
		st.MarkAwaitingBuild()
		st.MarkBuilding(run.Name)
		return nil
	}
	if !succeeded(run) {
		wasFailed := b.Failure != nil
		f := r.failureOf(run, pi, config.FromContextOrDefaults(ctx).DashboardURL)
		st.MarkBuildFailed(f)
		if !wasFailed {
			r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonBuildFailed, "%s; the pool keeps its current image",
				flatten(st.GetCondition(v1alpha1.ConditionBuildSucceeded).Message))
			r.Metrics.BuildFinished(ctx, pi, metrics.ResultFailed, runReason(run), f, timeOf(run.Status.StartTime), timeOf(run.Status.CompletionTime))
		}
		if st.CurrentImage != "" {
			st.MarkAwaitingBuild()
		}
		return nil
	}

	image, err := runImage(run)
	if err != nil {
		f := &v1alpha1.BuildFailure{Reason: "MissingResults", Message: err.Error(),
			LogsCommand: fmt.Sprintf("tkn pipelinerun logs %s -n %s", run.Name, run.Namespace)}
		if b.Failure == nil {
			r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonBuildFailed, "%s; the pool keeps its current image", err)
			r.Metrics.BuildFinished(ctx, pi, metrics.ResultFailed, f.Reason, f, timeOf(run.Status.StartTime), timeOf(run.Status.CompletionTime))
		}
		st.MarkBuildFailed(f)
		return nil
	}
	if b.Image != image || !st.GetCondition(v1alpha1.ConditionBuildSucceeded).IsTrue() {
		r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonBuildSucceeded, "PipelineRun %s built and verified %s", run.Name, image)
		r.Metrics.BuildFinished(ctx, pi, metrics.ResultSucceeded, runReason(run), nil, timeOf(run.Status.StartTime), timeOf(run.Status.CompletionTime))
	}
	st.MarkBuildSucceeded(image)
	if pi.Spec.PromotionPaused() {
		st.MarkPromotionPaused(image)
		return nil
	}
	return r.promote(ctx, pi, res, image)
}

// promote makes the pool's MachineConfig carry image and records it as the current image.
func (r *Reconciler) promote(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, image string) error {
	st := &pi.Status
	if image == "" {
		return nil
	}
	ext := res.inputs.ExtensionsImage
	if st.CurrentInputs != nil && res.hash == st.CurrentInputsHash {
		ext = st.CurrentInputs.ExtensionsImage
	}
	wrote, err := r.ensureMachineConfig(ctx, pi, res.pool, image, ext, res.hash)
	var ie *inputError
	if errors.As(err, &ie) {
		st.MarkPromotionFailed(ie.msg)
		r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonPromotionFailed, "%s", ie.msg)
		return nil
	} else if err != nil {
		return err
	}
	changed := st.CurrentImage != image
	if st.LatestBuild == nil || st.LatestBuild.InputsHash != res.hash {
		st.LatestBuild = &v1alpha1.BuildStatus{InputsHash: res.hash, Inputs: res.sum, Image: image}
	}
	if !st.GetCondition(v1alpha1.ConditionBuildSucceeded).IsTrue() {
		st.MarkBuildSucceeded(image)
	}
	st.MarkPromoted(image)
	if changed || wrote {
		r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonPromoted, "MachineConfig %s sets osImageURL of MachineConfigPool %s to %s",
			MachineConfigName(res.pool.Name), res.pool.Name, image)
	}
	return nil
}

// revert hands the pool back to the release's image by removing the promotion MachineConfig.
func (r *Reconciler) revert(ctx context.Context, pi *v1alpha1.PoolImage) pkgreconciler.Event {
	deleted, err := r.deleteMachineConfig(ctx, pi)
	if err != nil {
		return err
	}
	if err := r.releaseOnRevert(ctx, pi); err != nil {
		return err
	}
	pi.Status.MarkReverted()
	if deleted {
		return pkgreconciler.NewEvent(corev1.EventTypeNormal, v1alpha1.ReasonReverted,
			"removed MachineConfig %s: MachineConfigPool %s returns to the release's image", MachineConfigName(pi.Spec.MachineConfigPool.Name), pi.Spec.MachineConfigPool.Name)
	}
	return nil
}

// FinalizeKind reverts the pool when its PoolImage is deleted (unless another PoolImage's image
// is the one promoted) and prunes its runs to retention; the runs and images themselves are kept
// per retention.
func (r *Reconciler) FinalizeKind(ctx context.Context, pi *v1alpha1.PoolImage) pkgreconciler.Event {
	ev := r.revert(ctx, pi)
	var rerr *pkgreconciler.ReconcilerEvent
	if ev != nil && !pkgreconciler.EventAs(ev, &rerr) {
		return ev
	}
	runs, err := r.poolRuns(pi)
	if err != nil {
		return err
	}
	if err := r.prune(ctx, pi, runs, retentionKeep(ctx, pi)); err != nil {
		return err
	}
	return ev
}

// retentionKeep is how many finished runs of pi's pool to keep: spec.retention.keep, else the
// controller's retention-keep.
func retentionKeep(ctx context.Context, pi *v1alpha1.PoolImage) int {
	if r := pi.Spec.Retention; r != nil && r.Keep != nil {
		return int(*r.Keep)
	}
	if n := config.FromContextOrDefaults(ctx).RetentionKeep; n > 0 {
		return int(n)
	}
	return int(v1alpha1.DefaultRetentionKeep)
}

// event records an event on the PoolImage.
func (r *Reconciler) event(ctx context.Context, pi *v1alpha1.PoolImage, typ, reason, format string, args ...any) {
	controller.GetEventRecorder(ctx).Eventf(pi, typ, reason, format, args...)
}

// flatten joins a multi-line error into one line for a condition message.
func flatten(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
