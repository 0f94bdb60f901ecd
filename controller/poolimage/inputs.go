package poolimage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corelisters "k8s.io/client-go/listers/core/v1"
	"knative.dev/pkg/tracker"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/secrets"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// ControllerConfigName is the name of the MCO's cluster-wide ControllerConfig.
const ControllerConfigName = "machine-config-controller"

// TrustedCAConfigMapName is the ConfigMap, in a PoolImage's namespace, whose ca-bundle.crt is baked
// into the image and trusted by RUN steps when it exists. On OpenShift, create it empty with the
// label config.openshift.io/inject-trusted-cabundle=true and the cluster fills it in.
const TrustedCAConfigMapName = "trusted-ca"

// inputError is a problem with the PoolImage's inputs that only a change of the cluster or the
// spec can fix: the build does not start and the status says what to do.
type inputError struct {
	msg string
	// lostClaim says another PoolImage owns the pool.
	lostClaim bool
}

// Error implements error.
func (e *inputError) Error() string { return e.msg }

func inputErrorf(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// resolved is everything a reconcile learns about a PoolImage's inputs.
type resolved struct {
	pool   *mcfgv1.MachineConfigPool
	inputs generator.Inputs
	hash   string
	sum    *v1alpha1.BuildInputs
	// annotations are added to a PipelineRun of these inputs (a prebuild's release).
	annotations map[string]string
	// run is the PipelineRun the controller renders for these inputs (named by createRun).
	run *tektonv1.PipelineRun
	// digest is generator.SpecDigest of run's spec: runs with another spec are not trusted.
	digest string
}

// resolve reads the pool, the ControllerConfig, the nodes and the referenced Secrets and
// ConfigMaps from the listers (tracking each, so a change re-enqueues the PoolImage), and
// computes the build's inputs and their hash. An *inputError says what the admin must fix.
func (r *Reconciler) resolve(ctx context.Context, pi *v1alpha1.PoolImage) (*resolved, error) {
	cfg := config.FromContextOrDefaults(ctx)
	poolName := pi.Spec.MachineConfigPool.Name

	// The pool; the pools its MachineConfig reaches are tracked by holdTargets, and a new pool
	// (which may select it) re-enqueues every PoolImage (NewController).
	if err := r.track(pi, mcfgv1.GroupVersion.WithKind("MachineConfigPool"), "", poolName); err != nil {
		return nil, err
	}
	pool, err := r.PoolLister.Get(poolName)
	if apierrors.IsNotFound(err) {
		return nil, inputErrorf("MachineConfigPool %q not found: create it, or fix spec.machineConfigPool.name", poolName)
	} else if err != nil {
		return nil, fmt.Errorf("get MachineConfigPool %s: %w", poolName, err)
	}
	if other, err := r.claimant(pi); err != nil {
		return nil, err
	} else if other != nil {
		return nil, &inputError{msg: fmt.Sprintf("MachineConfigPool %q is already claimed by PoolImage %s/%s (the older one wins): delete one of them",
			poolName, other.Namespace, other.Name), lostClaim: true}
	}

	if err := r.track(pi, mcfgv1.GroupVersion.WithKind("ControllerConfig"), "", ControllerConfigName); err != nil {
		return nil, err
	}
	cc, err := r.ControllerConfigLister.Get(ControllerConfigName)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get ControllerConfig %s: %w", ControllerConfigName, err)
	}
	in := generator.Inputs{Config: cfg.Generator, BaseImage: pi.Spec.BaseImage, ExtensionsImage: pi.Spec.ExtensionsImage}
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
		return nil, inputErrorf("ControllerConfig %s not found, so the release's base OS image is unknown: run on an OpenShift cluster or set spec.baseImage", ControllerConfigName)
	case in.BaseImage == "":
		return nil, inputErrorf("ControllerConfig %s has no spec.baseOSContainerImage: wait for the MCO to render it, or set spec.baseImage", ControllerConfigName)
	}

	if err := r.checkPool(pi, pool); err != nil {
		return nil, err
	}
	arch, err := r.poolArch(pi, pool)
	if err != nil {
		return nil, err
	}
	in.Arch = arch

	// Secrets the build mounts: they must exist and have the right type.
	dockerConfig := func(field string, ref *v1alpha1.SecretReference) error {
		if ref == nil {
			return nil
		}
		s, err := r.secret(ctx, pi, ref.Name, field)
		if err != nil {
			return err
		}
		if s.Type != corev1.SecretTypeDockerConfigJson {
			return inputErrorf("Secret %s/%s (%s) is of type %s: it must be of type %s; recreate it with `oc create secret docker-registry` or `--from-file=.dockerconfigjson=...`",
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
		if _, err := r.secret(ctx, pi, o.ProxySecret.Name, "spec.pipeline.proxySecret"); err != nil {
			return nil, err
		}
	}
	if pi.Spec.BaseImagePullSecret == nil && cfg.DefaultPullSecret != "" {
		if ok, err := r.optionalSecret(ctx, pi, cfg.DefaultPullSecret); err != nil {
			return nil, err
		} else if ok {
			if err := dockerConfig("the default pull secret of "+config.Name, &v1alpha1.SecretReference{Name: cfg.DefaultPullSecret}); err != nil {
				return nil, err
			}
			in.DefaultPullSecret = cfg.DefaultPullSecret
		}
	}
	if e := pi.Spec.Entitlements; e != nil {
		for _, s := range []struct {
			field string
			ref   *v1alpha1.SecretReference
		}{{"spec.entitlements.secret", e.Secret}, {"spec.entitlements.activationKey", e.ActivationKey}, {"spec.entitlements.rpmGPG", e.RPMGPG}} {
			if s.ref != nil {
				if _, err := r.secret(ctx, pi, s.ref.Name, s.field); err != nil {
					return nil, err
				}
			}
		}
		if e.YumRepos != nil {
			cm, err := r.configMap(pi, e.YumRepos.Name, "spec.entitlements.yumRepos")
			if err != nil {
				return nil, err
			}
			in.YumReposSHA256 = configMapSHA256(cm)
		}
	}
	if pi.Spec.Entitlements == nil || pi.Spec.Entitlements.Secret == nil {
		ok, err := r.optionalSecret(ctx, pi, v1alpha1.DefaultEntitlementSecretName)
		if err != nil {
			return nil, err
		}
		in.DefaultEntitlementSecret = ok
	}
	if err := r.track(pi, corev1.SchemeGroupVersion.WithKind("ConfigMap"), pi.Namespace, TrustedCAConfigMapName); err != nil {
		return nil, err
	}
	if cm, err := r.ConfigMapLister.ConfigMaps(pi.Namespace).Get(TrustedCAConfigMapName); err == nil {
		if bundle := cm.Data["ca-bundle.crt"]; strings.TrimSpace(bundle) != "" {
			in.TrustedCA = &generator.TrustedCA{ConfigMapName: cm.Name, Key: "ca-bundle.crt",
				SHA256: generator.ContentSHA256(map[string]string{"ca-bundle.crt": bundle})}
		}
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get ConfigMap %s/%s: %w", pi.Namespace, TrustedCAConfigMapName, err)
	}

	return r.render(pi, res(pool, in, nil))
}

// res is the resolved inputs before render fills in the hash, summary and run.
func res(pool *mcfgv1.MachineConfigPool, in generator.Inputs, annotations map[string]string) *resolved {
	return &resolved{pool: pool, inputs: in, annotations: annotations}
}

// render computes the inputs hash and summary of res.inputs and renders their PipelineRun (named
// RunName; createRun names it) with its spec digest.
func (r *Reconciler) render(pi *v1alpha1.PoolImage, res *resolved) (*resolved, error) {
	pr, err := generator.Render(pi, res.inputs)
	if err != nil {
		return nil, inputErrorf("cannot build with these inputs: %v", flatten(err.Error()))
	}
	sum, err := generator.Summary(pi, res.inputs)
	if err != nil {
		return nil, inputErrorf("cannot build with these inputs: %v", flatten(err.Error()))
	}
	sum.Changed = generator.ChangedInputs(pi.Status.CurrentInputs, sum)
	res.hash = pr.Labels[layering.InputsHashLabel]
	res.sum = sum
	res.run = pr
	res.digest = generator.SpecDigest(&pr.Spec)
	return res, nil
}

// track asks the tracker to re-enqueue pi when the named object changes.
func (r *Reconciler) track(pi *v1alpha1.PoolImage, gvk schema.GroupVersionKind, ns, name string) error {
	ref := tracker.Reference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: ns, Name: name}
	if err := r.Tracker.TrackReference(ref, pi); err != nil {
		return fmt.Errorf("track %s %s/%s: %w", gvk.Kind, ns, name, err)
	}
	return nil
}

