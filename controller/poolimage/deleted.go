package poolimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcoclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/logging"
	pkgreconciler "knative.dev/pkg/reconciler"

	"github.com/ocl-pipelines/ocl-pipelines/controller/uninstall"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// A PoolImage has no finalizer. A finalizer only the controller removes would wedge the deletion
// of the PoolImage, of its namespace and of the CRD once the controller is gone (an uninstall
// deletes its rights first). What its deletion undoes is done from what stays behind instead:
// the MachineConfig and the pools name the PoolImage in their annotations and the runs name it
// in theirs, so a deletion is found again from them after a restart.
//
// Holds and runs are released level-based. The MachineConfig is removed only for a deletion a
// running controller saw (its informer delivered it, outside an uninstall): one whose PoolImage
// vanished while no controller ran (an uninstall, then a reinstall; an outage) keeps its image,
// because removing it reboots the pool, and the PoolImage may come back from Git a moment later.

var _ pkgreconciler.OnDeletionInterface = (*Reconciler)(nil)

// LegacyFinalizer is the finalizer versions before the uninstall guard put on every PoolImage.
// The controller removes it (dropLegacyFinalizer): left there, it would wedge the PoolImage's
// deletion for good.
const LegacyFinalizer = "poolimages." + layering.GroupName

// dropLegacyFinalizer removes LegacyFinalizer from pi, conditional on its resourceVersion.
func (r *Reconciler) dropLegacyFinalizer(ctx context.Context, pi *v1alpha1.PoolImage) error {
	i := slices.Index(pi.Finalizers, LegacyFinalizer)
	if i < 0 || r.PoolImageClient == nil {
		return nil
	}
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": slices.Delete(slices.Clone(pi.Finalizers), i, i+1), "resourceVersion": pi.ResourceVersion}})
	if err != nil {
		return err
	}
	if _, err := r.PoolImageClient.LayeringV1alpha1().PoolImages(pi.Namespace).Patch(ctx, pi.Name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("remove the finalizer %s of an earlier version from PoolImage %s/%s: %w", LegacyFinalizer, pi.Namespace, pi.Name, err)
	}
	return nil
}

// ObserveDeletion undoes what a deleted PoolImage leaves: its active runs are cancelled and its
// finished ones pruned to the controller's retention, every pool it holds is released, and its
// MachineConfig is removed (the pool goes back to the release's image, as a revert), except
// while the controller is being uninstalled: deleting the release (or the CRD) leaves every
// pool on the image it runs, so an uninstall reboots nothing.
func (r *Reconciler) ObserveDeletion(ctx context.Context, key types.NamespacedName) error {
	ctx = withScratch(ctx)
	rightsGone := false
	if r.PoolImageClient != nil {
		// The cache may be behind a re-creation: only the API server's NotFound is a deletion.
		_, err := r.PoolImageClient.LayeringV1alpha1().PoolImages(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			r.forgetDeletion(key)
			return nil // re-created: its own reconcile takes over
		case apierrors.IsForbidden(err):
			// The release's RBAC is deleted: an uninstall, with only the guard's rights left
			// (which can tell one); any other refusal is an error, retried.
			if r.Uninstalling == nil {
				return fmt.Errorf("get PoolImage %s: %w", key, err)
			}
			if u, _, uerr := r.Uninstalling(ctx); uerr != nil || !u {
				return fmt.Errorf("get PoolImage %s: %w", key, err)
			}
			rightsGone = true
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("get PoolImage %s: %w", key, err)
		}
	}
	pi := &v1alpha1.PoolImage{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "PoolImage"},
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
	}
	// The holds first: nothing else would ever end them.
	if err := r.releaseOnRevert(ctx, pi); err != nil {
		return err
	}
	if rightsGone {
		// Runs and MachineConfigs are out of reach now, and an uninstall keeps them anyway.
		return r.releaseGuard(ctx)
	}
	if err := r.cancelDeleted(ctx, pi); err != nil {
		return err
	}
	uninstalling, why := false, ""
	if r.SawDeletion != nil && !r.SawDeletion(ctx, key) {
		uninstalling, why = true, "no running controller saw the PoolImage's deletion"
	} else if r.Uninstalling != nil {
		var err error
		// When in doubt, keep the image: removing it reboots the pool.
		if uninstalling, why, err = r.Uninstalling(ctx); err != nil {
			return fmt.Errorf("tell whether the controller is being uninstalled: %w", err)
		}
	}
	mcs, err := r.MachineConfigLister.List(labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": layering.ManagedByValue}))
	if err != nil {
		return fmt.Errorf("list MachineConfigs: %w", err)
	}
	for _, mc := range mcs {
		if mc.Annotations[layering.MachineConfigPoolImageNamespaceAnnotation] != key.Namespace || mc.Annotations[layering.MachineConfigPoolImageNameAnnotation] != key.Name {
			continue
		}
		if uninstalling {
			logging.FromContext(ctx).Infow("kept the MachineConfig of a deleted PoolImage: its pool keeps its image (delete the MachineConfig to return the pool to the release's image)",
				"machineConfig", mc.Name, "poolImage", key.String(), "why", why)
			continue
		}
		err := r.MCOClient.MachineconfigurationV1().MachineConfigs().Delete(ctx, mc.Name,
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &mc.UID, ResourceVersion: &mc.ResourceVersion}})
		switch {
		case apierrors.IsNotFound(err):
		case apierrors.IsConflict(err):
			return fmt.Errorf("delete MachineConfig %s of deleted PoolImage %s: changed meanwhile, retrying: %w", mc.Name, key, err)
		case err != nil:
			return fmt.Errorf("delete MachineConfig %s of deleted PoolImage %s: %w", mc.Name, key, err)
		default:
			r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonReverted,
				"removed MachineConfig %s: PoolImage %s is deleted, its pool goes back to the image of its other MachineConfigs", mc.Name, key)
		}
	}
	if err := r.releaseGuard(ctx); err != nil {
		return err
	}
	r.forgetDeletion(key)
	return nil
}

