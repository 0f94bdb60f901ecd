package poolimage

import (
	"context"
	"errors"
	"fmt"
	"sort"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/tracker"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/secrets"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/mco"
)

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
	// pipeline is the Pipeline whose spec run embeds and whose name it carries
	// (generator.RenderPipeline), which the dashboard lists the run under.
	pipeline *tektonv1.Pipeline
	// digest is generator.SpecDigest of run's spec: runs with another spec are not trusted.
	digest string
}

// resolve reads the pool, the ControllerConfig, the nodes and the referenced Secrets and
// ConfigMaps from the listers (tracking each, so a change re-enqueues the PoolImage), and
// computes the build's inputs (facts.Inputs) and their hash. An *inputError says what the
// admin must fix.
func (r *Reconciler) resolve(ctx context.Context, pi *v1alpha1.PoolImage) (*resolved, error) {
	cfg := config.FromContextOrDefaults(ctx)
	poolName := pi.Spec.MachineConfigPool.Name
	src := &listerSource{ctx: ctx, r: r, pi: pi}
	// The pool first, then the claim: a missing pool is the first thing to fix.
	if pool, err := src.Pool(poolName); err != nil {
		return nil, fmt.Errorf("get MachineConfigPool %s: %w", poolName, err)
	} else if pool == nil {
		return nil, asInput(facts.PoolNotFound(poolName))
	}
	if other, err := r.claimant(pi); err != nil {
		return nil, err
	} else if other != nil {
		return nil, &inputError{msg: fmt.Sprintf("MachineConfigPool %q is already claimed by PoolImage %s/%s (the older one wins): delete one of them",
			poolName, other.Namespace, other.Name), lostClaim: true}
	}
	// The trust bundle's ConfigMap is optional: tracked so that creating it re-enqueues.
	if err := r.track(pi, corev1.SchemeGroupVersion.WithKind("ConfigMap"), pi.Namespace, facts.TrustedCAConfigMapName); err != nil {
		return nil, err
	}
	found, err := facts.Inputs(pi, src, facts.Options{Config: cfg.Generator, DefaultPullSecret: cfg.DefaultPullSecret,
		DefaultPullSecretOrigin: "the default pull secret of " + config.Name, Selectors: &r.selectors})
	if err != nil {
		return nil, asInput(err)
	}
	return r.render(pi, res(found.Pool, found.Inputs, nil))
}

// asInput turns a *facts.Error into an *inputError; other errors are returned as they are.
func asInput(err error) error {
	var fe *facts.Error
	if errors.As(err, &fe) {
		return &inputError{msg: fe.Msg}
	}
	return err
}

// listerSource answers facts.Inputs from the reconciler's listers, tracking the objects a
// PoolImage names so that their change re-enqueues it.
type listerSource struct {
	ctx context.Context
	r   *Reconciler
	pi  *v1alpha1.PoolImage
}

var _ facts.Source = (*listerSource)(nil)

// notFound turns a lister's NotFound into the Source's nil object.
func notFound[T any](obj *T, err error) (*T, error) {
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return obj, err
}

// Pool implements facts.Source.
func (s *listerSource) Pool(name string) (*mcfgv1.MachineConfigPool, error) {
	// The pools its MachineConfig reaches are tracked by holdTargets, and a new pool (which may
	// select it) re-enqueues every PoolImage (NewController).
	if err := s.r.track(s.pi, mcfgv1.GroupVersion.WithKind("MachineConfigPool"), "", name); err != nil {
		return nil, err
	}
	return notFound(s.r.PoolLister.Get(name))
}

// Pools implements facts.Source.
func (s *listerSource) Pools() ([]*mcfgv1.MachineConfigPool, error) {
	return s.r.PoolLister.List(labels.Everything())
}

// ControllerConfig implements facts.Source.
func (s *listerSource) ControllerConfig() (*mcfgv1.ControllerConfig, error) {
	if err := s.r.track(s.pi, mcfgv1.GroupVersion.WithKind("ControllerConfig"), "", mco.ControllerConfigName); err != nil {
		return nil, err
	}
	return notFound(s.r.ControllerConfigLister.Get(mco.ControllerConfigName))
}

// Nodes implements facts.Source.
func (s *listerSource) Nodes() ([]*corev1.Node, error) {
	return s.r.NodeLister.List(labels.Everything())
}

// MachineConfig implements facts.Source.
func (s *listerSource) MachineConfig(name string) (*mcfgv1.MachineConfig, error) {
	return notFound(s.r.MachineConfigLister.Get(name))
}

// Secret implements facts.Source. A namespace the controller may not read is a *facts.Error
// with the RoleBinding that fixes it.
func (s *listerSource) Secret(name string) (*corev1.Secret, error) {
	if err := s.r.track(s.pi, corev1.SchemeGroupVersion.WithKind("Secret"), s.pi.Namespace, name); err != nil {
		return nil, err
	}
	l, err := s.r.Secrets.Lister(s.ctx, s.pi.Namespace)
	var forbidden *secrets.ForbiddenError
	if errors.As(err, &forbidden) {
		return nil, &facts.Error{Msg: forbidden.Error()}
	}
	if err != nil {
		return nil, fmt.Errorf("read the Secrets of namespace %s: %w", s.pi.Namespace, err)
	}
	sec, err := notFound(l.Get(name))
	if err != nil {
		return nil, fmt.Errorf("get Secret %s/%s: %w", s.pi.Namespace, name, err)
	}
	return sec, nil
}

// ConfigMap implements facts.Source.
func (s *listerSource) ConfigMap(name string) (*corev1.ConfigMap, error) {
	if err := s.r.track(s.pi, corev1.SchemeGroupVersion.WithKind("ConfigMap"), s.pi.Namespace, name); err != nil {
		return nil, err
	}
	return notFound(s.r.ConfigMapLister.ConfigMaps(s.pi.Namespace).Get(name))
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
	pl, err := generator.RenderPipeline(pi, res.inputs)
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
	res.pipeline = pl
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