// claimant returns the PoolImage that owns pi's pool when it is not pi: the oldest PoolImage
// naming the pool (by creation time, then namespace/name).
func (r *Reconciler) claimant(pi *v1alpha1.PoolImage) (*v1alpha1.PoolImage, error) {
	all, err := r.PoolImageIndexer.ByIndex(ByPoolIndex, pi.Spec.MachineConfigPool.Name)
	if err != nil {
		return nil, fmt.Errorf("list PoolImages of pool %s: %w", pi.Spec.MachineConfigPool.Name, err)
	}
	var claims []*v1alpha1.PoolImage
	for _, obj := range all {
		if o, ok := obj.(*v1alpha1.PoolImage); ok && o.DeletionTimestamp == nil {
			claims = append(claims, o)
		}
	}
	if len(claims) < 2 {
		return nil, nil
	}
	sort.Slice(claims, func(i, j int) bool {
		a, b := claims[i], claims[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	if claims[0].Namespace == pi.Namespace && claims[0].Name == pi.Name {
		return nil, nil
	}
	return claims[0], nil
}

// poolArch returns the architecture of the pool's nodes: the kubernetes.io/arch label of the
// nodes the MCO manages in the pool (a node that a custom pool also selects belongs to the
// custom pool, whatever labels it keeps), or, for a pool without nodes yet, that of the
// cluster's nodes; amd64 when there are none.
func (r *Reconciler) poolArch(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool) (v1alpha1.Arch, error) {
	if pool.Spec.NodeSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(pool.Spec.NodeSelector); err != nil {
			return "", inputErrorf("MachineConfigPool %s has an invalid spec.nodeSelector: %v", pool.Name, err)
		}
	}
	all, err := r.NodeLister.List(labels.Everything())
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	pools, err := r.PoolLister.List(labels.Everything())
	if err != nil {
		return "", fmt.Errorf("list MachineConfigPools: %w", err)
	}
	nodes := nodesOf(&r.selectors, pool, all, pools)
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
	return "", inputErrorf("MachineConfigPool %s has nodes of several architectures (%s): split it into one custom pool per architecture (each selecting the pool's MachineConfigs, with a nodeSelector on kubernetes.io/arch), each with its own PoolImage", pool.Name, strings.Join(list, ", "))
}

// checkPool refuses a pool the controller cannot give an image through a MachineConfig: one on
// an OS image stream (the MCO refuses osImageURL for it), and, with a pinned base image and no
// extensions image, one whose MachineConfigs install extensions or another kernel (the MCO
// would install them from the release's extensions image, built for another base).
func (r *Reconciler) checkPool(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool) error {
	if s := pool.Spec.OSImageStream.Name; s != "" {
		return inputErrorf("MachineConfigPool %s takes its OS image from the OS image stream %s (spec.osImageStream), and the MCO refuses a MachineConfig osImageURL for such a pool (\"cannot override MachineConfig osImageURL and set MachineConfigPool spec.osImageStream.name simultaneously\"): remove spec.osImageStream from the pool to layer its image", pool.Name, s)
	}
	if pi.Spec.BaseImage == "" || pi.Spec.ExtensionsImage != "" || pool.Spec.Configuration.Name == "" {
		return nil
	}
	rendered, err := r.MachineConfigLister.Get(pool.Spec.Configuration.Name)
	if err != nil {
		return nil // not rendered yet: nothing to check
	}
	if len(rendered.Spec.Extensions) > 0 || (rendered.Spec.KernelType != "" && rendered.Spec.KernelType != "default") {
		return inputErrorf("spec.baseImage pins the base image, and MachineConfigPool %s installs extensions (%s) or kernelType %q, which the MCO installs from baseOSExtensionsContainerImage: set spec.extensionsImage to the extensions image of the release that base image comes from (oc adm release info --image-for=rhel-coreos-extensions <release>)",
			pool.Name, strings.Join(rendered.Spec.Extensions, ", "), rendered.Spec.KernelType)
	}
	return nil
}

// secret returns a Secret the PoolImage names (tracking it); NotFound is an inputError naming the field.
func (r *Reconciler) secret(ctx context.Context, pi *v1alpha1.PoolImage, name, field string) (*corev1.Secret, error) {
	if err := r.track(pi, corev1.SchemeGroupVersion.WithKind("Secret"), pi.Namespace, name); err != nil {
		return nil, err
	}
	secrets, err := r.namespaceSecrets(ctx, pi, field)
	if err != nil {
		return nil, err
	}
	s, err := secrets.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, inputErrorf("Secret %s/%s (%s) not found: create it in the PoolImage's namespace, or fix %s", pi.Namespace, name, field, field)
	} else if err != nil {
		return nil, fmt.Errorf("get Secret %s/%s: %w", pi.Namespace, name, err)
	}
	return s, nil
}

// optionalSecret reports whether a Secret exists in the PoolImage's namespace (tracking it).
func (r *Reconciler) optionalSecret(ctx context.Context, pi *v1alpha1.PoolImage, name string) (bool, error) {
	if err := r.track(pi, corev1.SchemeGroupVersion.WithKind("Secret"), pi.Namespace, name); err != nil {
		return false, err
	}
	secrets, err := r.namespaceSecrets(ctx, pi, "Secret "+name)
	if err != nil {
		return false, err
	}
	_, err = secrets.Get(name)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("get Secret %s/%s: %w", pi.Namespace, name, err)
}

// namespaceSecrets returns the Secrets of the PoolImage's namespace. A namespace the controller
// may not read is an inputError with the RoleBinding that fixes it (for reads of field).
func (r *Reconciler) namespaceSecrets(ctx context.Context, pi *v1alpha1.PoolImage, field string) (corelisters.SecretNamespaceLister, error) {
	l, err := r.Secrets.Lister(ctx, pi.Namespace)
	var forbidden *secrets.ForbiddenError
	if errors.As(err, &forbidden) {
		return nil, inputErrorf("%s: %v", field, forbidden)
	}
	if err != nil {
		return nil, fmt.Errorf("read the Secrets of namespace %s: %w", pi.Namespace, err)
	}
	return l, nil
}

// configMap returns a ConfigMap the PoolImage names (tracking it).
func (r *Reconciler) configMap(pi *v1alpha1.PoolImage, name, field string) (*corev1.ConfigMap, error) {
	if err := r.track(pi, corev1.SchemeGroupVersion.WithKind("ConfigMap"), pi.Namespace, name); err != nil {
		return nil, err
	}
	cm, err := r.ConfigMapLister.ConfigMaps(pi.Namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, inputErrorf("ConfigMap %s/%s (%s) not found: create it in the PoolImage's namespace, or fix %s", pi.Namespace, name, field, field)
	} else if err != nil {
		return nil, fmt.Errorf("get ConfigMap %s/%s: %w", pi.Namespace, name, err)
	}
	return cm, nil
}

// configMapSHA256 hashes a ConfigMap's data and binary data.
func configMapSHA256(cm *corev1.ConfigMap) string {
	data := make(map[string]string, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = v
	}
	for k, v := range cm.BinaryData {
		data["binary:"+k] = string(v)
	}
	return generator.ContentSHA256(data)
}
