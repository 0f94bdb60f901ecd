package poolimage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/logging"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/mco"
)

// The hold (upgradeStrategy HoldPool). While the promoted image is built on an older base image
// than the release's, the controller pauses the pools that run it (the PoolImage's pool and the
// custom pools that also select its MachineConfig), so each node takes the release's new
// templates and the rebuilt image in one drain and one reboot; it unpauses them once the
// rebuilt image is promoted and the MCO has rendered it.
//
// Every hold is bounded: it ends at the hold timeout, when the rebuild has failed for good (its
// automatic retry failed too, or it was cancelled or deleted), when the MCO cannot render the
// pool, with Follow, paused promotion, a revert or the PoolImage's deletion; each end that is
// not the happy one is a Warning event. The master pool is never paused: the MCO's operator
// refuses to finish syncing while a required pool is paused ("required MachineConfigPool master
// is paused and cannot sync until it is unpaused", pkg/operator/sync.go), so a hold would stop
// the cluster upgrade itself.
//
// The controller never undoes a pause it did not make: it writes spec.paused as the field
// manager layering.HoldFieldManager and owns a pause only while the pool's managedFields say
// so (and the annotation paused-by names the PoolImage). An admin who unpauses a held pool
// releases it for that base image (annotation released-for): the controller does not pause it
// again for that base.

// holdMode is what the pools of a PoolImage need.
type holdMode int

const (
	holdNone  holdMode = iota // release any pool we hold
	holdPause                 // pause (or keep paused) every pool that runs the image
	holdAwait                 // keep the pools we hold paused, pause no other
)

// reconcileHold applies the hold to the pools that run pi's image. failedFinal says the build of
// the current inputs failed and nothing will retry it on its own.
func (r *Reconciler) reconcileHold(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, failedFinal bool) error {
	st := &pi.Status
	base := res.sum.BaseImage
	targets, err := r.holdTargets(pi, res.pool)
	if err != nil {
		return err
	}
	if err := r.releaseStray(ctx, pi, targets, "it no longer runs this PoolImage's image"); err != nil {
		return err
	}
	stale := st.CurrentImage != "" && st.CurrentInputs != nil && st.CurrentInputs.BaseImage != base
	mode, why, warn := holdNone, "", ""
	switch {
	case !stale && st.Hold != nil && pi.Spec.Strategy() == v1alpha1.UpgradeHoldPool && !pi.Spec.PromotionPaused():
		mode, why = holdAwait, "its new image is promoted and rendered"
		for _, p := range targets {
			if msg, degraded := mco.RenderDegraded(p); degraded && r.pausedByUs(p, pi) {
				mode, why, warn = holdNone, fmt.Sprintf("the MCO cannot render MachineConfigPool %s (%s), so waiting for its rendering would never end", p.Name, msg), v1alpha1.ReasonRenderDegraded
			}
		}
		if mode == holdAwait && !r.awaitingRender(pi, targets) {
			mode = holdNone
		}
	case !stale:
		why = "its image is current"
	case notHolding(pi) != "":
		why = notHolding(pi)
	case failedFinal:
		why, warn = "the rebuild on the new base image failed (see BuildSucceeded): the pool takes the release's configuration on its current image now, and the rebuilt image once it is fixed and promoted", "RebuildFailed"
	default:
		mode = holdPause
	}
	if mode != holdNone {
		since := r.holdStart(targets) // the pause's own record, on the pool
		if st.Hold != nil && st.Hold.Since.Time.Before(since) {
			since = st.Hold.Since.Time
		}
		limit := holdTimeout(ctx, pi)
		if held := r.Clock.Now().Sub(since); held >= limit {
			mode, warn = holdNone, v1alpha1.ReasonHoldTimeout
			why = fmt.Sprintf("it was held for %s, the hold timeout (spec.promotion.holdTimeout or the controller's hold-timeout); it takes the release's configuration on its current image now, and the rebuilt image once promoted", limit)
		} else {
			r.EnqueueAfter(pi, limit-held)
			if st.Hold == nil || st.Hold.BaseImage != base {
				st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: base}
			}
		}
	}
	return r.applyHold(ctx, pi, targets, mode, base, why, warn)
}

