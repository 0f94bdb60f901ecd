package config

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline/pod"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/configmap"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// Name is the name of the controller's ConfigMap, in the controller's namespace.
const Name = "config-ocl-pipelines"

// Keys of the ConfigMap.
const (
	KeyBuildahImage      = "buildah-image"
	KeyToolsImage        = "tools-image"
	KeyStorageDriver     = "storage-driver"
	KeyImageFormat       = "image-format"
	KeyTLSVerify         = "tls-verify"
	KeyServiceAccount    = "service-account"
	KeyPodTemplate       = "pod-template"
	KeyTimeout           = "timeout"
	KeyQuietPeriod       = "quiet-period"
	KeyDashboardURL      = "dashboard-url"
	KeyDefaultPullSecret = "default-pull-secret"
	KeyRetentionKeep     = "retention-keep"
	// KeyBuildSecurityContext is the security context of the build and push steps (YAML);
	// empty keeps the generator's default, privileged.
	KeyBuildSecurityContext = "build-security-context"
	// KeyHoldTimeout is how long a pool may be held for a rebuild before HoldTimeout is raised.
	KeyHoldTimeout = "hold-timeout"
)

// Keys returns every key the ConfigMap may hold; any other key is an error (a typo would
// otherwise be ignored silently).
func Keys() []string {
	return []string{KeyBuildahImage, KeyToolsImage, KeyStorageDriver, KeyImageFormat, KeyTLSVerify,
		KeyServiceAccount, KeyPodTemplate, KeyTimeout, KeyQuietPeriod, KeyDashboardURL,
		KeyDefaultPullSecret, KeyRetentionKeep, KeyBuildSecurityContext, KeyHoldTimeout}
}

// DefaultQuietPeriod is how long the inputs of a pool must stay unchanged before a build starts,
// so that a burst of edits (or an upgrade touching several objects) builds once.
const DefaultQuietPeriod = 15 * time.Second

// DefaultHoldTimeout is how long a pool held for a rebuild on a new base image may wait for
// the rebuilt image before the PoolImage reports HoldTimeout.
const DefaultHoldTimeout = 2 * time.Hour

// Config is the controller's configuration.
type Config struct {
	// Generator holds the step images and build defaults passed to the generator.
	Generator generator.Config
	// QuietPeriod is how long inputs must stay unchanged before a build starts.
	QuietPeriod time.Duration
	// DashboardURL is the Tekton dashboard's base URL; when set, failures link to the failed step.
	DashboardURL string
	// DefaultPullSecret names a Secret, looked up in each PoolImage's namespace, that pulls the
	// base image when spec.baseImagePullSecret is unset (usually a copy of the cluster's global
	// pull secret). Empty means none.
	DefaultPullSecret string
	// RetentionKeep is how many finished PipelineRuns of a pool are kept when the PoolImage does
	// not set spec.retention.keep.
	RetentionKeep int32
	// HoldTimeout is how long a held pool may wait for its rebuilt image when the PoolImage
	// does not set spec.promotion.holdTimeout.
	HoldTimeout time.Duration
}

// Defaults returns the configuration of an empty ConfigMap.
func Defaults() *Config {
	return &Config{QuietPeriod: DefaultQuietPeriod, DefaultPullSecret: "global-pull-secret", RetentionKeep: v1alpha1.DefaultRetentionKeep,
		HoldTimeout: DefaultHoldTimeout}
}

