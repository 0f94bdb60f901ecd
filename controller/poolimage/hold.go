package poolimage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// reconcileHold holds the pool paused while its promoted image is built on an older base image
// than the release's (upgradeStrategy HoldPool), and releases it once the rebuilt image is
// promoted and the MCO has rendered it, so each node takes the release's new templates and the
// new image in one drain and one reboot. A pool paused by someone else is left alone. With
// Follow, paused promotion or a revert, a pool the controller holds is released at once.
func (r *Reconciler) reconcileHold(ctx context.Context, pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, base string) error {
	st := &pi.Status
	ours := pool.Annotations[layering.PausedByAnnotation] == holder(pi)
	stale := st.CurrentImage != "" && st.CurrentInputs != nil && st.CurrentInputs.BaseImage != base
	if !stale || pi.Spec.Strategy() != v1alpha1.UpgradeHoldPool || pi.Spec.PromotionPaused() {
		return r.release(ctx, pi, pool, ours, stale)
	}

	now := r.Clock.Now()
	switch {
	case !pool.Spec.Paused && ours && pool.Annotations[layering.PausedForAnnotation] == base:
		// Someone unpaused the pool the controller held for this base: they chose to roll out
		// the release's configuration now; the rebuilt image follows when it is ready.
		st.Hold = nil
		st.MarkPoolReleasedByAdmin(pool.Name)
		return nil
	case !pool.Spec.Paused:
		if err := r.pausePool(ctx, pi, pool, base); err != nil {
			return err
		}
		st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(now), BaseImage: base}
		r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonPoolHeld,
			"paused MachineConfigPool %s while its image is rebuilt on the new base image %s: its nodes will take the release's new configuration and the new image in one reboot",
			pool.Name, base)
	case !ours:
		st.MarkPausedByAdmin(pool.Name)
		return nil
	case st.Hold == nil:
		// Held before a restart that lost the status: the hold started at the latest when the
		// base changed, which UpToDate recorded.
		since := st.OutOfDateSince()
		if since.IsZero() {
			since = now
		}
		st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: base}
	default:
		st.Hold.BaseImage = base
	}

	limit := holdTimeout(ctx, pi)
	held := now.Sub(st.Hold.Since.Time)
	build := "the image is being rebuilt"
	if b := st.LatestBuild; b != nil && b.Failure != nil {
		build = "the rebuild failed (see BuildSucceeded): fix it and retry"
	}
	if held < limit {
		st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild,
			"MachineConfigPool %s is paused since %s while %s on the new base image %s; it is unpaused once the new image is promoted. To roll out the new configuration on the current image now, set spec.promotion.upgradeStrategy to Follow",
			pool.Name, st.Hold.Since.UTC().Format(time.RFC3339), build, base)
		r.EnqueueAfter(pi, limit-held)
		return nil
	}
	if c := st.GetCondition(v1alpha1.ConditionPoolHeld); c == nil || c.Reason != v1alpha1.ReasonHoldTimeout {
		r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonHoldTimeout,
			"MachineConfigPool %s has been paused for %s, longer than the hold timeout %s, waiting for its image on the new base image %s",
			pool.Name, held.Round(time.Second), limit, base)
	}
	st.MarkPoolHeld(v1alpha1.ReasonHoldTimeout,
		"MachineConfigPool %s has been paused since %s (longer than the hold timeout %s) and %s on the new base image %s. Either get the image built (fix the Containerfile, or set the annotation %s to retry), or set spec.promotion.upgradeStrategy to Follow to unpause the pool onto its current image now",
		pool.Name, st.Hold.Since.UTC().Format(time.RFC3339), limit, build, base, layering.RetryAnnotation)
	return nil
}

// release unpauses a pool the controller holds: at once when the strategy no longer holds it
// (Follow, paused promotion) or the image is current and the pool's rendered configuration
// carries it; meanwhile the hold stays (AwaitingRender).
func (r *Reconciler) release(ctx context.Context, pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, ours, stale bool) error {
	st := &pi.Status
	if !ours {
		st.ClearPoolHeld()
		return nil
	}
	if !stale && !pi.Spec.PromotionPaused() && pi.Spec.Strategy() == v1alpha1.UpgradeHoldPool {
		rendered, ok := r.renderedImage(pool)
		if ok && rendered != st.CurrentImage {
			st.MarkPoolHeld(v1alpha1.ReasonAwaitingRender,
				"%s is promoted; MachineConfigPool %s stays paused until the MCO renders a configuration with it (its configuration %s still has %s)",
				st.CurrentImage, pool.Name, pool.Spec.Configuration.Name, rendered)
			return nil
		}
	}
	if err := r.unpausePool(ctx, pool); err != nil {
		return err
	}
	why := "its new image is promoted and rendered"
	switch {
	case pi.Spec.Strategy() == v1alpha1.UpgradeFollow:
		why = "spec.promotion.upgradeStrategy is Follow: it takes the release's configuration on its current image"
	case pi.Spec.PromotionPaused():
		why = "spec.promotion.paused is set: the controller does not roll out images"
	}
	r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonPoolReleased, "unpaused MachineConfigPool %s: %s", pool.Name, why)
	st.ClearPoolHeld()
	return nil
}

