package poolimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// Annotations on the MachineConfig that promotes a PoolImage's image, naming the PoolImage.
const (
	// MachineConfigPoolImageNamespaceAnnotation is the PoolImage's namespace.
	MachineConfigPoolImageNamespaceAnnotation = layering.GroupName + "/poolimage-namespace"
	// MachineConfigPoolImageNameAnnotation is the PoolImage's name.
	MachineConfigPoolImageNameAnnotation = layering.GroupName + "/poolimage-name"
	// MachineConfigInputsHashAnnotation is the inputs hash of the promoted image.
	MachineConfigInputsHashAnnotation = layering.GroupName + "/inputs-hash"
	// MachineConfigBaseImageAnnotation is the base image the promoted image is built on.
	MachineConfigBaseImageAnnotation = layering.GroupName + "/base-image"
	// MachineConfigArchAnnotation is the architecture the promoted image is built for.
	MachineConfigArchAnnotation = layering.GroupName + "/arch"
)

// MachineConfigName is the name of the MachineConfig that promotes a pool's image.
//
// The MCO merges a pool's MachineConfigs sorted by name, and the last one with a non-empty
// osImageURL (and baseOSExtensionsContainerImage) wins (machine-config-operator
// pkg/controller/common/helpers.go, MergeMachineConfigs: "osImageURL :=
// GetDefaultBaseImageContainer(...); for _, cfg := range configs { if cfg.Spec.OSImageURL != "" {
// osImageURL = cfg.Spec.OSImageURL } }" after sort.SliceStable by Name). From 4.15 the sort puts
// the MachineConfigs labelled for the worker role first, then the others by name.
//
// "zz-" sorts after the MCO's templates and the usual "NN-" admin MachineConfigs. The ordering key
// after it ("0" for worker, "1" for other pools) makes a custom pool's image win over the worker
// image it inherits on 4.12–4.14 too, where the order is by name alone. Names over the 253
// characters a name may have are shortened with a digest of the pool name.
func MachineConfigName(pool string) string {
	key := "1"
	if pool == "worker" {
		key = "0"
	}
	name := "zz-ocl-" + key + "-" + pool + "-os-image"
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(pool))
	return "zz-ocl-" + key + "-" + pool[:200] + "-" + hex.EncodeToString(sum[:])[:10] + "-os-image"
}

// machineConfigLabels returns labels that the pool's machineConfigSelector selects: its
// matchLabels, and for each `In` expression the pool's own name when listed, else the first value.
func machineConfigLabels(pool *mcfgv1.MachineConfigPool) (map[string]string, error) {
	sel := pool.Spec.MachineConfigSelector
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return nil, inputErrorf("MachineConfigPool %s has no spec.machineConfigSelector, so no MachineConfig can target it", pool.Name)
	}
	out := maps.Clone(sel.MatchLabels)
	if out == nil {
		out = map[string]string{}
	}
	for _, e := range sel.MatchExpressions {
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			v := e.Values[0]
			for _, c := range e.Values {
				if c == pool.Name {
					v = c
				}
			}
			out[e.Key] = v
		case metav1.LabelSelectorOpExists:
			if _, ok := out[e.Key]; !ok {
				out[e.Key] = ""
			}
		}
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, inputErrorf("MachineConfigPool %s has an invalid spec.machineConfigSelector: %v", pool.Name, err)
	}
	if !s.Matches(labels.Set(out)) {
		return nil, inputErrorf("cannot label a MachineConfig so that MachineConfigPool %s's machineConfigSelector (%s) selects it: give the selector matchLabels", pool.Name, s)
	}
	return out, nil
}

// desiredMachineConfig is the MachineConfig that makes pool boot image.
//
// Only osImageURL and baseOSExtensionsContainerImage are set. The pool's extensions and
// kernelType stay in its own MachineConfigs: when osImageURL is overridden, the machine-config
// daemon rebases to it and then applies kernel arguments, kernelType and extensions on top of the
// custom image from baseOSExtensionsContainerImage (machine-config-operator pkg/daemon/update.go;
// the MCO's e2e suite covers extensions, realtime and 64k kernels on layered images). So the
// generator does not bake them in, and this MachineConfig points the daemon at the extensions
// image of the release the image was built on.
//
// Its annotations record what it promotes (the PoolImage, the inputs hash, the base image, the
// architecture): the MachineConfig is the promotion, and the PoolImage's status is restored from
// it when a status write from an outdated copy lost it (restorePromoted).
func desiredMachineConfig(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, p promotion) (*mcfgv1.MachineConfig, error) {
	l, err := machineConfigLabels(pool)
	if err != nil {
		return nil, err
	}
	l["app.kubernetes.io/managed-by"] = layering.ManagedByValue
	l[layering.PoolLabel] = generator.PoolLabelValue(pool.Name)
	return &mcfgv1.MachineConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfig"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   MachineConfigName(pool.Name),
			Labels: l,
			Annotations: map[string]string{
				MachineConfigPoolImageNamespaceAnnotation: pi.Namespace,
				MachineConfigPoolImageNameAnnotation:      pi.Name,
				MachineConfigInputsHashAnnotation:         p.Hash,
				MachineConfigBaseImageAnnotation:          p.Base,
				MachineConfigArchAnnotation:               p.Arch,
			},
		},
		Spec: mcfgv1.MachineConfigSpec{OSImageURL: p.Image, BaseOSExtensionsContainerImage: p.Extensions},
	}, nil
}

