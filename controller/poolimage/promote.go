package poolimage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/mco"
)

// promotionOf is the promotion of image, built from res's inputs.
func promotionOf(res *resolved, image, extensions string) facts.Promotion {
	arch := string(res.inputs.Arch)
	if arch == "" {
		arch = string(v1alpha1.ArchAMD64)
	}
	return facts.Promotion{Image: image, Extensions: extensions, Hash: res.hash, Base: res.inputs.BaseImage, Arch: arch}
}

// ourMachineConfig returns pi's MachineConfig of its pool, nil when there is none or another's.
func (r *Reconciler) ourMachineConfig(pi *v1alpha1.PoolImage) (*mcfgv1.MachineConfig, error) {
	mc, err := r.MachineConfigLister.Get(facts.MachineConfigName(pi.Spec.MachineConfigPool.Name))
	if apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("get MachineConfig %s: %w", facts.MachineConfigName(pi.Spec.MachineConfigPool.Name), err)
	}
	if mc.Labels["app.kubernetes.io/managed-by"] != layering.ManagedByValue ||
		mc.Annotations[layering.MachineConfigPoolImageNamespaceAnnotation] != pi.Namespace || mc.Annotations[layering.MachineConfigPoolImageNameAnnotation] != pi.Name {
		return nil, nil
	}
	return mc, nil
}

// restorePromoted makes the status say what pi's MachineConfig promotes when the status lost it
// (a status written from an outdated copy: the generated reconciler writes a reconcile's status
// over a newer one) or when the MachineConfig promotes the current inputs and the status does not
// know: the MachineConfig is the promotion. A MachineConfig of an older version of the controller
// (without the base image annotation) restores nothing.
func (r *Reconciler) restorePromoted(pi *v1alpha1.PoolImage, res *resolved) error {
	mc, err := r.ourMachineConfig(pi)
	if err != nil || mc == nil {
		return err
	}
	st := &pi.Status
	a := mc.Annotations
	hash, base := a[layering.MachineConfigInputsHashAnnotation], a[layering.MachineConfigBaseImageAnnotation]
	if hash == "" || base == "" || mc.Spec.OSImageURL == "" {
		return nil
	}
	lost := st.CurrentImage == ""
	current := hash == res.hash && st.CurrentInputsHash != res.hash
	if !lost && !current {
		return nil
	}
	st.CurrentImage, st.CurrentInputsHash = mc.Spec.OSImageURL, hash
	st.CurrentInputs = &v1alpha1.BuildInputs{BaseImage: base, ExtensionsImage: mc.Spec.BaseOSExtensionsContainerImage, Arch: a[layering.MachineConfigArchAnnotation]}
	if hash == res.hash {
		st.CurrentInputs = res.sum.DeepCopy()
		st.CurrentInputs.Changed = nil
	}
	return nil
}

// ensureMachineConfig creates or updates the pool's MachineConfig so that it promotes image. It
// reports whether it changed the image the MachineConfig carries. A MachineConfig of that name not managed by ocl-pipelines is
// left alone and reported.
func (r *Reconciler) ensureMachineConfig(ctx context.Context, pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, p facts.Promotion) (bool, error) {
	want, err := facts.DesiredMachineConfig(pi, pool, p)
	if err != nil {
		return false, asInput(err)
	}
	have, err := r.MachineConfigLister.Get(want.Name)
	if apierrors.IsNotFound(err) {
		if _, err := r.MCOClient.MachineconfigurationV1().MachineConfigs().Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return false, fmt.Errorf("create MachineConfig %s: %w", want.Name, err)
		}
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("get MachineConfig %s: %w", want.Name, err)
	}
	if have.Labels["app.kubernetes.io/managed-by"] != layering.ManagedByValue {
		return false, inputErrorf("MachineConfig %s exists and is not managed by ocl-pipelines: rename or delete it so the pool's image can be promoted", want.Name)
	}
	sameImage := have.Spec.OSImageURL == want.Spec.OSImageURL && have.Spec.BaseOSExtensionsContainerImage == want.Spec.BaseOSExtensionsContainerImage
	if sameImage && subset(want.Labels, have.Labels) && subset(want.Annotations, have.Annotations) {
		return false, nil
	}
	upd := have.DeepCopy()
	upd.Spec.OSImageURL = want.Spec.OSImageURL
	upd.Spec.BaseOSExtensionsContainerImage = want.Spec.BaseOSExtensionsContainerImage
	if upd.Labels == nil {
		upd.Labels = map[string]string{}
	}
	maps.Copy(upd.Labels, want.Labels)
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	maps.Copy(upd.Annotations, want.Annotations)
	if _, err := r.MCOClient.MachineconfigurationV1().MachineConfigs().Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("update MachineConfig %s: %w", want.Name, err)
	}
	// Labels and annotations alone (a new inputs hash of the same image) render the same
	// configuration: not a promotion.
	return !sameImage, nil
}