// releaseOnRevert unpauses the pool of a PoolImage that is reverted or deleted, if the
// controller holds it.
func (r *Reconciler) releaseOnRevert(ctx context.Context, pi *v1alpha1.PoolImage) error {
	pool, err := r.PoolLister.Get(pi.Spec.MachineConfigPool.Name)
	if apierrors.IsNotFound(err) {
		pi.Status.ClearPoolHeld()
		return nil
	} else if err != nil {
		return fmt.Errorf("get MachineConfigPool %s: %w", pi.Spec.MachineConfigPool.Name, err)
	}
	if pool.Annotations[layering.PausedByAnnotation] != holder(pi) {
		pi.Status.ClearPoolHeld()
		return nil
	}
	if err := r.unpausePool(ctx, pool); err != nil {
		return err
	}
	r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonPoolReleased, "unpaused MachineConfigPool %s: its PoolImage is reverted or deleted", pool.Name)
	pi.Status.ClearPoolHeld()
	return nil
}

// renderedImage returns the osImageURL of the pool's current rendered configuration; ok is false
// when the pool has none the lister knows (no MCO rendering: nothing to wait for).
func (r *Reconciler) renderedImage(pool *mcfgv1.MachineConfigPool) (string, bool) {
	name := pool.Spec.Configuration.Name
	if name == "" {
		return "", false
	}
	mc, err := r.MachineConfigLister.Get(name)
	if err != nil {
		return "", false
	}
	return mc.Spec.OSImageURL, true
}

// pausePool pauses the pool and records the controller as the one that paused it. The patch
// carries the pool's resourceVersion: if anyone changed the pool meanwhile (an admin pausing it),
// it fails with a conflict and the next reconcile sees the change.
func (r *Reconciler) pausePool(ctx context.Context, pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, base string) error {
	meta := map[string]any{"annotations": map[string]any{layering.PausedByAnnotation: holder(pi), layering.PausedForAnnotation: base}}
	return r.patchPool(ctx, pool, meta, true, "pause")
}

// unpausePool unpauses a pool the controller paused and removes its annotations.
func (r *Reconciler) unpausePool(ctx context.Context, pool *mcfgv1.MachineConfigPool) error {
	meta := map[string]any{"annotations": map[string]any{layering.PausedByAnnotation: nil, layering.PausedForAnnotation: nil}}
	return r.patchPool(ctx, pool, meta, false, "unpause")
}

// patchPool sets spec.paused and the metadata in meta with a merge patch, conditional on the
// pool's resourceVersion when it has one.
func (r *Reconciler) patchPool(ctx context.Context, pool *mcfgv1.MachineConfigPool, meta map[string]any, paused bool, what string) error {
	if pool.ResourceVersion != "" {
		meta["resourceVersion"] = pool.ResourceVersion
	}
	b, err := json.Marshal(map[string]any{"metadata": meta, "spec": map[string]any{"paused": paused}})
	if err != nil {
		return fmt.Errorf("%s MachineConfigPool %s: %w", what, pool.Name, err)
	}
	if _, err := r.MCOClient.MachineconfigurationV1().MachineConfigPools().Patch(ctx, pool.Name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("%s MachineConfigPool %s: %w", what, pool.Name, err)
	}
	return nil
}

// holder is the value of PausedByAnnotation for pi.
func holder(pi *v1alpha1.PoolImage) string { return pi.Namespace + "/" + pi.Name }

// holdTimeout is spec.promotion.holdTimeout, else the controller's hold-timeout.
func holdTimeout(ctx context.Context, pi *v1alpha1.PoolImage) time.Duration {
	if p := pi.Spec.Promotion; p != nil && p.HoldTimeout != nil {
		return p.HoldTimeout.Duration
	}
	if h := config.FromContextOrDefaults(ctx).HoldTimeout; h > 0 {
		return h
	}
	return config.DefaultHoldTimeout
}
