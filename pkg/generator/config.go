package generator

import (
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/pod"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Production step images. They are parameters of the generated pipeline; a platform team
// overrides them in the controller's ConfigMap or per PoolImage (spec.pipeline.params).
const (
	// DefaultBuildahImage runs the inject, build and push steps: it needs buildah and bash.
	DefaultBuildahImage = "quay.io/buildah/stable:v1.41.4"
	// DefaultToolsImage runs the fetch-base-digest, check-push, verify, promote and report steps: it
	// carries the ocl-step binary (cmd/ocl-step) on its PATH.
	DefaultToolsImage = "ghcr.io/ocl-pipelines/ocl-step:v0.1.0"
)

// Default retry counts per stage (see v1alpha1.Retries).
const (
	DefaultFetchRetries   = 2
	DefaultPushRetries    = 3
	DefaultVerifyRetries  = 2
	DefaultPromoteRetries = 2
)

// Config holds what a platform team tunes for every pool: step images and build defaults. The
// controller reads it from its ConfigMap; the zero value of each field means "use the default".
type Config struct {
	// BuildahImage is the default BUILDAH_IMAGE.
	BuildahImage string `json:"buildahImage,omitempty"`
	// ToolsImage is the default TOOLS_IMAGE.
	ToolsImage string `json:"toolsImage,omitempty"`
	// StorageDriver is buildah's storage driver: vfs (default, works everywhere) or overlay.
	StorageDriver string `json:"storageDriver,omitempty"`
	// ImageFormat is the manifest format of built images: oci (default) or docker.
	ImageFormat string `json:"imageFormat,omitempty"`
	// TLSVerify is the default TLS_VERIFY; nil means true.
	TLSVerify *bool `json:"tlsVerify,omitempty"`
	// ServiceAccountName runs build pods when a PoolImage does not name one.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// PodTemplate is the default pod template of build pods.
	PodTemplate *pod.PodTemplate `json:"podTemplate,omitempty"`
	// Timeouts are the default timeouts of a run.
	Timeouts *tektonv1.TimeoutFields `json:"timeouts,omitempty"`
	// BuildSecurityContext is the security context of the build and push steps. Default:
	// privileged, as buildah needs to create user namespaces and mounts (see docs).
	BuildSecurityContext *corev1.SecurityContext `json:"buildSecurityContext,omitempty"`
}

// withDefaults returns c with every unset field set to its default.
func (c Config) withDefaults() Config {
	if c.BuildahImage == "" {
		c.BuildahImage = DefaultBuildahImage
	}
	if c.ToolsImage == "" {
		c.ToolsImage = DefaultToolsImage
	}
	if c.StorageDriver == "" {
		c.StorageDriver = "vfs"
	}
	if c.ImageFormat == "" {
		c.ImageFormat = "oci"
	}
	if c.TLSVerify == nil {
		t := true
		c.TLSVerify = &t
	}
	if c.Timeouts == nil {
		c.Timeouts = &tektonv1.TimeoutFields{Pipeline: &metav1.Duration{Duration: defaultPipelineTimeout}}
	}
	if c.BuildSecurityContext == nil {
		privileged := true
		c.BuildSecurityContext = &corev1.SecurityContext{Privileged: &privileged}
	}
	return c
}
