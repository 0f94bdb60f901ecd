package poolimage

import (
	"context"
	"slices"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcofake "github.com/openshift/client-go/machineconfiguration/clientset/versioned/fake"
	mcolisters "github.com/openshift/client-go/machineconfiguration/listers/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/ocl-pipelines/ocl-pipelines/controller/uninstall"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
)

// ReleaseOnUninstall, the pods' last act: during an uninstall it unpauses the pools the
// controller holds (not one an admin paused), records a Warning on each, and removes the
// ServiceAccount's guard finalizer; on a stop that is no uninstall (a rollout) it changes nothing.
func TestReleaseOnUninstall(t *testing.T) {
	const system = "ocl-pipelines"
	id := Identity(system)
	for _, uninstalling := range []bool{false, true} {
		t.Run(map[bool]string{false: "a rollout", true: "an uninstall"}[uninstalling], func(t *testing.T) {
			ctx := context.Background()
			now := metav1.Now()
			admin := pool(func(p *mcfgv1.MachineConfigPool) {
				p.Name, p.Spec.Paused = "infra", true
				p.ManagedFields = []metav1.ManagedFieldsEntry{pausedFields("kubectl-patch")}
				p.Annotations = map[string]string{layering.PausedByAnnotation: ns + "/other"}
			})
			mco := mcofake.NewClientset(heldPool("base", "rendered-1"), admin)
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: system, Name: id.ServiceAccount, Finalizers: []string{uninstall.Finalizer}}}
			kube := kubefake.NewClientset(sa)

			scheme := runtime.NewScheme()
			objs := []runtime.Object{}
			for gvr, o := range map[schema.GroupVersionResource]*metav1.PartialObjectMetadata{
				{Version: "v1", Resource: "namespaces"}:                                               {TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: system}},
				{Version: "v1", Resource: "serviceaccounts"}:                                          {TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: metav1.ObjectMeta{Namespace: system, Name: id.ServiceAccount}},
				{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}: {TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"}, ObjectMeta: metav1.ObjectMeta{Name: id.CRD}},
			} {
				scheme.AddKnownTypeWithName(gvr.GroupVersion().WithKind(o.Kind), &metav1.PartialObjectMetadata{})
				scheme.AddKnownTypeWithName(gvr.GroupVersion().WithKind(o.Kind+"List"), &metav1.PartialObjectMetadataList{})
				if uninstalling && o.Kind == "Namespace" {
					o.DeletionTimestamp = &now
				}
				objs = append(objs, o)
			}
			meta := metadatafake.NewSimpleMetadataClient(scheme, objs...)

			if err := ReleaseOnUninstall(ctx, meta, mco, kube, system, nil); err != nil {
				t.Fatal(err)
			}
			worker, _ := mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "worker", metav1.GetOptions{})
			infra, _ := mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "infra", metav1.GetOptions{})
			gotSA, _ := kube.CoreV1().ServiceAccounts(system).Get(ctx, id.ServiceAccount, metav1.GetOptions{})
			events, _ := kube.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
			if !infra.Spec.Paused {
				t.Error("unpaused pool infra, which an admin paused")
			}
			if uninstalling {
				if worker.Spec.Paused || worker.Annotations[layering.PausedByAnnotation] != "" {
					t.Errorf("pool worker after an uninstall: paused %v, annotations %v; want released", worker.Spec.Paused, worker.Annotations)
				}
				if slices.Contains(gotSA.Finalizers, uninstall.Finalizer) {
					t.Errorf("the ServiceAccount keeps %s after the last hold ended", uninstall.Finalizer)
				}
				if len(events.Items) != 1 || events.Items[0].Type != corev1.EventTypeWarning || events.Items[0].InvolvedObject.Name != "worker" {
					t.Errorf("events %+v, want one Warning on pool worker", events.Items)
				}
				return
			}
			if !worker.Spec.Paused || !slices.Contains(gotSA.Finalizers, uninstall.Finalizer) || len(events.Items) != 0 {
				t.Errorf("a rollout changed the hold: worker paused %v, ServiceAccount finalizers %v, %d events",
					worker.Spec.Paused, gotSA.Finalizers, len(events.Items))
			}
		})
	}
}

// A new leader enqueues the PoolImages that pools, MachineConfigs and runs name, so that the
// deletion of one its predecessor saw but did not finish is handled at once.
func TestNamedPoolImages(t *testing.T) {
	idx := func() cache.Indexer { return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}) }
	pools, mcs, runs := idx(), idx(), idx()
	for _, o := range []struct {
		i   cache.Indexer
		obj interface{}
	}{
		{pools, heldPool("base", "rendered-1")}, // ocl/worker
		{pools, pool(func(p *mcfgv1.MachineConfigPool) { p.Name = "infra" })},
		{mcs, func() *mcfgv1.MachineConfig {
			mc := machineConfig(t, poolImage(func(p *v1alpha1.PoolImage) { p.Namespace, p.Name = "team-a", "gone" }), pushRepo+"@"+digestA, extV1, "h")
			mc.Name = facts.MachineConfigName("infra")
			return mc
		}()},
		{mcs, machineConfig(t, poolImage(), pushRepo+"@"+digestA, extV1, "h")}, // ocl/worker again
		{runs, run(t, poolImage(func(p *v1alpha1.PoolImage) { p.Name = "old" }), inputs(baseV1, extV1), "r1", now, corev1.ConditionTrue)},
	} {
		if err := o.i.Add(o.obj); err != nil {
			t.Fatal(err)
		}
	}
	got := namedPoolImages(mcolisters.NewMachineConfigPoolLister(pools), mcolisters.NewMachineConfigLister(mcs), runs)
	want := []types.NamespacedName{{Namespace: ns, Name: piName}, {Namespace: "team-a", Name: "gone"}, {Namespace: ns, Name: "old"}}
	if !slices.Equal(got, want) {
		t.Errorf("namedPoolImages = %v, want %v", got, want)
	}
}