// applyHold pauses, keeps or releases each target pool for mode and records the PoolHeld
// condition. warn, when set, is why a hold ends before the rebuilt image is promoted and
// rendered (HoldTimeout, RebuildFailed, RenderDegraded): a Warning and a count.
func (r *Reconciler) applyHold(ctx context.Context, pi *v1alpha1.PoolImage, targets []*mcfgv1.MachineConfigPool, mode holdMode, base, why, warn string) error {
	st := &pi.Status
	var held, admin, released, master []string
	for _, p := range targets {
		ours := r.pausedByUs(p, pi)
		annotated := p.Annotations[layering.PausedByAnnotation] == holder(pi)
		switch {
		case annotated && !p.Spec.Paused:
			// Someone unpaused a pool the controller held: released for that base image.
			if err := r.releasedByAdmin(ctx, p, base); err != nil {
				return err
			}
			released = append(released, p.Name)
			continue
		case annotated && !ours:
			// Someone paused it again since (they own spec.paused now): their pause, not ours.
			if err := r.dropAnnotations(ctx, p); err != nil {
				return err
			}
			admin = append(admin, p.Name)
			continue
		}
		if mode == holdNone || (p.Name == mco.MasterPool && ours) {
			if ours {
				if err := r.unpausePool(ctx, p); err != nil {
					return err
				}
				typ, reason := corev1.EventTypeNormal, v1alpha1.ReasonPoolReleased
				if warn != "" {
					typ, reason = corev1.EventTypeWarning, v1alpha1.ReasonHoldReleased
					r.Metrics.HoldReleasedEarly(ctx, pi, p.Name, warn)
				}
				r.event(ctx, pi, typ, reason, "unpaused MachineConfigPool %s: %s", p.Name, why)
			}
			continue
		}
		switch {
		case p.Name == mco.MasterPool:
			master = append(master, p.Name)
		case ours:
			if p.Annotations[layering.PausedForAnnotation] != base && mode == holdPause {
				// The base moved again during the hold: the pool now waits for the newer one.
				if err := r.patchPoolMeta(ctx, p, map[string]any{layering.PausedForAnnotation: base}); err != nil {
					return err
				}
			}
			held = append(held, p.Name)
		case p.Spec.Paused:
			admin = append(admin, p.Name)
		case mode == holdAwait:
		case p.Annotations[layering.ReleasedForAnnotation] == base:
			released = append(released, p.Name)
		default:
			if err := r.pausePool(ctx, pi, p, base); err != nil {
				return err
			}
			r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonPoolHeld,
				"paused MachineConfigPool %s while its image is rebuilt on the new base image %s: its nodes will take the release's new configuration and the new image in one reboot",
				p.Name, base)
			held = append(held, p.Name)
		}
	}

	switch {
	case len(held) > 0:
		// A hold kept (made before this controller, or the guard lost since) is guarded too. The
		// pause exists already: a failure here (an uninstall under way) stops nothing else.
		if r.Guard != nil {
			if err := r.Guard.Hold(ctx, func() error { return nil }); err != nil {
				logging.FromContext(ctx).Warnw("guard a kept hold", "pools", held, "error", err)
			}
		}
		st.Hold.Pools = held
		limit := holdTimeout(ctx, pi)
		end := st.Hold.Since.Add(limit).UTC().Format(time.RFC3339)
		if mode == holdAwait {
			st.MarkPoolHeld(v1alpha1.ReasonAwaitingRender,
				"%s is promoted; %s paused until the MCO renders a configuration with it, at the latest until %s (the hold timeout)",
				st.CurrentImage, poolsVerb(held, "stays", "stay"), end)
			return nil
		}
		build := "the image is being rebuilt"
		if b := st.LatestBuild; b != nil && b.Failure != nil {
			build = "the rebuild failed and is retried once"
		}
		st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild,
			"%s paused since %s while %s on the new base image %s; unpaused once the new image is promoted, at the latest at %s (the hold timeout). To roll out the new configuration on the current image now, set spec.promotion.upgradeStrategy to Follow",
			poolsVerb(held, "is", "are"), st.Hold.Since.UTC().Format(time.RFC3339), build, base, end)
	case len(released) > 0:
		st.Hold = nil
		st.MarkPoolReleasedByAdmin(strings.Join(released, ", "))
	case len(admin) > 0:
		st.MarkPausedByAdmin(strings.Join(admin, ", "))
	case len(master) > 0:
		st.Hold = nil
		st.MarkMasterNotHeld()
	default:
		st.ClearPoolHeld()
	}
	return nil
}

