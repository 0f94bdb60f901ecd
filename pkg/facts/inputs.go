package facts

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/mco"
)

// TrustedCAConfigMapName is the ConfigMap, in a PoolImage's namespace, whose ca-bundle.crt is
// trusted by buildah and RUN steps when it exists. On OpenShift, create it empty with the label
// config.openshift.io/inject-trusted-cabundle=true and the cluster fills it in.
const TrustedCAConfigMapName = "trusted-ca"

// trustedCAKey is the data key of the trust bundle in TrustedCAConfigMapName.
const trustedCAKey = "ca-bundle.crt"

// Source answers the reads a PoolImage's inputs depend on. A nil object with a nil error means
// the object does not exist. The controller answers from its informers' listers (tracking each
// object it is asked for, so that a change re-enqueues the PoolImage); the CLI and importers
// answer from objects they read from files (Objects).
//
// Secret and ConfigMap are reads in the PoolImage's namespace. Only a Secret's name and type
// are used, never its data.
type Source interface {
	// Pool returns the named MachineConfigPool.
	Pool(name string) (*mcfgv1.MachineConfigPool, error)
	// Pools returns every MachineConfigPool (a node's pool depends on all of them).
	Pools() ([]*mcfgv1.MachineConfigPool, error)
	// ControllerConfig returns the MCO's ControllerConfig machine-config-controller.
	ControllerConfig() (*mcfgv1.ControllerConfig, error)
	// Nodes returns every node.
	Nodes() ([]*corev1.Node, error)
	// MachineConfig returns the named MachineConfig (a pool's rendered configuration).
	MachineConfig(name string) (*mcfgv1.MachineConfig, error)
	// Secret returns the named Secret of the PoolImage's namespace.
	Secret(name string) (*corev1.Secret, error)
	// ConfigMap returns the named ConfigMap of the PoolImage's namespace.
	ConfigMap(name string) (*corev1.ConfigMap, error)
}

// Options are the platform team's settings that shape the inputs (the controller's ConfigMap
// config-ocl-pipelines).
type Options struct {
	// Config is the generator's defaults.
	Config generator.Config
	// DefaultPullSecret names the Secret, in the PoolImage's namespace, that pulls the base
	// image when spec.baseImagePullSecret is unset; empty for none.
	DefaultPullSecret string
	// DefaultPullSecretOrigin says where DefaultPullSecret is configured, for messages.
	DefaultPullSecretOrigin string
	// Selectors remembers parsed pool selectors across calls; nil parses them every time.
	Selectors *mco.Selectors
}

