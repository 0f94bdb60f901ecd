package poolimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"

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
func desiredMachineConfig(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, image, extensions, hash string) (*mcfgv1.MachineConfig, error) {
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
				MachineConfigInputsHashAnnotation:         hash,
			},
		},
		Spec: mcfgv1.MachineConfigSpec{OSImageURL: image, BaseOSExtensionsContainerImage: extensions},
	}, nil
}

// ensureMachineConfig creates or updates the pool's MachineConfig so that it promotes image. It
// reports whether it changed the image the MachineConfig carries. A MachineConfig of that name not managed by ocl-pipelines is
// left alone and reported.
func (r *Reconciler) ensureMachineConfig(ctx context.Context, pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, image, extensions, hash string) (bool, error) {
	want, err := desiredMachineConfig(pi, pool, image, extensions, hash)
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
	want, err := desiredMachineConfig(pi, res.pool, image, ext, res.hash)
	if err == nil {
		err = r.checkReach(pi, res, want)
	}
	var wrote bool
	if err == nil {
		wrote, err = r.ensureMachineConfig(ctx, pi, res.pool, image, ext, res.hash)
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
	arch := string(res.inputs.Arch)
	if arch == "" {
		arch = string(v1alpha1.ArchAMD64)
	}
	for _, p := range reachedPools(res.pool.Name, mc, pools, mcs) {
		if s := p.Spec.OSImageStream.Name; s != "" {
			return inputErrorf("MachineConfigPool %s takes its OS image from the OS image stream %s (spec.osImageStream), and the MCO refuses a MachineConfig osImageURL for such a pool (\"cannot override MachineConfig osImageURL and set MachineConfigPool spec.osImageStream.name simultaneously\"): remove spec.osImageStream from the pool to layer it, or %s",
				p.Name, s, customPoolAdvice(p, res.pool))
		}
		for _, n := range nodesOf(p, nodes, pools) {
			if a := n.Labels[corev1.LabelArchStable]; a != "" && a != arch {
				return inputErrorf("MachineConfigPool %s has %s nodes (%s) and also selects MachineConfig %s, which would boot them on this %s image: %s",
					p.Name, a, n.Name, mc.Name, arch, customPoolAdvice(p, res.pool))
			}
		}
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
