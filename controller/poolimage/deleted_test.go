package poolimage

import (
	"context"
	"slices"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcofake "github.com/openshift/client-go/machineconfiguration/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/ocl-pipelines/ocl-pipelines/controller/uninstall"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
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
			mco := mcofake.NewSimpleClientset(heldPool("base", "rendered-1"), admin)
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

			if err := ReleaseOnUninstall(ctx, meta, mco, kube, system); err != nil {
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
