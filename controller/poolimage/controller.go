package poolimage

import (
	"context"
	"maps"
	"slices"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	configclient "github.com/openshift/client-go/config/clientset/versioned"
	mcolisters "github.com/openshift/client-go/machineconfiguration/listers/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/injection/client"
	pipelineruninformer "github.com/tektoncd/pipeline/pkg/client/injection/informers/pipeline/v1/pipelinerun"
	taskruninformer "github.com/tektoncd/pipeline/pkg/client/injection/informers/pipeline/v1/taskrun"
	"go.opentelemetry.io/otel"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	kubeclient "knative.dev/pkg/client/injection/kube/client"
	configmapinformer "knative.dev/pkg/client/injection/kube/informers/core/v1/configmap"
	nodeinformer "knative.dev/pkg/client/injection/kube/informers/core/v1/node"
	"knative.dev/pkg/configmap"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/injection"
	"knative.dev/pkg/logging"
	pkgreconciler "knative.dev/pkg/reconciler"
	"knative.dev/pkg/system"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/metrics"
	"github.com/ocl-pipelines/ocl-pipelines/controller/secrets"
	"github.com/ocl-pipelines/ocl-pipelines/controller/uninstall"
	"github.com/ocl-pipelines/ocl-pipelines/controller/upgrade"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	layeringinjection "github.com/ocl-pipelines/ocl-pipelines/pkg/client/injection/client"
	poolimageinformer "github.com/ocl-pipelines/ocl-pipelines/pkg/client/injection/informers/layering/v1alpha1/poolimage"
	poolimagereconciler "github.com/ocl-pipelines/ocl-pipelines/pkg/client/injection/reconciler/layering/v1alpha1/poolimage"
	mcoclient "github.com/ocl-pipelines/ocl-pipelines/pkg/client/mco/injection/client"
	controllerconfiginformer "github.com/ocl-pipelines/ocl-pipelines/pkg/client/mco/injection/informers/machineconfiguration/v1/controllerconfig"
	machineconfiginformer "github.com/ocl-pipelines/ocl-pipelines/pkg/client/mco/injection/informers/machineconfiguration/v1/machineconfig"
	machineconfigpoolinformer "github.com/ocl-pipelines/ocl-pipelines/pkg/client/mco/injection/informers/machineconfiguration/v1/machineconfigpool"
)

// ControllerName is the name of the controller, its agent in events and its leader-election bucket.
const ControllerName = "ocl-pipelines-controller"

