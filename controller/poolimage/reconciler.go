package poolimage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	mcoclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	mcolisters "github.com/openshift/client-go/machineconfiguration/listers/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	tektonlisters "github.com/tektoncd/pipeline/pkg/client/listers/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/logging"
	pkgreconciler "knative.dev/pkg/reconciler"
	"knative.dev/pkg/tracker"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/metrics"
	"github.com/ocl-pipelines/ocl-pipelines/controller/uninstall"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	layeringclient "github.com/ocl-pipelines/ocl-pipelines/pkg/client/clientset/versioned"
	poolimagereconciler "github.com/ocl-pipelines/ocl-pipelines/pkg/client/injection/reconciler/layering/v1alpha1/poolimage"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/mco"
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
	// PoolImageClient reads a PoolImage from the API server before an act that cannot be taken
	// back (creating or cancelling a run), when the cache's copy may be outdated; nil trusts
	// the cache.
	PoolImageClient layeringclient.Interface
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
	// checkedPipelines holds when the controller last checked each Pipeline
	// ("<namespace>/<name>") its runs are labelled with (ensurePipeline).
	checkedPipelines sync.Map
	// EnqueueAfter re-enqueues a PoolImage after a delay (the end of a quiet period).
	EnqueueAfter func(obj interface{}, after time.Duration)
	// Metrics records build transitions; nil records nothing.
	Metrics *metrics.Recorder

	// Guard keeps the controller's rights while it holds a pool (uninstall.Guard): every pause
	// is written under it, and it is released once no pool is held. Nil pauses without one.
	Guard HoldGuard
	// Uninstalling reports whether the controller is being uninstalled (uninstall.Uninstalling);
	// nil: never. A PoolImage deleted by an uninstall keeps its pool's image.
	Uninstalling func(ctx context.Context) (bool, string, error)
	// SawDeletion reports whether a running controller saw the PoolImage's deletion (Deletions);
	// a deletion it did not see keeps the pool's image. Nil: every deletion was seen.
	SawDeletion func(ctx context.Context, key types.NamespacedName) bool
	// ForgetDeletion drops what SawDeletion knows of key once it is handled; nil does nothing.
	ForgetDeletion func(key types.NamespacedName)

	// reported remembers the outcomes of vanished runs this process reported (they cannot carry
	// layering.ReportedAnnotation).
	reportedMu sync.Mutex
	reported   map[string]bool

	// selectors memoizes the pools' parsed selectors (mco.go).
	selectors mco.Selectors
}

// HoldGuard is what the reconciler needs of uninstall.Guard.
type HoldGuard interface {
	// Hold makes the guard hold, then runs pause (the write that starts a hold).
	Hold(ctx context.Context, pause func() error) error
	// Release lets the guard go when no pool is held.
	Release(ctx context.Context) error
}

var _ HoldGuard = (*uninstall.Guard)(nil)

// The generated reconciler calls ReconcileKind; ObserveDeletion is in deleted.go.
var _ poolimagereconciler.Interface = (*Reconciler)(nil)

// ReconcileKind moves a PoolImage one step towards its declared image: validate, resolve the
// inputs, then follow or start the build of those inputs and promote its image. Whatever path
// it takes, a pool the controller holds is checked against the hold's bounds.
func (r *Reconciler) ReconcileKind(ctx context.Context, pi *v1alpha1.PoolImage) pkgreconciler.Event {
	if err := r.dropLegacyFinalizer(ctx, pi); err != nil {
		// Not a reason to skip the reconcile (and the hold's bounds): retried with the next one.
		logging.FromContext(ctx).Warnw("remove an earlier version's finalizer", "error", err)
	}
	ev := r.reconcile(withScratch(ctx), pi)
	var rerr *pkgreconciler.ReconcilerEvent
	if ev != nil && !pkgreconciler.EventAs(ev, &rerr) {
		return ev
	}
	if err := r.releaseGuard(ctx); err != nil {
		return err
	}
	return ev
}

// releaseGuard lets the uninstall guard go when no pool is held any more.
func (r *Reconciler) releaseGuard(ctx context.Context) error {
	if r.Guard == nil {
		return nil
	}
	return r.Guard.Release(ctx)
}

