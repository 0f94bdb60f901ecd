package facts

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
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

// MachineConfigLabels returns labels that the pool's machineConfigSelector selects: its
// matchLabels, and for each `In` expression the pool's own name when listed, else the first value.
func MachineConfigLabels(pool *mcfgv1.MachineConfigPool) (map[string]string, error) {
	sel := pool.Spec.MachineConfigSelector
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return nil, errorf("MachineConfigPool %s has no spec.machineConfigSelector, so no MachineConfig can target it", pool.Name)
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
		return nil, errorf("MachineConfigPool %s has an invalid spec.machineConfigSelector: %v", pool.Name, err)
	}
	if !s.Matches(labels.Set(out)) {
		return nil, errorf("cannot label a MachineConfig so that MachineConfigPool %s's machineConfigSelector (%s) selects it: give the selector matchLabels", pool.Name, s)
	}
	return out, nil
}

// DesiredMachineConfig is the MachineConfig that makes pool boot image.
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
// it when a status write from an outdated copy lost it (the controller's restorePromoted).
func DesiredMachineConfig(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, p Promotion) (*mcfgv1.MachineConfig, error) {
	l, err := MachineConfigLabels(pool)
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
				layering.MachineConfigPoolImageNamespaceAnnotation: pi.Namespace,
				layering.MachineConfigPoolImageNameAnnotation:      pi.Name,
				layering.MachineConfigInputsHashAnnotation:         p.Hash,
				layering.MachineConfigBaseImageAnnotation:          p.Base,
				layering.MachineConfigArchAnnotation:               p.Arch,
			},
		},
		Spec: mcfgv1.MachineConfigSpec{OSImageURL: p.Image, BaseOSExtensionsContainerImage: p.Extensions},
	}, nil
}

// Promotion is what a MachineConfig promotes.
type Promotion struct {
	// Image is the verified image, repository@sha256:digest (the MachineConfig's osImageURL).
	Image string
	// Extensions is the extensions image the MCO installs extensions from: that of the
	// release the image was built on.
	Extensions string
	// Hash, Base and Arch are the image's inputs hash, base image and architecture.
	Hash, Base, Arch string
}