// NewController wires the PoolImage reconciler to its informers: PoolImages; the PipelineRuns
// and MachineConfigs it creates (found by label and annotation, never by owner reference);
// and, through the tracker, every MachineConfigPool, ControllerConfig, Node, Secret and
// ConfigMap a PoolImage depends on. config-ocl-pipelines is watched live.
func NewController(ctx context.Context, cmw configmap.Watcher) *controller.Impl {
	logger := logging.FromContext(ctx)
	poolImageInformer := poolimageinformer.Get(ctx)
	pipelineRunInformer := pipelineruninformer.Get(ctx)
	taskRunInformer := taskruninformer.Get(ctx)
	poolInformer := machineconfigpoolinformer.Get(ctx)
	machineConfigInformer := machineconfiginformer.Get(ctx)
	controllerConfigInformer := controllerconfiginformer.Get(ctx)
	configMapInformer := configmapinformer.Get(ctx)
	nodeInformer := nodeinformer.Get(ctx)

	must := func(_ cache.ResourceEventHandlerRegistration, err error) {
		if err != nil {
			logger.Fatalw("register informer event handler", "error", err)
		}
	}
	for _, inf := range []cache.SharedIndexInformer{pipelineRunInformer.Informer(), taskRunInformer.Informer()} {
		if err := inf.SetTransform(TrimForCache); err != nil {
			logger.Fatalw("set the run informers' transform", "error", err)
		}
	}
	if err := pipelineRunInformer.Informer().AddIndexers(cache.Indexers{ByPoolIndex: RunsByPool}); err != nil {
		logger.Fatalw("add PipelineRun index", "error", err)
	}
	if err := poolImageInformer.Informer().AddIndexers(cache.Indexers{ByPoolIndex: PoolImagesByPool}); err != nil {
		logger.Fatalw("add PoolImage index", "error", err)
	}
	r := &Reconciler{
		PipelineClient:         tektonclient.Get(ctx),
		PoolImageClient:        layeringinjection.Get(ctx),
		MCOClient:              mcoclient.Get(ctx),
		PipelineRunIndexer:     pipelineRunInformer.Informer().GetIndexer(),
		PoolImageIndexer:       poolImageInformer.Informer().GetIndexer(),
		TaskRunLister:          taskRunInformer.Lister(),
		PoolLister:             poolInformer.Lister(),
		MachineConfigLister:    machineConfigInformer.Lister(),
		ControllerConfigLister: controllerConfigInformer.Lister(),
		ConfigMapLister:        configMapInformer.Lister(),
		NodeLister:             nodeInformer.Lister(),
		Clock:                  clock.RealClock{},
	}
	store := config.NewStore(logger.Named("config-store"))
	store.WatchConfigs(cmw)

	impl := poolimagereconciler.NewImpl(ctx, r, func(impl *controller.Impl) controller.Options {
		return controller.Options{AgentName: ControllerName, ConfigStore: store,
			// A new leader reconciles every PoolImage (the generated reconciler enqueues them),
			// and the ones that are gone but left a hold, a MachineConfig or runs behind: their
			// deletion may have been seen by the leader before it, or by nobody.
			PromoteFunc: func(pkgreconciler.Bucket) {
				for _, key := range namedPoolImages(poolInformer.Lister(), machineConfigInformer.Lister(), pipelineRunInformer.Informer().GetIndexer()) {
					impl.EnqueueKey(key)
				}
			}}
	})
	r.Tracker = impl.Tracker
	// Secrets are read per namespace, with a RoleBinding there: no cluster-wide Secret access.
	secretSet := secrets.New(ctx, kubeclient.Get(ctx), secrets.Options{
		ServiceAccount: system.Namespace() + "/" + ControllerName,
		OnChange:       controller.EnsureTypeMeta(impl.Tracker.OnChanged, corev1.SchemeGroupVersion.WithKind("Secret")),
	})
	r.Secrets = secretSet
	// The one Secret read outside the PoolImages' namespaces: the cluster's global pull secret,
	// for the registries new nodes can pull from (FirstBootPullable). Its credentials are
	// dropped on arrival; a change re-checks every PoolImage.
	pullSecret, err := secrets.NewPullSecretHosts(ctx, kubeclient.Get(ctx), secrets.GlobalPullSecretNamespace, secrets.GlobalPullSecretName,
		func(interface{}) { impl.GlobalResync(poolImageInformer.Informer()) })
	if err != nil {
		logger.Fatalw("watch the global pull secret", "error", err)
	}
	r.PullSecret = pullSecret
	// The release the cluster is about to upgrade to (ClusterVersion), read with the global pull
	// secret: each pool's image is built for it before the upgrade starts. A cluster without the
	// ClusterVersion API (not OpenShift) has no releases to build ahead for.
	if upgrade.Available(kubeclient.Get(ctx).Discovery()) {
		releases, err := upgrade.New(ctx, configclient.NewForConfigOrDie(injection.GetConfig(ctx)), kubeclient.Get(ctx), upgrade.Options{
			PullSecretNamespace: secrets.GlobalPullSecretNamespace, PullSecretName: secrets.GlobalPullSecretName,
			OnChange: func() { impl.GlobalResync(poolImageInformer.Informer()) },
		})
		if err != nil {
			logger.Fatalw("watch ClusterVersion", "error", err)
		}
		r.Releases = releases
	} else {
		logger.Info("no config.openshift.io/v1 ClusterVersion API: images are built for the cluster's current release only (no prebuilds)")
	}
	r.EnqueueAfter = impl.EnqueueAfter
	// The uninstall guard (package uninstall): every pause is written under it.
	meta := metadata.NewForConfigOrDie(injection.GetConfig(ctx))
	guard := NewGuard(kubeclient.Get(ctx), r.MCOClient, system.Namespace())
	guard.Stop = uninstall.StopFrom(ctx) // cmd/controller's release of the holds at an uninstall
	r.Guard = guard
	r.Uninstalling = func(ctx context.Context) (bool, string, error) {
		return uninstall.Uninstalling(ctx, meta, Identity(system.Namespace()))
	}
	deletions := &Deletions{}
	r.SawDeletion, r.ForgetDeletion = deletions.Saw, deletions.Forget
	// sharedmain sets the global MeterProvider (config-observability) before it calls us.
	rec, err := metrics.New(otel.GetMeterProvider(), metrics.Source{
		PoolImages:  func() ([]*v1alpha1.PoolImage, error) { return poolImageInformer.Lister().List(labels.Everything()) },
		LastSuccess: r.lastSuccess,
	})
	if err != nil {
		logger.Fatalw("create metrics", "error", err)
	}
	r.Metrics = rec

	// A terminating PoolImage is never reconciled (no FinalizeKind): one that still carries an
	// earlier version's finalizer gets it removed here, by any replica (the patch is conditional
	// on its resourceVersion), or it would wait for good.
	legacy := func(obj interface{}) {
		if pi, ok := obj.(*v1alpha1.PoolImage); ok && pi.DeletionTimestamp != nil && slices.Contains(pi.Finalizers, LegacyFinalizer) {
			if err := r.dropLegacyFinalizer(ctx, pi); err != nil {
				logger.Warnw("remove an earlier version's finalizer", "poolImage", pi.Namespace+"/"+pi.Name, "error", err)
			}
		}
	}
	must(poolImageInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { legacy(obj); impl.Enqueue(obj) },
		UpdateFunc: controller.PassNew(func(obj interface{}) { legacy(obj); impl.Enqueue(obj) }),
		// A deleted PoolImage may free its pool for another that claims it.
		DeleteFunc: func(obj interface{}) {
			deletions.Add(obj) // every replica records it: a standby that takes over knows it too
			impl.Enqueue(obj)
			enqueueClaimants(r, impl, obj)
			stopUnusedSecrets(poolImageInformer.Informer().GetIndexer(), secretSet, obj)
		},
	}))
	managed := func(obj interface{}) bool {
		o, ok := obj.(interface{ GetLabels() map[string]string })
		return ok && o.GetLabels()["app.kubernetes.io/managed-by"] == layering.ManagedByValue
	}
	// Runs carry the PoolImage's name in an annotation (labels may be shortened).
	must(pipelineRunInformer.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: managed,
		Handler:    controller.HandleAll(enqueueByAnnotations(impl, "", layering.PoolImageLabel)),
	}))
	must(machineConfigInformer.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: managed,
		Handler: controller.HandleAll(enqueueByAnnotations(impl,
			layering.MachineConfigPoolImageNamespaceAnnotation, layering.MachineConfigPoolImageNameAnnotation)),
	}))
	// A new pool may select an existing PoolImage's MachineConfig (a custom pool of the worker
	// MachineConfigs): every PoolImage checks the pools its image reaches again.
	must(poolInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(interface{}) { impl.GlobalResync(poolImageInformer.Informer()) },
	}))
	// A pool names the PoolImage that holds it: a hold of a PoolImage deleted while the
	// controller was down is found (and released) when the pools are listed at start.
	must(poolInformer.Informer().AddEventHandler(controller.HandleAll(func(obj interface{}) {
		if p, ok := obj.(*mcfgv1.MachineConfigPool); ok {
			if ns, name, ok := strings.Cut(p.Annotations[layering.PausedByAnnotation], "/"); ok {
				impl.EnqueueKey(types.NamespacedName{Namespace: ns, Name: name})
			}
		}
	})))
	for gvk, inf := range map[string]cache.SharedIndexInformer{
		"MachineConfigPool": poolInformer.Informer(),
		"ControllerConfig":  controllerConfigInformer.Informer(),
	} {
		must(inf.AddEventHandler(controller.HandleAll(
			controller.EnsureTypeMeta(impl.Tracker.OnChanged, mcfgv1.GroupVersion.WithKind(gvk)))))
	}
	// Nodes: one that joins, leaves or is relabelled may change which pool it belongs to and so
	// the architecture a pool's image must be built for, or boot an image of another
	// architecture: every PoolImage checks its pools again. (The tracker keeps one selector per
	// PoolImage and kind, and a PoolImage's image reaches several pools.) Status updates of
	// nodes, the frequent ones, change no label and enqueue nothing.
	must(nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(interface{}) { impl.GlobalResync(poolImageInformer.Informer()) },
		UpdateFunc: func(old, new interface{}) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := new.(*corev1.Node)
			if !ok1 || !ok2 || !maps.Equal(o.Labels, n.Labels) {
				impl.GlobalResync(poolImageInformer.Informer())
			}
		},
		DeleteFunc: func(interface{}) { impl.GlobalResync(poolImageInformer.Informer()) },
	}))
	for kind, inf := range map[string]cache.SharedIndexInformer{
		"ConfigMap": configMapInformer.Informer(),
	} {
		must(inf.AddEventHandler(controller.HandleAll(
			controller.EnsureTypeMeta(impl.Tracker.OnChanged, corev1.SchemeGroupVersion.WithKind(kind)))))
	}
	return impl
}