// reconcile is ReconcileKind, before the guard is released.
func (r *Reconciler) reconcile(ctx context.Context, pi *v1alpha1.PoolImage) pkgreconciler.Event {
	if err := pi.Validate(ctx); err != nil {
		msg := flatten(err.Error())
		pi.Status.MarkInvalid(v1alpha1.ReasonInvalidSpec, "%s", msg)
		if herr := r.boundHold(ctx, pi, "the spec is invalid (see BuildSucceeded)"); herr != nil {
			return herr
		}
		return pkgreconciler.NewEvent(corev1.EventTypeWarning, v1alpha1.ReasonInvalidSpec, "%s", msg)
	}
	if pi.Spec.Revert {
		return r.revert(ctx, pi)
	}

	res, err := r.resolve(ctx, pi)
	if err != nil {
		return r.inputFailure(ctx, pi, err)
	}
	all, err := r.poolRuns(pi)
	if err != nil {
		return err
	}
	runs := ownRuns(pi, all)
	if err := r.reconcileBuild(ctx, pi, res, runs); err != nil {
		return r.inputFailure(ctx, pi, err)
	}
	pi.Status.MarkUpToDate(res.sum.BaseImage)
	if err := r.reportReach(ctx, pi); err != nil {
		return err
	}
	if err := r.reconcileHold(ctx, pi, res, failedForGood(pi, res, runs)); err != nil {
		return err
	}
	if err := r.prebuild(ctx, pi, res, runs); err != nil {
		return r.inputFailure(ctx, pi, err)
	}
	r.preflight(ctx, pi)
	if all, err = r.poolRuns(pi); err != nil {
		return err
	}
	return r.prune(ctx, pi, ownRuns(pi, all), retentionKeep(ctx, pi))
}

// failedForGood reports whether the build of the current inputs failed and nothing retries it
// on its own: no automatic retry follows (only a failed rebuild on a new base image gets one,
// AutoRetryDelay after it failed), it was cancelled, or its run is gone.
func failedForGood(pi *v1alpha1.PoolImage, res *resolved, runs []*tektonv1.PipelineRun) bool {
	b := pi.Status.LatestBuild
	if b == nil || b.InputsHash != res.hash || b.Failure == nil {
		return false
	}
	pr := findRun(runs, b.PipelineRun)
	return pr == nil || trigger(pr) != generator.TriggerUpgrade || cancelled(pr)
}

// inputFailure turns an inputError into a False condition and a Warning event (no requeue: a
// change of the named object or of the spec re-enqueues); other errors are returned for a retry.
// A pool the controller holds stays within the hold's bounds meanwhile.
func (r *Reconciler) inputFailure(ctx context.Context, pi *v1alpha1.PoolImage, err error) pkgreconciler.Event {
	var ie *inputError
	if !errors.As(err, &ie) {
		return err
	}
	if ie.lostClaim {
		// Another PoolImage owns the pool: this one's builds are pointless.
		if err := r.cancelOwn(ctx, pi, "its PoolImage does not own MachineConfigPool "+pi.Spec.MachineConfigPool.Name); err != nil {
			return err
		}
	}
	if err := r.reportReach(ctx, pi); err != nil {
		return err
	}
	pi.Status.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "%s", ie.msg)
	if herr := r.boundHold(ctx, pi, "the inputs cannot be resolved (see BuildSucceeded)"); herr != nil {
		return herr
	}
	return pkgreconciler.NewEvent(corev1.EventTypeWarning, v1alpha1.ReasonInputsUnresolved, "%s", ie.msg)
}

// revert hands the pool back by removing the promotion MachineConfig: the pool then runs what
// the MCO's merge of its other MachineConfigs gives (the release's image, or the image of
// another pool whose MachineConfigs it also selects), and the event and condition say which.
func (r *Reconciler) revert(ctx context.Context, pi *v1alpha1.PoolImage) pkgreconciler.Event {
	name := facts.MachineConfigName(pi.Spec.MachineConfigPool.Name)
	after := "the release's image"
	pool, err := r.PoolLister.Get(pi.Spec.MachineConfigPool.Name)
	if err == nil {
		if mcs, lerr := r.MachineConfigLister.List(labels.Everything()); lerr == nil {
			after = mco.ImageAfterRemoval(pool, name, mcs)
		}
	}
	deleted, err := r.deleteMachineConfig(ctx, pi)
	if err != nil {
		return err
	}
	if err := r.releaseOnRevert(ctx, pi); err != nil {
		return err
	}
	pi.Status.MarkReverted(after)
	if deleted {
		return pkgreconciler.NewEvent(corev1.EventTypeNormal, v1alpha1.ReasonReverted,
			"removed MachineConfig %s: MachineConfigPool %s now runs %s", name, pi.Spec.MachineConfigPool.Name, after)
	}
	return nil
}

// cancelOwn cancels pi's active runs (builds and prebuilds), from the API server's list.
func (r *Reconciler) cancelOwn(ctx context.Context, pi *v1alpha1.PoolImage, why string) error {
	for _, prebuild := range []bool{false, true} {
		if err := r.cancelLiveWhy(ctx, pi, "", prebuild, "", why); err != nil {
			return err
		}
	}
	return nil
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