// Deletions records the PoolImage deletions the informer delivered, for SawDeletion.
type Deletions struct{ m sync.Map }

// Add records the deletion of the PoolImage obj (or its tombstone).
func (d *Deletions) Add(obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if pi, ok := obj.(*v1alpha1.PoolImage); ok {
		d.m.Store(types.NamespacedName{Namespace: pi.Namespace, Name: pi.Name}, struct{}{})
	}
}

// Saw reports whether the deletion of key was recorded.
func (d *Deletions) Saw(_ context.Context, key types.NamespacedName) bool {
	_, ok := d.m.Load(key)
	return ok
}

// Forget drops the record of key.
func (d *Deletions) Forget(key types.NamespacedName) { d.m.Delete(key) }

func (r *Reconciler) forgetDeletion(key types.NamespacedName) {
	if r.ForgetDeletion != nil {
		r.ForgetDeletion(key)
	}
}

// cancelDeleted cancels the unfinished runs of a deleted PoolImage (from the API server's list)
// and prunes its finished ones to the controller's retention.
func (r *Reconciler) cancelDeleted(ctx context.Context, pi *v1alpha1.PoolImage) error {
	sel := labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": layering.ManagedByValue}).String()
	l, err := r.PipelineClient.TektonV1().PipelineRuns(pi.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list PipelineRuns of deleted PoolImage %s/%s: %w", pi.Namespace, pi.Name, err)
	}
	var runs []*tektonv1.PipelineRun
	for i := range l.Items {
		if pr := &l.Items[i]; pr.Annotations[layering.PoolImageLabel] == pi.Name {
			runs = append(runs, pr)
		}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[j].CreationTimestamp.Before(&runs[i].CreationTimestamp) })
	for _, pr := range runs {
		if pr.IsDone() || pr.IsCancelled() {
			continue
		}
		patch := fmt.Appendf(nil, `{"metadata":{"resourceVersion":%q},"spec":{"status":%q}}`, pr.ResourceVersion, tektonv1.PipelineRunSpecStatusCancelled)
		_, err := r.PipelineClient.TektonV1().PipelineRuns(pr.Namespace).Patch(ctx, pr.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil: // a conflict too: the run changed, decide again on fresh state
			return fmt.Errorf("cancel PipelineRun %s/%s of deleted PoolImage %s: %w", pr.Namespace, pr.Name, pi.Name, err)
		default:
			r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonSuperseded, "cancelled PipelineRun %s: its PoolImage is deleted", pr.Name)
			r.Metrics.Superseded(ctx, pi)
		}
	}
	return r.prune(ctx, pi, runs, retentionKeep(ctx, pi))
}