// notHolding says why pi's spec wants no pool held (Follow, paused promotion), "" when it holds.
func notHolding(pi *v1alpha1.PoolImage) string {
	switch {
	case pi.Spec.Strategy() == v1alpha1.UpgradeFollow:
		return "spec.promotion.upgradeStrategy is Follow: it takes the release's configuration on its current image"
	case pi.Spec.PromotionPaused():
		return "spec.promotion.paused is set: the controller does not roll out images"
	}
	return ""
}

// holdStart is when the controller paused the first of pools (their paused-since annotation),
// else now: the bound of a hold survives a status write that lost status.hold.
func (r *Reconciler) holdStart(pools []*mcfgv1.MachineConfigPool) time.Time {
	start := r.Clock.Now()
	for _, p := range pools {
		if t, err := time.Parse(time.RFC3339, p.Annotations[layering.PausedSinceAnnotation]); err == nil && t.Before(start) {
			start = t
		}
	}
	return start
}

// boundHold keeps a hold within its bound on the paths that cannot evaluate the build (an
// invalid spec, unresolved inputs): the pools stay held, with why in the condition, until the
// hold timeout, when they are released with a Warning.
func (r *Reconciler) boundHold(ctx context.Context, pi *v1alpha1.PoolImage, why string) error {
	pools, err := r.poolsHeldBy(pi)
	if err != nil || len(pools) == 0 {
		if err == nil && pi.Status.Hold != nil {
			pi.Status.ClearPoolHeld()
		}
		return err
	}
	st := &pi.Status
	if reason := notHolding(pi); reason != "" {
		// Follow or paused promotion release the pool whatever else is wrong with the PoolImage.
		for _, p := range pools {
			if err := r.unpausePool(ctx, p); err != nil {
				return err
			}
			r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonPoolReleased, "unpaused MachineConfigPool %s: %s", p.Name, reason)
		}
		st.ClearPoolHeld()
		return nil
	}
	if start := r.holdStart(pools); st.Hold == nil {
		st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(start), BaseImage: pools[0].Annotations[layering.PausedForAnnotation]}
	} else if start.Before(st.Hold.Since.Time) {
		st.Hold.Since = metav1.NewTime(start) // the pool's own record: a lost status does not extend the hold
	}
	limit := holdTimeout(ctx, pi)
	if held := r.Clock.Now().Sub(st.Hold.Since.Time); held < limit {
		r.EnqueueAfter(pi, limit-held)
		names := make([]string, 0, len(pools))
		for _, p := range pools {
			names = append(names, p.Name)
		}
		st.Hold.Pools = names
		st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild,
			"%s paused since %s for a rebuild, but %s; unpaused at %s (the hold timeout) unless that is fixed first",
			poolsVerb(names, "is", "are"), st.Hold.Since.UTC().Format(time.RFC3339), why, st.Hold.Since.Add(limit).UTC().Format(time.RFC3339))
		return nil
	}
	for _, p := range pools {
		if err := r.unpausePool(ctx, p); err != nil {
			return err
		}
		r.Metrics.HoldReleasedEarly(ctx, pi, p.Name, v1alpha1.ReasonHoldTimeout)
		r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonHoldReleased,
			"unpaused MachineConfigPool %s after the hold timeout %s: %s", p.Name, limit, why)
	}
	st.ClearPoolHeld()
	return nil
}

// releaseOnRevert unpauses every pool the controller holds for a PoolImage that is reverted or
// deleted.
//
// The pools are read from the API server, not the cache: after a deletion nothing would
// reconcile this PoolImage again, so a pause the cache has not seen yet would outlive it.
func (r *Reconciler) releaseOnRevert(ctx context.Context, pi *v1alpha1.PoolImage) error {
	list, err := r.MCOClient.MachineconfigurationV1().MachineConfigPools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list MachineConfigPools: %w", err)
	}
	var pools []*mcfgv1.MachineConfigPool
	for i := range list.Items {
		if list.Items[i].Annotations[layering.PausedByAnnotation] == holder(pi) {
			pools = append(pools, &list.Items[i])
		}
	}
	if err := r.releasePools(ctx, pi, pools, nil, "its PoolImage is reverted or deleted"); err != nil {
		return err
	}
	pi.Status.ClearPoolHeld()
	return nil
}

// releaseStray unpauses the pools the controller holds for pi that are not among keep (the
// pools that run its image), and drops its annotations from pools it no longer holds.
func (r *Reconciler) releaseStray(ctx context.Context, pi *v1alpha1.PoolImage, keep []*mcfgv1.MachineConfigPool, why string) error {
	pools, err := r.annotatedBy(pi)
	if err != nil {
		return err
	}
	return r.releasePools(ctx, pi, pools, keep, why)
}

