package v1alpha1

import (
	"context"
	"errors"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MigratedFromAnnotation records, on a PoolImage made by FromMachineOSConfig, the
// MachineOSConfig it came from.
const MigratedFromAnnotation = "layering.ocl-pipelines.dev/migrated-from-machineosconfig"

var moscArches = map[mcfgv1.ContainerfileArch]Arch{
	mcfgv1.NoArch: ArchNoArch,
	"":            ArchNoArch,
	mcfgv1.Amd64:  ArchAMD64,
	mcfgv1.Arm64:  ArchARM64,
	mcfgv1.Ppc:    ArchPPC64LE,
	mcfgv1.S390:   ArchS390X,
}

// FromMachineOSConfig converts an MCO MachineOSConfig into the equivalent PoolImage: same pool,
// Containerfiles, push spec and secrets. The PoolImage is returned without a namespace: create
// it in the namespace holding the referenced secrets (the MCO keeps them in
// openshift-machine-config-operator). The result is defaulted and validated; an error says which
// MachineOSConfig field cannot be carried over.
func FromMachineOSConfig(mosc *mcfgv1.MachineOSConfig) (*PoolImage, error) {
	if mosc == nil {
		return nil, errors.New("FromMachineOSConfig: nil MachineOSConfig")
	}
	pi := &PoolImage{
		TypeMeta: metav1.TypeMeta{APIVersion: SchemeGroupVersion.String(), Kind: "PoolImage"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        mosc.Name,
			Labels:      map[string]string{},
			Annotations: map[string]string{MigratedFromAnnotation: mosc.Name},
		},
		Spec: PoolImageSpec{
			MachineConfigPool: MachineConfigPoolReference{Name: mosc.Spec.MachineConfigPool.Name},
			ImagePushSpec:     string(mosc.Spec.RenderedImagePushSpec),
		},
	}
	for k, v := range mosc.Labels {
		pi.Labels[k] = v
	}
	if n := mosc.Spec.RenderedImagePushSecret.Name; n != "" {
		pi.Spec.PushSecret = &SecretReference{Name: n}
	}
	if r := mosc.Spec.BaseImagePullSecret; r != nil && r.Name != "" {
		pi.Spec.BaseImagePullSecret = &SecretReference{Name: r.Name}
	}
	for i, cf := range mosc.Spec.Containerfile {
		arch, ok := moscArches[cf.ContainerfileArch]
		if !ok {
			return nil, fmt.Errorf("MachineOSConfig %s: spec.containerFile[%d].containerfileArch %q is not one of NoArch, AMD64, ARM64, PPC64LE, S390X",
				mosc.Name, i, cf.ContainerfileArch)
		}
		pi.Spec.Containerfile = append(pi.Spec.Containerfile, Containerfile{Arch: arch, Content: cf.Content})
	}
	pi.SetDefaults(context.Background())
	if err := pi.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("MachineOSConfig %s cannot be migrated: %w", mosc.Name, err)
	}
	return pi, nil
}