// FromConfigMap parses the ConfigMap; an error names the key and what is wrong with its value.
func FromConfigMap(cm *corev1.ConfigMap) (*Config, error) {
	c := Defaults()
	d := cm.Data
	for k := range d {
		if !slices.Contains(Keys(), k) {
			return nil, fmt.Errorf("%s: unknown key %q: the keys are %s", Name, k, strings.Join(Keys(), ", "))
		}
	}
	if v := strings.TrimSpace(d[KeyRetentionKeep]); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %s = %q: want a whole number of runs, at least 1", Name, KeyRetentionKeep, v)
		}
		c.RetentionKeep = int32(n)
	}
	g := &c.Generator
	g.BuildahImage = strings.TrimSpace(d[KeyBuildahImage])
	g.ToolsImage = strings.TrimSpace(d[KeyToolsImage])
	for _, kv := range [][2]string{{KeyBuildahImage, g.BuildahImage}, {KeyToolsImage, g.ToolsImage}} {
		if k, v := kv[0], kv[1]; strings.HasPrefix(v, "ko://") {
			return nil, fmt.Errorf("%s: %s = %q is a ko reference nothing resolved: install the release (kubectl apply -f dist/release.yaml, from make release), or render config/ with ko resolve, which replaces it by the image's digest", Name, k, v)
		}
	}
	g.ServiceAccountName = strings.TrimSpace(d[KeyServiceAccount])
	c.DashboardURL = strings.TrimRight(strings.TrimSpace(d[KeyDashboardURL]), "/")
	if v, ok := d[KeyDefaultPullSecret]; ok {
		c.DefaultPullSecret = strings.TrimSpace(v)
	}
	if v := strings.TrimSpace(d[KeyStorageDriver]); v != "" {
		if v != "vfs" && v != "overlay" {
			return nil, fmt.Errorf("%s: %s = %q: want vfs or overlay", Name, KeyStorageDriver, v)
		}
		g.StorageDriver = v
	}
	if v := strings.TrimSpace(d[KeyImageFormat]); v != "" {
		if v != "oci" && v != "docker" {
			return nil, fmt.Errorf("%s: %s = %q: want oci or docker", Name, KeyImageFormat, v)
		}
		g.ImageFormat = v
	}
	if v := strings.TrimSpace(d[KeyTLSVerify]); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %s = %q: want true or false", Name, KeyTLSVerify, v)
		}
		g.TLSVerify = &b
	}
	if v := strings.TrimSpace(d[KeyPodTemplate]); v != "" {
		var pt pod.PodTemplate
		if err := yaml.UnmarshalStrict([]byte(v), &pt); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", Name, KeyPodTemplate, err)
		}
		g.PodTemplate = &pt
	}
	if v := strings.TrimSpace(d[KeyBuildSecurityContext]); v != "" {
		var sc corev1.SecurityContext
		if err := yaml.UnmarshalStrict([]byte(v), &sc); err != nil {
			return nil, fmt.Errorf("%s: %s: %w (want a Kubernetes SecurityContext, e.g. runAsUser: 1000)", Name, KeyBuildSecurityContext, err)
		}
		g.BuildSecurityContext = &sc
	}
	if v := strings.TrimSpace(d[KeyTimeout]); v != "" {
		t, err := time.ParseDuration(v)
		if err != nil || t < 0 {
			return nil, fmt.Errorf("%s: %s = %q: want a duration such as 1h30m", Name, KeyTimeout, v)
		}
		g.Timeouts = &tektonv1.TimeoutFields{Pipeline: &metav1.Duration{Duration: t}}
	}
	if v := strings.TrimSpace(d[KeyHoldTimeout]); v != "" {
		h, err := time.ParseDuration(v)
		if err != nil || h <= 0 {
			return nil, fmt.Errorf("%s: %s = %q: want a positive duration such as 2h", Name, KeyHoldTimeout, v)
		}
		c.HoldTimeout = h
	}
	if v := strings.TrimSpace(d[KeyQuietPeriod]); v != "" {
		q, err := time.ParseDuration(v)
		if err != nil || q < 0 {
			return nil, fmt.Errorf("%s: %s = %q: want a duration such as 15s (0 starts builds at once)", Name, KeyQuietPeriod, v)
		}
		c.QuietPeriod = q
	}
	return c, nil
}

type cfgKey struct{}

// ToContext attaches c to ctx.
func ToContext(ctx context.Context, c *Config) context.Context {
	return context.WithValue(ctx, cfgKey{}, c)
}

// FromContextOrDefaults returns the Config attached to ctx, or Defaults.
func FromContextOrDefaults(ctx context.Context) *Config {
	if c, ok := ctx.Value(cfgKey{}).(*Config); ok && c != nil {
		return c
	}
	return Defaults()
}

// Store keeps the latest valid Config of the watched ConfigMap; an invalid update is logged and
// the previous Config stays in force.
type Store struct {
	*configmap.UntypedStore
}

// NewStore creates a Store; call WatchConfigs with the controller's configmap.Watcher.
func NewStore(logger configmap.Logger, onAfterStore ...func(name string, value interface{})) *Store {
	return &Store{UntypedStore: configmap.NewUntypedStore("ocl-pipelines", logger,
		configmap.Constructors{Name: FromConfigMap}, onAfterStore...)}
}

// ToContext attaches the current Config to ctx (knative's controller calls it per reconcile).
func (s *Store) ToContext(ctx context.Context) context.Context {
	if c, ok := s.UntypedLoad(Name).(*Config); ok && c != nil {
		return ToContext(ctx, c)
	}
	return ToContext(ctx, Defaults())
}