// releasePools is releaseStray for pools (those annotated as held for pi).
func (r *Reconciler) releasePools(ctx context.Context, pi *v1alpha1.PoolImage, pools, keep []*mcfgv1.MachineConfigPool, why string) error {
	for _, p := range pools {
		if slices.ContainsFunc(keep, func(k *mcfgv1.MachineConfigPool) bool { return k.Name == p.Name }) {
			continue
		}
		if !r.pausedByUs(p, pi) {
			if err := r.dropAnnotations(ctx, p); err != nil {
				return err
			}
			continue
		}
		if err := r.unpausePool(ctx, p); err != nil {
			return err
		}
		r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonPoolReleased, "unpaused MachineConfigPool %s: %s", p.Name, why)
	}
	return nil
}

// holdTargets returns the pools that run pi's image: its pool, and the custom pools in which
// pi's MachineConfig wins the MCO's merge (they select it and have no image of their own).
func (r *Reconciler) holdTargets(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool) ([]*mcfgv1.MachineConfigPool, error) {
	mc, err := r.MachineConfigLister.Get(facts.MachineConfigName(pool.Name))
	if apierrors.IsNotFound(err) {
		return []*mcfgv1.MachineConfigPool{pool}, nil
	} else if err != nil {
		return nil, fmt.Errorf("get MachineConfig %s: %w", facts.MachineConfigName(pool.Name), err)
	}
	pools, err := r.PoolLister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list MachineConfigPools: %w", err)
	}
	mcs, err := r.MachineConfigLister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list MachineConfigs: %w", err)
	}
	out := []*mcfgv1.MachineConfigPool{pool}
	for _, p := range mco.ReachedPools(&r.selectors, pool.Name, mc, pools, mcs) {
		if p.Name != pool.Name {
			// A pool that runs pi's image: its pause state, its renders and its nodes matter.
			if err := r.track(pi, mcfgv1.GroupVersion.WithKind("MachineConfigPool"), "", p.Name); err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// annotatedBy returns the pools whose paused-by annotation names pi.
func (r *Reconciler) annotatedBy(pi *v1alpha1.PoolImage) ([]*mcfgv1.MachineConfigPool, error) {
	all, err := r.PoolLister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list MachineConfigPools: %w", err)
	}
	var out []*mcfgv1.MachineConfigPool
	for _, p := range all {
		if p.Annotations[layering.PausedByAnnotation] == holder(pi) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *mcfgv1.MachineConfigPool) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// poolsHeldBy returns the pools the controller holds paused for pi.
func (r *Reconciler) poolsHeldBy(pi *v1alpha1.PoolImage) ([]*mcfgv1.MachineConfigPool, error) {
	pools, err := r.annotatedBy(pi)
	if err != nil {
		return nil, err
	}
	out := pools[:0]
	for _, p := range pools {
		if r.pausedByUs(p, pi) {
			out = append(out, p)
		}
	}
	return out, nil
}

// awaitingRender reports whether a pool the controller holds has not rendered the current image
// yet.
func (r *Reconciler) awaitingRender(pi *v1alpha1.PoolImage, pools []*mcfgv1.MachineConfigPool) bool {
	for _, p := range pools {
		if !r.pausedByUs(p, pi) {
			continue
		}
		if rendered, ok := r.renderedImage(p); ok && rendered != pi.Status.CurrentImage {
			return true
		}
	}
	return false
}

// pausedByUs reports whether pool is paused by the controller for pi: paused, annotated with pi,
// and its managedFields give spec.paused to the controller's field manager. A pool whose
// managedFields say nothing of spec.paused (an API server without them) is judged by the
// annotation alone.
func (r *Reconciler) pausedByUs(pool *mcfgv1.MachineConfigPool, pi *v1alpha1.PoolImage) bool {
	if !pool.Spec.Paused || pool.Annotations[layering.PausedByAnnotation] != holder(pi) {
		return false
	}
	owner, known := pausedOwner(pool)
	return !known || owner == layering.HoldFieldManager
}

// pausedOwner returns the field manager that last set the pool's spec.paused, from its
// managedFields; known is false when none records it.
func pausedOwner(pool *mcfgv1.MachineConfigPool) (owner string, known bool) {
	for _, mf := range pool.ManagedFields {
		if mf.FieldsV1 == nil {
			continue
		}
		var f map[string]map[string]json.RawMessage
		if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &f); err != nil {
			continue
		}
		if _, ok := f["f:spec"]["f:paused"]; ok {
			// Update operations transfer a changed field to their manager: one owner at a time.
			owner, known = mf.Manager, true
			if owner != layering.HoldFieldManager {
				return owner, true
			}
		}
	}
	return owner, known
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
	meta := map[string]any{"annotations": map[string]any{layering.PausedByAnnotation: holder(pi),
		layering.PausedForAnnotation: base, layering.PausedSinceAnnotation: r.Clock.Now().UTC().Format(time.RFC3339),
		layering.ReleasedForAnnotation: nil}}
	if r.Guard == nil {
		return r.patchPool(ctx, pool, meta, map[string]any{"paused": true}, "pause")
	}
	return r.Guard.Hold(ctx, func() error { return r.patchPool(ctx, pool, meta, map[string]any{"paused": true}, "pause") })
}

// unpausePool unpauses a pool the controller paused and removes its annotations.
func (r *Reconciler) unpausePool(ctx context.Context, pool *mcfgv1.MachineConfigPool) error {
	meta := map[string]any{"annotations": map[string]any{layering.PausedByAnnotation: nil, layering.PausedForAnnotation: nil,
		layering.PausedSinceAnnotation: nil}}
	return r.patchPool(ctx, pool, meta, map[string]any{"paused": false}, "unpause")
}

// releasedByAdmin records that an admin unpaused a pool the controller held: its annotations go,
// and released-for keeps the base image it was held for, so it is not paused again for it. That
// is base, the ControllerConfig's base image now, when it is newer than paused-for: the base
// moved while the admin released the pool, before the controller could follow it, and the
// admin released the hold of this upgrade.
func (r *Reconciler) releasedByAdmin(ctx context.Context, pool *mcfgv1.MachineConfigPool, base string) error {
	if base == "" {
		base = pool.Annotations[layering.PausedForAnnotation]
	}
	return r.patchPoolMeta(ctx, pool, map[string]any{layering.PausedByAnnotation: nil, layering.PausedForAnnotation: nil,
		layering.PausedSinceAnnotation: nil, layering.ReleasedForAnnotation: base})
}

// dropAnnotations removes the controller's hold annotations from a pool it does not hold.
func (r *Reconciler) dropAnnotations(ctx context.Context, pool *mcfgv1.MachineConfigPool) error {
	return r.patchPoolMeta(ctx, pool, map[string]any{layering.PausedByAnnotation: nil, layering.PausedForAnnotation: nil,
		layering.PausedSinceAnnotation: nil})
}

// patchPoolMeta sets (nil: removes) annotations of the pool, leaving spec.paused alone.
func (r *Reconciler) patchPoolMeta(ctx context.Context, pool *mcfgv1.MachineConfigPool, annotations map[string]any) error {
	return r.patchPool(ctx, pool, map[string]any{"annotations": annotations}, nil, "annotate")
}

// patchPool applies a merge patch of the metadata in meta and the spec fields in spec,
// conditional on the pool's resourceVersion when it has one, as the field manager
// layering.HoldFieldManager. A conflict is returned: the reconcile is retried on fresh state.
func (r *Reconciler) patchPool(ctx context.Context, pool *mcfgv1.MachineConfigPool, meta, spec map[string]any, what string) error {
	if pool.ResourceVersion != "" {
		meta["resourceVersion"] = pool.ResourceVersion
	}
	body := map[string]any{"metadata": meta}
	if spec != nil {
		body["spec"] = spec
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s MachineConfigPool %s: %w", what, pool.Name, err)
	}
	if _, err := r.MCOClient.MachineconfigurationV1().MachineConfigPools().Patch(ctx, pool.Name, types.MergePatchType, b,
		metav1.PatchOptions{FieldManager: layering.HoldFieldManager}); err != nil {
		return fmt.Errorf("%s MachineConfigPool %s: %w", what, pool.Name, err)
	}
	return nil
}

// poolsVerb names pools with the verb agreeing: "MachineConfigPool worker is",
// "MachineConfigPools worker, infra are".
func poolsVerb(pools []string, one, many string) string {
	if len(pools) == 1 {
		return "MachineConfigPool " + pools[0] + " " + one
	}
	return "MachineConfigPools " + strings.Join(pools, ", ") + " " + many
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
