package v1alpha1

import (
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func machineOSConfig() *mcfgv1.MachineOSConfig {
	return &mcfgv1.MachineOSConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Labels: map[string]string{"team": "os"}},
		Spec: mcfgv1.MachineOSConfigSpec{
			MachineConfigPool:       mcfgv1.MachineConfigPoolReference{Name: "worker"},
			ImageBuilder:            mcfgv1.MachineOSImageBuilder{ImageBuilderType: mcfgv1.JobBuilder},
			BaseImagePullSecret:     &mcfgv1.ImageSecretObjectReference{Name: "global-pull-secret-copy"},
			RenderedImagePushSecret: mcfgv1.ImageSecretObjectReference{Name: "builder-dockercfg"},
			RenderedImagePushSpec:   "image-registry.openshift-image-registry.svc:5000/openshift-machine-config-operator/os-image:latest",
			Containerfile: []mcfgv1.MachineOSContainerfile{
				{ContainerfileArch: mcfgv1.NoArch, Content: "FROM configs AS final\nRUN true"},
				{ContainerfileArch: mcfgv1.Arm64, Content: "FROM configs AS final\nRUN echo arm"},
			},
		},
	}
}

func TestFromMachineOSConfig(t *testing.T) {
	pi, err := FromMachineOSConfig(machineOSConfig())
	if err != nil {
		t.Fatalf("FromMachineOSConfig() = %v", err)
	}
	if pi.Name != "worker" || pi.Namespace != "" || pi.Labels["team"] != "os" || pi.Annotations[MigratedFromAnnotation] != "worker" {
		t.Errorf("metadata = %+v", pi.ObjectMeta)
	}
	s := pi.Spec
	if s.MachineConfigPool.Name != "worker" || s.PushSecret.Name != "builder-dockercfg" ||
		s.BaseImagePullSecret.Name != "global-pull-secret-copy" ||
		s.ImagePushSpec != "image-registry.openshift-image-registry.svc:5000/openshift-machine-config-operator/os-image:latest" {
		t.Errorf("spec = %+v", s)
	}
	if len(s.Containerfile) != 2 || s.Containerfile[0].Arch != ArchNoArch || s.Containerfile[1].Arch != ArchARM64 ||
		s.Containerfile[1].Content != "FROM configs AS final\nRUN echo arm" {
		t.Errorf("containerfile = %+v", s.Containerfile)
	}
	if s.RetentionKeep() != DefaultRetentionKeep {
		t.Errorf("retention = %d, want default %d", s.RetentionKeep(), DefaultRetentionKeep)
	}
}

func TestFromMachineOSConfigErrors(t *testing.T) {
	if _, err := FromMachineOSConfig(nil); err == nil {
		t.Error("FromMachineOSConfig(nil) = nil error")
	}
	bad := machineOSConfig()
	bad.Spec.Containerfile[1].ContainerfileArch = "RISCV64"
	if _, err := FromMachineOSConfig(bad); err == nil || !strings.Contains(err.Error(), "spec.containerFile[1].containerfileArch \"RISCV64\"") {
		t.Errorf("unknown arch: err = %v", err)
	}
	noTag := machineOSConfig()
	noTag.Spec.RenderedImagePushSpec = "quay.io/org/os"
	if _, err := FromMachineOSConfig(noTag); err == nil || !strings.Contains(err.Error(), "spec.imagePushSpec") {
		t.Errorf("push spec without tag: err = %v", err)
	}
}