// Identity is the controller's identity as the release installs it (config/): what the
// uninstall guard keeps while a pool is held, and what tells an uninstall.
func Identity(namespace string) uninstall.Identity {
	return uninstall.Identity{
		Namespace: namespace, ServiceAccount: ControllerName,
		CRD: "poolimages." + layering.GroupName, HoldRBAC: ControllerName + "-holds",
	}
}

// HeldPools lists, from the API server, the pools the controller holds: paused, annotated
// paused-by, and spec.paused last written by its field manager (or by no one the managedFields
// record).
func HeldPools(ctx context.Context, client mcoclient.Interface) ([]*mcfgv1.MachineConfigPool, error) {
	list, err := client.MachineconfigurationV1().MachineConfigPools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list MachineConfigPools: %w", err)
	}
	var held []*mcfgv1.MachineConfigPool
	for i := range list.Items {
		p := &list.Items[i]
		if !p.Spec.Paused || p.Annotations[layering.PausedByAnnotation] == "" {
			continue
		}
		if owner, known := pausedOwner(p); !known || owner == layering.HoldFieldManager {
			held = append(held, p)
		}
	}
	return held, nil
}

// NewGuard returns the uninstall guard of the controller in namespace.
func NewGuard(kube kubernetes.Interface, mco mcoclient.Interface, namespace string) *uninstall.Guard {
	return &uninstall.Guard{Kube: kube, ID: Identity(namespace), Held: func(ctx context.Context) (bool, error) {
		held, err := HeldPools(ctx, mco)
		return len(held) > 0, err
	}}
}

// ReleaseOnUninstall is the controller's last act when it stops: if it is being uninstalled, it
// unpauses every pool it holds (with a Warning event on the pool) and releases the guard. A
// stop that is not an uninstall (a rollout, a node drain) does nothing: the next leader keeps
// the holds. A conflict (the MCO wrote the pool meanwhile) is retried on a fresh list until ctx
// ends.
func ReleaseOnUninstall(ctx context.Context, meta metadata.Interface, mco mcoclient.Interface, kube kubernetes.Interface, namespace string, stop *uninstall.Stop) error {
	uninstalling, why, err := uninstall.Uninstalling(ctx, meta, Identity(namespace))
	if err != nil || !uninstalling {
		return err
	}
	if stop != nil {
		stop.Begin() // no hold starts from here on: the list below is the last word
	}
	r := &Reconciler{MCOClient: mco}
	var failed []error
	for attempt := 0; ; attempt++ {
		held, err := HeldPools(ctx, mco)
		if err != nil {
			return err
		}
		var conflict error
		failed = failed[:0]
		for _, p := range held {
			// One pool's failure does not keep the others paused.
			switch err := r.unpausePool(ctx, p); {
			case apierrors.IsConflict(err):
				conflict = err
			case apierrors.IsNotFound(err):
			case err != nil:
				failed = append(failed, err)
			default:
				uninstallEvent(ctx, kube, p, why)
			}
		}
		if conflict == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("unpause the held pools: %w (last: %w)", ctx.Err(), conflict)
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	if err := errors.Join(failed...); err != nil {
		return err // the guard stays: a pool is still held
	}
	return NewGuard(kube, mco, namespace).Release(ctx)
}

// uninstallEvent records, best effort (the namespace default may refuse it), that an uninstall
// ended the hold of pool p.
func uninstallEvent(ctx context.Context, kube kubernetes.Interface, p *mcfgv1.MachineConfigPool, why string) {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: p.Name + ".", Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfigPool", Name: p.Name, UID: p.UID},
		Reason:         v1alpha1.ReasonHoldReleased, Type: corev1.EventTypeWarning,
		Message: fmt.Sprintf("unpaused MachineConfigPool %s, held by %s for its rebuilt image: ocl-pipelines is being uninstalled (%s); the pool takes the release's configuration on its current image",
			p.Name, p.Annotations[layering.PausedByAnnotation], why),
		Source:         corev1.EventSource{Component: ControllerName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	_, _ = kube.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{})
}