// promotion is what a MachineConfig promotes: the image, the extensions image the MCO installs
// extensions from, and the image's inputs hash, base image and architecture.
type promotion struct {
	Image, Extensions, Hash, Base, Arch string
}

// promotionOf is the promotion of image, built from res's inputs.
func promotionOf(res *resolved, image, extensions string) promotion {
	arch := string(res.inputs.Arch)
	if arch == "" {
		arch = string(v1alpha1.ArchAMD64)
	}
	return promotion{Image: image, Extensions: extensions, Hash: res.hash, Base: res.inputs.BaseImage, Arch: arch}
}

// ourMachineConfig returns pi's MachineConfig of its pool, nil when there is none or another's.
func (r *Reconciler) ourMachineConfig(pi *v1alpha1.PoolImage) (*mcfgv1.MachineConfig, error) {
	mc, err := r.MachineConfigLister.Get(MachineConfigName(pi.Spec.MachineConfigPool.Name))
	if apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("get MachineConfig %s: %w", MachineConfigName(pi.Spec.MachineConfigPool.Name), err)
	}
	if mc.Labels["app.kubernetes.io/managed-by"] != layering.ManagedByValue ||
		mc.Annotations[MachineConfigPoolImageNamespaceAnnotation] != pi.Namespace || mc.Annotations[MachineConfigPoolImageNameAnnotation] != pi.Name {
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
	hash, base := a[MachineConfigInputsHashAnnotation], a[MachineConfigBaseImageAnnotation]
	if hash == "" || base == "" || mc.Spec.OSImageURL == "" {
		return nil
	}
	lost := st.CurrentImage == ""
	current := hash == res.hash && st.CurrentInputsHash != res.hash
	if !lost && !current {
		return nil
	}
	st.CurrentImage, st.CurrentInputsHash = mc.Spec.OSImageURL, hash
	st.CurrentInputs = &v1alpha1.BuildInputs{BaseImage: base, ExtensionsImage: mc.Spec.BaseOSExtensionsContainerImage, Arch: a[MachineConfigArchAnnotation]}
	if hash == res.hash {
		st.CurrentInputs = res.sum.DeepCopy()
		st.CurrentInputs.Changed = nil
	}
	return nil
}

// ensureMachineConfig creates or updates the pool's MachineConfig so that it promotes image. It
// reports whether it changed the image the MachineConfig carries. A MachineConfig of that name not managed by ocl-pipelines is
// left alone and reported.
func (r *Reconciler) ensureMachineConfig(ctx context.Context, pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, p promotion) (bool, error) {
	want, err := desiredMachineConfig(pi, pool, p)
	if err != nil {
		return false, err
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
	name := MachineConfigName(pi.Spec.MachineConfigPool.Name)
	have, err := r.MachineConfigLister.Get(name)
	if apierrors.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("get MachineConfig %s: %w", name, err)
	}
	if have.Labels["app.kubernetes.io/managed-by"] != layering.ManagedByValue ||
		have.Annotations[MachineConfigPoolImageNamespaceAnnotation] != pi.Namespace ||
		have.Annotations[MachineConfigPoolImageNameAnnotation] != pi.Name {
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
	want, err := desiredMachineConfig(pi, res.pool, p)
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
			MachineConfigName(res.pool.Name), res.pool.Name, image)
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
	arch := mc.Annotations[MachineConfigArchAnnotation]
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
	for _, p := range reachedPools(&r.selectors, target.Name, mc, pools, mcs) {
		if s := p.Spec.OSImageStream.Name; s != "" {
			problems = append(problems, fmt.Sprintf("MachineConfigPool %s takes its OS image from the OS image stream %s (spec.osImageStream), and the MCO refuses a MachineConfig osImageURL for such a pool (\"cannot override MachineConfig osImageURL and set MachineConfigPool spec.osImageStream.name simultaneously\"): remove spec.osImageStream from the pool to layer it, or %s",
				p.Name, s, customPoolAdvice(p, target)))
			continue
		}
		for _, n := range nodesOf(&r.selectors, p, nodes, pools) {
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
	if msg, ok := renderDegraded(pool); ok {
		st.MarkRenderDegraded(pool.Name, msg)
		return
	}
	if mcs, err := r.MachineConfigLister.List(labels.Everything()); err == nil {
		if winner, from := effectiveOSImage(pool, mcs, ""); from != "" && from != MachineConfigName(pool.Name) && winner != image {
			st.MarkOverridden(pool.Name, from, winner)
			return
		}
	}
	if rendered, ok := r.renderedImage(pool); ok && rendered != image {
		st.MarkAwaitingRender(pool.Name, pool.Spec.Configuration.Name, rendered)
	}
}