// namedPoolImages returns the PoolImages that pools (paused-by), MachineConfigs and runs name
// in their annotations, each once.
func namedPoolImages(pools mcolisters.MachineConfigPoolLister, mcs mcolisters.MachineConfigLister, runs cache.Indexer) []types.NamespacedName {
	seen := map[types.NamespacedName]bool{}
	var out []types.NamespacedName
	add := func(ns, name string) {
		if k := (types.NamespacedName{Namespace: ns, Name: name}); ns != "" && name != "" && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if ps, err := pools.List(labels.Everything()); err == nil {
		for _, p := range ps {
			ns, name, _ := strings.Cut(p.Annotations[layering.PausedByAnnotation], "/")
			add(ns, name)
		}
	}
	if ms, err := mcs.List(labels.Everything()); err == nil {
		for _, mc := range ms {
			add(mc.Annotations[layering.MachineConfigPoolImageNamespaceAnnotation], mc.Annotations[layering.MachineConfigPoolImageNameAnnotation])
		}
	}
	for _, o := range runs.List() {
		if pr, ok := o.(*tektonv1.PipelineRun); ok {
			add(pr.Namespace, pr.Annotations[layering.PoolImageLabel])
		}
	}
	return out
}

// enqueueByAnnotations enqueues the PoolImage an object names in its annotations; an empty
// namespace annotation means the object's own namespace.
func enqueueByAnnotations(impl *controller.Impl, nsAnnotation, nameAnnotation string) func(obj interface{}) {
	return func(obj interface{}) {
		o, ok := obj.(interface {
			GetAnnotations() map[string]string
			GetNamespace() string
		})
		if !ok {
			return
		}
		name := o.GetAnnotations()[nameAnnotation]
		ns := o.GetNamespace()
		if nsAnnotation != "" {
			ns = o.GetAnnotations()[nsAnnotation]
		}
		if name != "" && ns != "" {
			impl.EnqueueKey(types.NamespacedName{Namespace: ns, Name: name})
		}
	}
}

// enqueueClaimants enqueues the PoolImages that claim the same pool as a deleted one.
func enqueueClaimants(r *Reconciler, impl *controller.Impl, obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	deleted, ok := obj.(*v1alpha1.PoolImage)
	if !ok {
		return
	}
	all, err := r.PoolImageIndexer.ByIndex(ByPoolIndex, deleted.Spec.MachineConfigPool.Name)
	if err != nil {
		return
	}
	for _, obj := range all {
		if pi, ok := obj.(*v1alpha1.PoolImage); ok && pi.UID != deleted.UID {
			impl.Enqueue(pi)
		}
	}
}

// stopUnusedSecrets stops the Secret informer of a deleted PoolImage's namespace when no
// PoolImage is left there.
func stopUnusedSecrets(indexer cache.Indexer, set *secrets.Set, obj interface{}) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	deleted, ok := obj.(*v1alpha1.PoolImage)
	if !ok {
		return
	}
	left, err := indexer.ByIndex(cache.NamespaceIndex, deleted.Namespace)
	if err == nil && len(left) == 0 {
		set.Stop(deleted.Namespace)
	}
}