// deleteMachineConfig removes the pool's MachineConfig if it promotes pi's image, handing the
// pool back to the release's image. A MachineConfig another PoolImage (one that claimed the pool
// first) or an admin made is left alone. It reports whether it deleted one.
func (r *Reconciler) deleteMachineConfig(ctx context.Context, pi *v1alpha1.PoolImage) (bool, error) {
	name := facts.MachineConfigName(pi.Spec.MachineConfigPool.Name)
	have, err := r.MachineConfigLister.Get(name)
	if apierrors.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("get MachineConfig %s: %w", name, err)
	}
	if have.Labels["app.kubernetes.io/managed-by"] != layering.ManagedByValue ||
		have.Annotations[layering.MachineConfigPoolImageNamespaceAnnotation] != pi.Namespace ||
		have.Annotations[layering.MachineConfigPoolImageNameAnnotation] != pi.Name {
		return false, nil
	}
	err = r.MCOClient.MachineconfigurationV1().MachineConfigs().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("delete MachineConfig %s: %w", name, err)
	}
	return true, nil
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// promote makes the pool's MachineConfig carry image and records it as the current image. Before
// it writes, it checks every pool the MachineConfig reaches (the target pool, and custom pools
// that also select the target's MachineConfigs and have no image of their own): each must have
// nodes of the image's architecture only and no OS image stream (the MCO refuses osImageURL for
// those). Promoted is then True only once the pool's rendered configuration carries the image.
func (r *Reconciler) promote(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, image string) error {
	st := &pi.Status
	if image == "" {
		return nil
	}
	ext := res.inputs.ExtensionsImage
	if st.CurrentInputs != nil && res.hash == st.CurrentInputsHash {
		ext = st.CurrentInputs.ExtensionsImage
	}
	p := promotionOf(res, image, ext)
	if st.CurrentInputs != nil && res.hash == st.CurrentInputsHash && st.CurrentInputs.BaseImage != "" {
		p.Base = st.CurrentInputs.BaseImage
	}
	want, err := facts.DesiredMachineConfig(pi, res.pool, p)
	err = asInput(err)
	if err == nil {
		err = r.checkReach(pi, res, want)
	}
	var wrote bool
	if err == nil {
		wrote, err = r.ensureMachineConfig(ctx, pi, res.pool, p)
	}
	var ie *inputError
	if errors.As(err, &ie) {
		st.MarkPromotionFailed("%s", ie.msg)
		r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonPromotionFailed, "%s", ie.msg)
		return nil
	} else if err != nil {
		return err
	}
	if st.LatestBuild == nil || st.LatestBuild.InputsHash != res.hash {
		st.LatestBuild = &v1alpha1.BuildStatus{InputsHash: res.hash, Inputs: res.sum, Image: image}
	}
	if !st.GetCondition(v1alpha1.ConditionBuildSucceeded).IsTrue() {
		st.MarkBuildSucceeded(image)
	}
	st.MarkPromoted(image)
	if wrote {
		r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonPromoted, "MachineConfig %s sets osImageURL of MachineConfigPool %s to %s",
			facts.MachineConfigName(res.pool.Name), res.pool.Name, image)
	}
	r.markRendered(pi, res.pool, image)
	return r.ensureTag(ctx, pi, res, image)
}

// ensureTag creates, once per promoted image, the TaskRun that moves the push spec's tag to it
// (generator.RenderTag): the tag moves only when the controller promotes. Each pushed image has a
// tag of its own besides, so a registry that deletes untagged manifests keeps every image.
func (r *Reconciler) ensureTag(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, image string) error {
	tr, err := generator.RenderTag(pi, res.inputs, image)
	if err != nil {
		return inputErrorf("cannot tag %s: %v", image, flatten(err.Error()))
	}
	if _, err := r.TaskRunLister.TaskRuns(pi.Namespace).Get(tr.Name); err == nil {
		return nil
	}
	_, err = r.PipelineClient.TektonV1().TaskRuns(pi.Namespace).Create(ctx, tr, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create TaskRun %s/%s to tag %s: %w", pi.Namespace, tr.Name, image, err)
	}
	return nil
}

// checkReach refuses a MachineConfig whose image some pool it reaches cannot boot: a pool with
// nodes of another architecture than the build's, or a pool on an OS image stream.
func (r *Reconciler) checkReach(pi *v1alpha1.PoolImage, res *resolved, mc *mcfgv1.MachineConfig) error {
	return r.checkReachArch(res.pool, string(res.inputs.Arch), mc)
}