// Error is a problem with a PoolImage's inputs that only a change of the cluster or of the spec
// can fix; its message names the object or field and the fix. Any other error returned by
// Inputs is one of the Source's, to be retried.
type Error struct {
	// Msg is the whole message.
	Msg string
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// PoolNotFound is the *Error of a PoolImage whose MachineConfigPool does not exist.
func PoolNotFound(pool string) error {
	return errorf("MachineConfigPool %q not found: create it, or fix spec.machineConfigPool.name", pool)
}

// fieldError prefixes an *Error of the Source with the field whose read caused it; other errors
// are wrapped as they are.
func fieldError(field string, err error) error {
	var fe *Error
	if errors.As(err, &fe) {
		return &Error{Msg: field + ": " + fe.Msg}
	}
	return fmt.Errorf("%s: %w", field, err)
}

// Resolved is what Inputs found: the pool and the generator's inputs.
type Resolved struct {
	// Pool is the PoolImage's MachineConfigPool.
	Pool *mcfgv1.MachineConfigPool
	// Inputs are the generator's inputs (Trigger unset).
	Inputs generator.Inputs
}

// Inputs turns the cluster facts a PoolImage depends on into the generator's inputs: the base
// and extensions images of the release (the ControllerConfig) unless the spec pins them, the
// pool's node architecture, the cluster proxy, which optional Secrets exist (the namespace's
// entitlement, the default pull secret), and the hashes of the yum repositories and the trust
// bundle. It refuses what the controller cannot build or promote, with an *Error naming the
// field or object and the fix: a missing pool, Secret or ConfigMap, a Secret of the wrong type,
// a pool on an OS image stream or of several architectures, extensions with a pinned base image.
func Inputs(pi *v1alpha1.PoolImage, src Source, opts Options) (*Resolved, error) {
	poolName := pi.Spec.MachineConfigPool.Name
	pool, err := src.Pool(poolName)
	if err != nil {
		return nil, fmt.Errorf("get MachineConfigPool %s: %w", poolName, err)
	}
	if pool == nil {
		return nil, PoolNotFound(poolName)
	}
	cc, err := src.ControllerConfig()
	if err != nil {
		return nil, fmt.Errorf("get ControllerConfig %s: %w", mco.ControllerConfigName, err)
	}
	in := generator.Inputs{Config: opts.Config, BaseImage: pi.Spec.BaseImage, ExtensionsImage: pi.Spec.ExtensionsImage}
	if cc != nil {
		if in.BaseImage == "" {
			in.BaseImage = cc.Spec.BaseOSContainerImage
		}
		if in.ExtensionsImage == "" && pi.Spec.BaseImage == "" {
			// The release's extensions image belongs with the release's base image only.
			in.ExtensionsImage = cc.Spec.BaseOSExtensionsContainerImage
		}
		if p := cc.Spec.Proxy; p != nil {
			in.Proxy = generator.Proxy{HTTPProxy: p.HTTPProxy, HTTPSProxy: p.HTTPSProxy, NoProxy: p.NoProxy}
		}
	}
	switch {
	case in.BaseImage == "" && cc == nil:
		return nil, errorf("ControllerConfig %s not found, so the release's base OS image is unknown: run on an OpenShift cluster or set spec.baseImage", mco.ControllerConfigName)
	case in.BaseImage == "":
		return nil, errorf("ControllerConfig %s has no spec.baseOSContainerImage: wait for the MCO to render it, or set spec.baseImage", mco.ControllerConfigName)
	}

	if err := checkPool(pi, pool, src); err != nil {
		return nil, err
	}
	if in.Arch, err = poolArch(pool, src, opts.Selectors); err != nil {
		return nil, err
	}

	// Secrets the build mounts: they must exist and have the right type.
	dockerConfig := func(field string, ref *v1alpha1.SecretReference) error {
		if ref == nil {
			return nil
		}
		s, err := secret(pi, src, ref.Name, field)
		if err != nil {
			return err
		}
		if s.Type != corev1.SecretTypeDockerConfigJson {
			return errorf("Secret %s/%s (%s) is of type %s: it must be of type %s; recreate it with `oc create secret docker-registry` or `--from-file=.dockerconfigjson=...`",
				pi.Namespace, ref.Name, field, s.Type, corev1.SecretTypeDockerConfigJson)
		}
		return nil
	}
	if err := dockerConfig("spec.pushSecret", pi.Spec.PushSecret); err != nil {
		return nil, err
	}
	if err := dockerConfig("spec.baseImagePullSecret", pi.Spec.BaseImagePullSecret); err != nil {
		return nil, err
	}
	if o := pi.Spec.Pipeline; o != nil && o.ProxySecret != nil {
		if _, err := secret(pi, src, o.ProxySecret.Name, "spec.pipeline.proxySecret"); err != nil {
			return nil, err
		}
	}
	if pi.Spec.BaseImagePullSecret == nil && opts.DefaultPullSecret != "" {
		s, err := src.Secret(opts.DefaultPullSecret)
		if err != nil {
			return nil, fieldError("Secret "+opts.DefaultPullSecret, err)
		}
		if s != nil {
			origin := opts.DefaultPullSecretOrigin
			if origin == "" {
				origin = "the default pull secret"
			}
			if err := dockerConfig(origin, &v1alpha1.SecretReference{Name: opts.DefaultPullSecret}); err != nil {
				return nil, err
			}
			in.DefaultPullSecret = opts.DefaultPullSecret
		}
	}
	if e := pi.Spec.Entitlements; e != nil {
		for _, s := range []struct {
			field string
			ref   *v1alpha1.SecretReference
		}{{"spec.entitlements.secret", e.Secret}, {"spec.entitlements.activationKey", e.ActivationKey}, {"spec.entitlements.rpmGPG", e.RPMGPG}} {
			if s.ref != nil {
				if _, err := secret(pi, src, s.ref.Name, s.field); err != nil {
					return nil, err
				}
			}
		}
		if e.YumRepos != nil {
			cm, err := configMap(pi, src, e.YumRepos.Name, "spec.entitlements.yumRepos")
			if err != nil {
				return nil, err
			}
			in.YumReposSHA256 = ConfigMapSHA256(cm)
		}
	}
	if pi.Spec.Entitlements == nil || pi.Spec.Entitlements.Secret == nil {
		s, err := src.Secret(v1alpha1.DefaultEntitlementSecretName)
		if err != nil {
			return nil, fieldError("Secret "+v1alpha1.DefaultEntitlementSecretName, err)
		}
		in.DefaultEntitlementSecret = s != nil
	}
	cm, err := src.ConfigMap(TrustedCAConfigMapName)
	if err != nil {
		return nil, fmt.Errorf("get ConfigMap %s/%s: %w", pi.Namespace, TrustedCAConfigMapName, err)
	}
	if cm != nil {
		if bundle := cm.Data[trustedCAKey]; strings.TrimSpace(bundle) != "" {
			in.TrustedCA = &generator.TrustedCA{ConfigMapName: cm.Name, Key: trustedCAKey,
				SHA256: generator.ContentSHA256(map[string]string{trustedCAKey: bundle})}
		}
	}
	return &Resolved{Pool: pool, Inputs: in}, nil
}

// poolArch returns the architecture of the pool's nodes: the kubernetes.io/arch label of the
// nodes the MCO manages in the pool (a node that a custom pool also selects belongs to the
// custom pool, whatever labels it keeps), or, for a pool without nodes yet, that of the
// cluster's nodes; amd64 when there are none.
func poolArch(pool *mcfgv1.MachineConfigPool, src Source, memo *mco.Selectors) (v1alpha1.Arch, error) {
	if pool.Spec.NodeSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(pool.Spec.NodeSelector); err != nil {
			return "", errorf("MachineConfigPool %s has an invalid spec.nodeSelector: %v", pool.Name, err)
		}
	}
	all, err := src.Nodes()
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	pools, err := src.Pools()
	if err != nil {
		return "", fmt.Errorf("list MachineConfigPools: %w", err)
	}
	nodes := mco.NodesOf(memo, pool, all, pools)
	if len(nodes) == 0 {
		nodes = all
	}
	arches := map[string]bool{}
	for _, n := range nodes {
		if a := n.Labels[corev1.LabelArchStable]; a != "" {
			arches[a] = true
		}
	}
	switch len(arches) {
	case 0:
		return v1alpha1.ArchAMD64, nil
	case 1:
		for a := range arches {
			return v1alpha1.Arch(a), nil
		}
	}
	list := make([]string, 0, len(arches))
	for a := range arches {
		list = append(list, a)
	}
	sort.Strings(list)
	return "", errorf("MachineConfigPool %s has nodes of several architectures (%s): split it into one custom pool per architecture (each selecting the pool's MachineConfigs, with a nodeSelector on kubernetes.io/arch), each with its own PoolImage", pool.Name, strings.Join(list, ", "))
}

