package builders

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// MinimalContainerfile is the Containerfile of a PoolImage made by PoolImage: it adds nothing.
const MinimalContainerfile = "FROM configs AS final\n"

// PoolImageOption changes a PoolImage made by PoolImage.
type PoolImageOption func(*v1alpha1.PoolImage)

// PoolImage returns the PoolImage ns/name for the MachineConfigPool of the same name, with
// MinimalContainerfile and the push spec registry.example.com/os/<name>:latest, changed by opts
// in order. It is not defaulted (see Defaulted): what a client creates.
func PoolImage(ns, name string, opts ...PoolImageOption) *v1alpha1.PoolImage {
	pi := &v1alpha1.PoolImage{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "PoolImage"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.PoolImageSpec{
			MachineConfigPool: v1alpha1.MachineConfigPoolReference{Name: name},
			Containerfile:     []v1alpha1.Containerfile{{Content: MinimalContainerfile}},
			ImagePushSpec:     "registry.example.com/os/" + name + ":latest",
		},
	}
	for _, o := range opts {
		o(pi)
	}
	return pi
}

// WithPool names the MachineConfigPool.
func WithPool(pool string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) { pi.Spec.MachineConfigPool.Name = pool }
}

// WithContainerfile sets the one noarch Containerfile.
func WithContainerfile(content string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) { pi.Spec.Containerfile = []v1alpha1.Containerfile{{Content: content}} }
}

// WithArchContainerfile adds a Containerfile for arch.
func WithArchContainerfile(arch v1alpha1.Arch, content string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) {
		pi.Spec.Containerfile = append(pi.Spec.Containerfile, v1alpha1.Containerfile{Arch: arch, Content: content})
	}
}

// WithPushSpec sets spec.imagePushSpec.
func WithPushSpec(spec string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) { pi.Spec.ImagePushSpec = spec }
}

// WithPushSecret names spec.pushSecret.
func WithPushSecret(name string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) { pi.Spec.PushSecret = &v1alpha1.SecretReference{Name: name} }
}

// WithPullSecret names spec.baseImagePullSecret.
func WithPullSecret(name string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) { pi.Spec.BaseImagePullSecret = &v1alpha1.SecretReference{Name: name} }
}

// WithEntitlementSecret names spec.entitlements.secret.
func WithEntitlementSecret(name string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) {
		entitlements(pi).Secret = &v1alpha1.SecretReference{Name: name}
	}
}

// WithYumRepos names spec.entitlements.yumRepos.
func WithYumRepos(name string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) {
		entitlements(pi).YumRepos = &v1alpha1.ConfigMapReference{Name: name}
	}
}

func entitlements(pi *v1alpha1.PoolImage) *v1alpha1.Entitlements {
	if pi.Spec.Entitlements == nil {
		pi.Spec.Entitlements = &v1alpha1.Entitlements{}
	}
	return pi.Spec.Entitlements
}

// WithParam adds a pipeline parameter override (spec.pipeline.params).
func WithParam(name, value string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) {
		if pi.Spec.Pipeline == nil {
			pi.Spec.Pipeline = &v1alpha1.PipelineOptions{}
		}
		pi.Spec.Pipeline.Params = append(pi.Spec.Pipeline.Params, v1alpha1.Param{Name: name, Value: value})
	}
}

// WithBaseImage pins spec.baseImage.
func WithBaseImage(image string) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) { pi.Spec.BaseImage = image }
}

// WithStored gives the PoolImage the metadata the API server stores: a uid, generation 1 and
// the creation time.
func WithStored(uid types.UID, created metav1.Time) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) {
		pi.UID, pi.Generation, pi.CreationTimestamp = uid, 1, created
	}
}

// WithStatus changes the status.
func WithStatus(f func(*v1alpha1.PoolImageStatus)) PoolImageOption {
	return func(pi *v1alpha1.PoolImage) { f(&pi.Status) }
}

// Defaulted applies the API's defaults, as the API server does on create.
func Defaulted() PoolImageOption {
	return func(pi *v1alpha1.PoolImage) { pi.SetDefaults(context.Background()) }
}