// reportReach checks, on every reconcile, the pools the promoted image reaches now: a custom pool
// or nodes that appeared since the promotion may be of another architecture. The controller
// cannot take the image back without a rollout of its own, so Promoted says so, naming the pool,
// with a Warning event.
func (r *Reconciler) reportReach(ctx context.Context, pi *v1alpha1.PoolImage) error {
	st := &pi.Status
	mc, err := r.ourMachineConfig(pi)
	if err != nil || mc == nil || mc.Spec.OSImageURL == "" {
		return err
	}
	pool, err := r.PoolLister.Get(pi.Spec.MachineConfigPool.Name)
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get MachineConfigPool %s: %w", pi.Spec.MachineConfigPool.Name, err)
	}
	arch := mc.Annotations[layering.MachineConfigArchAnnotation]
	if arch == "" && st.CurrentInputs != nil {
		arch = st.CurrentInputs.Arch
	}
	err = r.checkReachArch(pool, arch, mc)
	var ie *inputError
	if errors.As(err, &ie) {
		msg := fmt.Sprintf("the promoted image %s reaches nodes that cannot boot it: %s", mc.Spec.OSImageURL, ie.msg)
		if c := st.GetCondition(v1alpha1.ConditionPromoted); c == nil || c.Message != msg {
			r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonPromotionFailed, "%s", msg)
		}
		st.MarkPromotionFailed("%s", msg)
		return nil
	}
	return err
}

// checkReachArch is checkReach for an image of arch promoted to target by mc.
func (r *Reconciler) checkReachArch(target *mcfgv1.MachineConfigPool, arch string, mc *mcfgv1.MachineConfig) error {
	pools, err := r.PoolLister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list MachineConfigPools: %w", err)
	}
	mcs, err := r.MachineConfigLister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list MachineConfigs: %w", err)
	}
	nodes, err := r.NodeLister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	if arch == "" {
		arch = string(v1alpha1.ArchAMD64)
	}
	var problems []string
	for _, p := range mco.ReachedPools(&r.selectors, target.Name, mc, pools, mcs) {
		if s := p.Spec.OSImageStream.Name; s != "" {
			problems = append(problems, fmt.Sprintf("MachineConfigPool %s takes its OS image from the OS image stream %s (spec.osImageStream), and the MCO refuses a MachineConfig osImageURL for such a pool (\"cannot override MachineConfig osImageURL and set MachineConfigPool spec.osImageStream.name simultaneously\"): remove spec.osImageStream from the pool to layer it, or %s",
				p.Name, s, customPoolAdvice(p, target)))
			continue
		}
		for _, n := range mco.NodesOf(&r.selectors, p, nodes, pools) {
			if a := n.Labels[corev1.LabelArchStable]; a != "" && a != arch {
				if p.Name == target.Name {
					problems = append(problems, fmt.Sprintf("MachineConfigPool %s has %s nodes (%s): the %s image cannot boot them; %s",
						p.Name, a, n.Name, arch, customPoolAdvice(p, target)))
				} else {
					problems = append(problems, fmt.Sprintf("MachineConfigPool %s has %s nodes (%s) and also selects MachineConfig %s, which would boot them on this %s image: %s",
						p.Name, a, n.Name, mc.Name, arch, customPoolAdvice(p, target)))
				}
				break
			}
		}
	}
	if len(problems) > 0 {
		return inputErrorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// customPoolAdvice tells how to keep pool p (which selects target's MachineConfigs) off
// target's image.
func customPoolAdvice(p, target *mcfgv1.MachineConfigPool) string {
	if p.Name == target.Name {
		return "split the pool into one pool per architecture, each with its own PoolImage"
	}
	return fmt.Sprintf("create a PoolImage for MachineConfigPool %s (its own image, for its architecture): its MachineConfig then wins the merge for that pool, and this one can be promoted to %s", p.Name, target.Name)
}

// markRendered sets Promoted from the pool's rendered configuration: True once it carries image,
// Unknown (AwaitingRender) until the MCO renders it, False when the pool cannot render
// (RenderDegraded, with the MCO's message) or another MachineConfig sorts after ours and sets
// another osImageURL. A pool the MCO does not render (no configuration at all) keeps True.
func (r *Reconciler) markRendered(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, image string) {
	st := &pi.Status
	if msg, ok := mco.RenderDegraded(pool); ok {
		st.MarkRenderDegraded(pool.Name, msg)
		return
	}
	if mcs, err := r.MachineConfigLister.List(labels.Everything()); err == nil {
		if winner, from := mco.EffectiveOSImage(pool, mcs, ""); from != "" && from != facts.MachineConfigName(pool.Name) && winner != image {
			st.MarkOverridden(pool.Name, from, winner)
			return
		}
	}
	if rendered, ok := r.renderedImage(pool); ok && rendered != image {
		st.MarkAwaitingRender(pool.Name, pool.Spec.Configuration.Name, rendered)
	}
}
