package uninstall

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
)

var id = Identity{Namespace: "ocl-pipelines", ServiceAccount: "ctl",
	CRD: "poolimages.example.dev", HoldRBAC: "ctl-holds"}

// kube is the controller's namespace and ServiceAccount; the ServiceAccount carries another
// finalizer, which the Guard must keep.
func kube(mutate ...func(metav1.Object)) *kubefake.Clientset {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: id.Namespace, UID: "ns-uid"}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: id.ServiceAccount, Finalizers: []string{"example.dev/other"}}}
	for _, m := range mutate {
		m(ns)
		m(sa)
	}
	return kubefake.NewClientset(ns, sa)
}

func saFinalizers(t *testing.T, g *Guard) []string {
	t.Helper()
	sa, err := g.Kube.CoreV1().ServiceAccounts(id.Namespace).Get(context.Background(), id.ServiceAccount, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sa.Finalizers
}

func TestGuardHoldsWhilePoolsAreHeld(t *testing.T) {
	ctx := context.Background()
	held := false
	g := &Guard{Kube: kube(), ID: id, Held: func(context.Context) (bool, error) { return held, nil }}

	// Before any hold: nothing carries the finalizer, and the Guard has no RBAC.
	if err := g.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if f := saFinalizers(t, g); slices.Contains(f, Finalizer) {
		t.Errorf("ServiceAccount carries %s before any hold", Finalizer)
	}
	if _, err := g.Kube.RbacV1().ClusterRoleBindings().Get(ctx, id.HoldRBAC, metav1.GetOptions{}); err == nil {
		t.Error("the Guard's ClusterRoleBinding exists before any hold")
	}

	paused := false
	if err := g.Hold(ctx, func() error {
		// The pause is written only once the ServiceAccount carries the finalizer and the
		// Guard's RBAC, owned by the namespace, binds the ServiceAccount.
		if !slices.Contains(saFinalizers(t, g), Finalizer) {
			t.Errorf("pause written while the ServiceAccount lacks %s", Finalizer)
		}
		b, err := g.Kube.RbacV1().ClusterRoleBindings().Get(ctx, id.HoldRBAC, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pause written without the Guard's ClusterRoleBinding: %v", err)
		}
		if len(b.OwnerReferences) != 1 || b.OwnerReferences[0].Kind != "Namespace" || b.OwnerReferences[0].UID != "ns-uid" {
			t.Errorf("the Guard's ClusterRoleBinding is owned by %+v, want the controller's Namespace", b.OwnerReferences)
		}
		if len(b.Subjects) != 1 || b.Subjects[0].Name != id.ServiceAccount || b.RoleRef.Name != id.HoldRBAC {
			t.Errorf("the Guard's ClusterRoleBinding binds %+v to %+v", b.Subjects, b.RoleRef)
		}
		r, err := g.Kube.RbacV1().ClusterRoles().Get(ctx, id.HoldRBAC, metav1.GetOptions{})
		if err != nil || !equalRules(r.Rules, id.HoldRules()) {
			t.Errorf("the Guard's ClusterRole: %v, rules %+v", err, r)
		}
		paused, held = true, true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !paused {
		t.Fatal("Hold did not run the pause")
	}
	// A second hold changes nothing (and does not fail on the existing RBAC).
	if err := g.Hold(ctx, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	// A release while a pool is still held keeps the guard.
	if err := g.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(saFinalizers(t, g), Finalizer) {
		t.Errorf("ServiceAccount lost %s while a pool is held", Finalizer)
	}
	// The last hold ends: the finalizer goes, the other one stays.
	held = false
	if err := g.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if f := saFinalizers(t, g); !slices.Equal(f, []string{"example.dev/other"}) {
		t.Errorf("ServiceAccount finalizers = %v after the last hold, want only the other controller's", f)
	}
}

func TestGuardRefusesAHoldDuringAnUninstall(t *testing.T) {
	now := metav1.Now()
	g := &Guard{Kube: kube(func(o metav1.Object) {
		if _, ok := o.(*corev1.ServiceAccount); ok {
			o.SetDeletionTimestamp(&now)
		}
	}), ID: id, Held: func(context.Context) (bool, error) { return false, nil }}
	err := g.Hold(context.Background(), func() error { t.Error("paused during an uninstall"); return nil })
	if !errors.Is(err, ErrUninstalling) {
		t.Fatalf("Hold = %v, want ErrUninstalling", err)
	}
}

// The Guard's RBAC left over from an earlier install (another namespace UID) is adopted, or the
// garbage collector would delete it under the new install.
func TestGuardAdoptsLeftOverRBAC(t *testing.T) {
	ctx := context.Background()
	g := &Guard{Kube: kube(), ID: id, Held: func(context.Context) (bool, error) { return true, nil }}
	if err := g.Hold(ctx, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	for _, set := range []func() error{
		func() error {
			r, _ := g.Kube.RbacV1().ClusterRoles().Get(ctx, id.HoldRBAC, metav1.GetOptions{})
			r.OwnerReferences[0].UID = "old-ns-uid"
			_, err := g.Kube.RbacV1().ClusterRoles().Update(ctx, r, metav1.UpdateOptions{})
			return err
		},
		func() error {
			b, _ := g.Kube.RbacV1().ClusterRoleBindings().Get(ctx, id.HoldRBAC, metav1.GetOptions{})
			b.OwnerReferences[0].UID = "old-ns-uid"
			_, err := g.Kube.RbacV1().ClusterRoleBindings().Update(ctx, b, metav1.UpdateOptions{})
			return err
		},
	} {
		if err := set(); err != nil {
			t.Fatal(err)
		}
	}
	// A new process (a new leader) checks again.
	g = &Guard{Kube: g.Kube, ID: id, Held: g.Held}
	if err := g.Hold(ctx, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	r, _ := g.Kube.RbacV1().ClusterRoles().Get(ctx, id.HoldRBAC, metav1.GetOptions{})
	b, _ := g.Kube.RbacV1().ClusterRoleBindings().Get(ctx, id.HoldRBAC, metav1.GetOptions{})
	if r.OwnerReferences[0].UID != "ns-uid" || b.OwnerReferences[0].UID != "ns-uid" {
		t.Errorf("owners after a hold: role %+v, binding %+v; want the current namespace", r.OwnerReferences, b.OwnerReferences)
	}
}

// newScheme knows the kinds Uninstalling reads as PartialObjectMetadata, as the metadata client does.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for gvr, kind := range map[schema.GroupVersionResource]string{serviceAccounts: "ServiceAccount", namespaces: "Namespace", crds: "CustomResourceDefinition"} {
		s.AddKnownTypeWithName(gvr.GroupVersion().WithKind(kind), &metav1.PartialObjectMetadata{})
		s.AddKnownTypeWithName(gvr.GroupVersion().WithKind(kind+"List"), &metav1.PartialObjectMetadataList{})
	}
	return s
}

func TestUninstalling(t *testing.T) {
	now := metav1.Now()
	meta := func(gvr schema.GroupVersionResource, kind, ns, name string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: gvr.GroupVersion().String(), Kind: kind},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	for _, tc := range []struct {
		name     string
		deleting string // kind with a deletionTimestamp
		drop     string // kind absent
		want     bool
	}{
		{name: "installed"},
		{name: "namespace terminating", deleting: "Namespace", want: true},
		{name: "CRD deleted", drop: "CustomResourceDefinition", want: true},
		{name: "ServiceAccount terminating", deleting: "ServiceAccount", want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			for _, m := range []*metav1.PartialObjectMetadata{
				meta(namespaces, "Namespace", "", id.Namespace), meta(crds, "CustomResourceDefinition", "", id.CRD),
				meta(serviceAccounts, "ServiceAccount", id.Namespace, id.ServiceAccount),
			} {
				if m.Kind == tc.drop {
					continue
				}
				if m.Kind == tc.deleting {
					m.DeletionTimestamp = &now
				}
				objs = append(objs, m)
			}
			got, why, err := Uninstalling(context.Background(), metadatafake.NewSimpleMetadataClient(newScheme(), objs...), id)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Uninstalling = %v (%q), want %v", got, why, tc.want)
			}
		})
	}
}

// What the Guard last saw is trusted for a minute only: a finalizer another replica added while
// this one was not leading is removed at the next Release after that.
func TestGuardRechecksWhatAnotherReplicaDid(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	g := &Guard{Kube: kube(), ID: id, Held: func(context.Context) (bool, error) { return false, nil }, Now: func() time.Time { return now }}
	if err := g.Release(ctx); err != nil { // records "not set"
		t.Fatal(err)
	}
	other := &Guard{Kube: g.Kube, ID: id, Held: g.Held}
	if err := other.Hold(ctx, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Second)
	if err := g.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(saFinalizers(t, g), Finalizer) {
		t.Fatal("Release within a minute of its last check read the ServiceAccount again: the fast path is gone")
	}
	now = now.Add(time.Minute)
	if err := g.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(saFinalizers(t, g), Finalizer) {
		t.Errorf("the finalizer another replica added outlives every hold: Release trusted a stale record")
	}
}

// Once the uninstall's release of the holds has begun (Stop.Begin), no hold starts: the
// release's list of held pools is the last word. A Stop carried by a context is found again.
func TestStopRefusesNewHolds(t *testing.T) {
	stop := &Stop{}
	if StopFrom(WithStop(context.Background(), stop)) != stop {
		t.Fatal("StopFrom does not return the Stop WithStop put")
	}
	g := &Guard{Kube: kube(), ID: id, Held: func(context.Context) (bool, error) { return false, nil }, Stop: stop}
	if err := g.Hold(context.Background(), func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	stop.Begin()
	err := g.Hold(context.Background(), func() error { t.Error("paused after the release of the holds began"); return nil })
	if !errors.Is(err, ErrUninstalling) {
		t.Fatalf("Hold after Begin = %v, want ErrUninstalling", err)
	}
}
