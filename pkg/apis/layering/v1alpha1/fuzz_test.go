package v1alpha1

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
)

// FuzzValidatePushSpec: no panic; an accepted push spec is a tag with an explicit registry, and a
// rejection says what is wrong and how to fix it.
func FuzzValidatePushSpec(f *testing.F) {
	for _, s := range []string{"registry.example.com/os/worker:latest", "localhost:5000/a:b", "a:b", "r.io/a@sha256:" + strings.Repeat("a", 64),
		"r.io/A:b", "r.io/a:", "r.io/a:b:c", "svc.ns.svc:5000/ns/img:tag", "$(id)/a:b", "", "r.io/a:" + strings.Repeat("t", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		err := ValidatePushSpec(spec)
		if err != nil {
			if err.Message == "" || err.Details == "" {
				t.Fatalf("rejection without a message and a fix: %q", err)
			}
			return
		}
		if _, perr := name.NewTag(spec, name.StrictValidation); perr != nil || !hasExplicitRegistry(spec) {
			t.Fatalf("accepted %q, which is not a tag with a registry host", spec)
		}
	})
}

// FuzzValidate: defaulting then validating any PoolImage never panics, defaulting is idempotent,
// and every error names a spec path.
func FuzzValidate(f *testing.F) {
	f.Add("worker", "noarch", "FROM configs AS final\n", "r.io/a:b", "push", "BUILDAH_IMAGE", "quay.io/b:1", int32(5))
	f.Add("", "x86", "", "", "", "NOPE", "", int32(0))
	f.Add("Worker_1", "arm64", "RUN \x00", "a", "-", "TLS_VERIFY", "maybe", int32(101))
	f.Fuzz(func(t *testing.T, pool, arch, content, push, secret, param, value string, keep int32) {
		pi := &PoolImage{Spec: PoolImageSpec{
			MachineConfigPool: MachineConfigPoolReference{Name: pool},
			Containerfile:     []Containerfile{{Arch: Arch(arch), Content: content}},
			ImagePushSpec:     push,
			PushSecret:        &SecretReference{Name: secret},
			Pipeline:          &PipelineOptions{Params: []Param{{Name: param, Value: value}}},
			Retention:         &Retention{Keep: &keep},
		}}
		pi.SetDefaults(context.Background())
		once := pi.DeepCopy()
		pi.SetDefaults(context.Background())
		if once.Spec.Containerfile[0].Arch != pi.Spec.Containerfile[0].Arch {
			t.Fatal("SetDefaults is not idempotent")
		}
		if err := pi.Validate(context.Background()); err != nil {
			for _, fe := range err.WrappedErrors() {
				if len(fe.Paths) == 0 || !strings.HasPrefix(fe.Paths[0], "spec.") || fe.Message == "" {
					t.Fatalf("error without a spec path or message: %#v", fe)
				}
			}
		}
	})
}

// FuzzFromMachineOSConfig: any MachineOSConfig converts or fails with a message naming the
// MachineOSConfig; a converted one validates.
func FuzzFromMachineOSConfig(f *testing.F) {
	f.Add("worker", "NoArch", "FROM configs AS final\n", "r.io/a:b")
	f.Add("", "RISCV", "", "")
	f.Fuzz(func(t *testing.T, pool, arch, content, push string) {
		m := machineOSConfig()
		m.Spec.MachineConfigPool.Name = pool
		m.Spec.Containerfile = []mcfgv1.MachineOSContainerfile{{ContainerfileArch: mcfgv1.ContainerfileArch(arch), Content: content}}
		m.Spec.RenderedImagePushSpec = mcfgv1.ImageTagFormat(push)
		pi, err := FromMachineOSConfig(m)
		if err != nil {
			if !strings.Contains(err.Error(), "MachineOSConfig worker") {
				t.Fatalf("error does not name the MachineOSConfig: %q", err)
			}
			return
		}
		if verr := pi.Validate(context.Background()); verr != nil {
			t.Fatalf("converted PoolImage does not validate: %v", verr)
		}
	})
}