// checkPool refuses a pool the controller cannot give an image through a MachineConfig: one on
// an OS image stream (the MCO refuses osImageURL for it), and, with a pinned base image and no
// extensions image, one whose MachineConfigs install extensions or another kernel (the MCO
// would install them from the release's extensions image, built for another base).
func checkPool(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, src Source) error {
	if s := pool.Spec.OSImageStream.Name; s != "" {
		return errorf("MachineConfigPool %s takes its OS image from the OS image stream %s (spec.osImageStream), and the MCO refuses a MachineConfig osImageURL for such a pool (\"cannot override MachineConfig osImageURL and set MachineConfigPool spec.osImageStream.name simultaneously\"): remove spec.osImageStream from the pool to layer its image", pool.Name, s)
	}
	if pi.Spec.BaseImage == "" || pi.Spec.ExtensionsImage != "" || pool.Spec.Configuration.Name == "" {
		return nil
	}
	rendered, err := src.MachineConfig(pool.Spec.Configuration.Name)
	if err != nil || rendered == nil {
		return nil // not rendered yet: nothing to check
	}
	if len(rendered.Spec.Extensions) > 0 || (rendered.Spec.KernelType != "" && rendered.Spec.KernelType != "default") {
		return errorf("spec.baseImage pins the base image, and MachineConfigPool %s installs extensions (%s) or kernelType %q, which the MCO installs from baseOSExtensionsContainerImage: set spec.extensionsImage to the extensions image of the release that base image comes from (oc adm release info --image-for=rhel-coreos-extensions <release>)",
			pool.Name, strings.Join(rendered.Spec.Extensions, ", "), rendered.Spec.KernelType)
	}
	return nil
}

// secret returns a Secret the PoolImage names in field; not found is an *Error naming the field.
func secret(pi *v1alpha1.PoolImage, src Source, name, field string) (*corev1.Secret, error) {
	s, err := src.Secret(name)
	if err != nil {
		return nil, fieldError(field, err)
	}
	if s == nil {
		return nil, errorf("Secret %s/%s (%s) not found: create it in the PoolImage's namespace, or fix %s", pi.Namespace, name, field, field)
	}
	return s, nil
}

// configMap returns a ConfigMap the PoolImage names in field; not found is an *Error naming it.
func configMap(pi *v1alpha1.PoolImage, src Source, name, field string) (*corev1.ConfigMap, error) {
	cm, err := src.ConfigMap(name)
	if err != nil {
		return nil, fmt.Errorf("get ConfigMap %s/%s: %w", pi.Namespace, name, err)
	}
	if cm == nil {
		return nil, errorf("ConfigMap %s/%s (%s) not found: create it in the PoolImage's namespace, or fix %s", pi.Namespace, name, field, field)
	}
	return cm, nil
}

// ConfigMapSHA256 hashes a ConfigMap's data and binary data (generator.Inputs.YumReposSHA256).
func ConfigMapSHA256(cm *corev1.ConfigMap) string {
	data := make(map[string]string, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = v
	}
	for k, v := range cm.BinaryData {
		data["binary:"+k] = string(v)
	}
	return generator.ContentSHA256(data)
}
