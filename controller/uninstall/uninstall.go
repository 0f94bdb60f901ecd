package uninstall

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
)

// Finalizer is the finalizer the Guard puts on the controller's ServiceAccount while it holds a
// pool.
const Finalizer = "layering.ocl-pipelines.dev/pools-held"

// ErrUninstalling is returned by Guard.Hold while the controller is being uninstalled: no new
// hold may start.
var ErrUninstalling = errors.New("the controller is being uninstalled")

// Identity is what the controller runs as, and what tells an uninstall.
type Identity struct {
	// Namespace is the controller's namespace; ServiceAccount its ServiceAccount there.
	Namespace, ServiceAccount string
	// CRD is the PoolImage CustomResourceDefinition.
	CRD string
	// HoldRBAC names the Guard's own ClusterRole and ClusterRoleBinding.
	HoldRBAC string
}

// HoldRules are the rights ending a hold needs during an uninstall, once the release's RBAC is
// gone: list and unpause the pools, record a Warning on each, tell the uninstall, and remove
// the ServiceAccount's finalizer. Each is also in the release's ClusterRole (the API server lets
// the controller create a role only of rights it holds).
func (id Identity) HoldRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"machineconfiguration.openshift.io"}, Resources: []string{"machineconfigpools"}, Verbs: []string{"list", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, ResourceNames: []string{id.ServiceAccount}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{id.Namespace}, Verbs: []string{"get"}},
		{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, ResourceNames: []string{id.CRD}, Verbs: []string{"get"}},
	}
}

// Guard keeps the controller able to end its holds during an uninstall (see the package doc).
// Its methods are safe for concurrent use; Hold and Release serialize, so a release never races
// a pause made under Hold.
type Guard struct {
	// Kube reads and writes the ServiceAccount, the Namespace and the Guard's RBAC.
	Kube kubernetes.Interface
	// ID names the objects.
	ID Identity
	// Held reports whether any pool is held now, read from the API server (not a cache: a pause
	// the cache has not seen yet must keep the guard).
	Held func(ctx context.Context) (bool, error)

	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Stop, shared with the process's uninstall release (StopFrom), refuses new holds once that
	// release has begun; nil never refuses.
	Stop *Stop

	mu      sync.Mutex
	set     bool      // what the Guard last wrote or saw
	checked time.Time // when; zero: never
}

// recheck is how long the Guard trusts what it last wrote or saw. Another replica may have
// changed it since (after a leader change), so it is read again at most this late.
const recheck = time.Minute

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// fresh reports whether the Guard's record says set and is recent.
func (g *Guard) fresh(set bool) bool {
	return g.set == set && !g.checked.IsZero() && g.now().Sub(g.checked) < recheck
}

func (g *Guard) record(set bool) { g.set, g.checked = set, g.now() }

// Hold makes sure the Guard's RBAC exists and the ServiceAccount carries Finalizer, then runs
// pause (the write that starts or keeps a hold) with the guard held. It refuses, with
// ErrUninstalling, once the Stop says the uninstall's release of the holds has begun, and when
// the ServiceAccount or the Namespace is being deleted. The Namespace and the ServiceAccount are
// read every time; the RBAC, within a minute of a check that found it, is trusted.
func (g *Guard) Hold(ctx context.Context, pause func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.Stop != nil {
		g.Stop.mu.Lock()
		defer g.Stop.mu.Unlock()
		if g.Stop.stopping {
			return fmt.Errorf("%w: the holds are being released", ErrUninstalling)
		}
	}
	ns, err := g.Kube.CoreV1().Namespaces().Get(ctx, g.ID.Namespace, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", g.ID.Namespace, err)
	}
	if ns.DeletionTimestamp != nil {
		return fmt.Errorf("%w: namespace %s is being deleted", ErrUninstalling, ns.Name)
	}
	if g.fresh(true) {
		sa, err := g.Kube.CoreV1().ServiceAccounts(g.ID.Namespace).Get(ctx, g.ID.ServiceAccount, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get ServiceAccount %s/%s: %w", g.ID.Namespace, g.ID.ServiceAccount, err)
		}
		if sa.DeletionTimestamp == nil && slices.Contains(sa.Finalizers, Finalizer) {
			return pause()
		}
	}
	if err := g.ensureRBAC(ctx, ns); err != nil {
		return err
	}
	sa, err := g.Kube.CoreV1().ServiceAccounts(g.ID.Namespace).Get(ctx, g.ID.ServiceAccount, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get ServiceAccount %s/%s: %w", g.ID.Namespace, g.ID.ServiceAccount, err)
	}
	if sa.DeletionTimestamp != nil {
		return fmt.Errorf("%w: ServiceAccount %s/%s is being deleted", ErrUninstalling, sa.Namespace, sa.Name)
	}
	if !slices.Contains(sa.Finalizers, Finalizer) {
		if err := g.setFinalizers(ctx, sa, append(slices.Clone(sa.Finalizers), Finalizer)); err != nil {
			return err
		}
	}
	g.record(true)
	return pause()
}

// Release removes Finalizer from the ServiceAccount when no pool is held. It is cheap when the
// Guard recently found it holds nothing; call it after every reconcile. The Guard's RBAC stays:
// it grants nothing the release does not, and goes with the Namespace.
func (g *Guard) Release(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fresh(false) {
		return nil
	}
	held, err := g.Held(ctx)
	if err != nil {
		return fmt.Errorf("list the held pools: %w", err)
	}
	if held {
		return nil
	}
	sa, err := g.Kube.CoreV1().ServiceAccounts(g.ID.Namespace).Get(ctx, g.ID.ServiceAccount, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get ServiceAccount %s/%s: %w", g.ID.Namespace, g.ID.ServiceAccount, err)
	default:
		if i := slices.Index(sa.Finalizers, Finalizer); i >= 0 {
			if err := g.setFinalizers(ctx, sa, slices.Delete(slices.Clone(sa.Finalizers), i, i+1)); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	g.record(false)
	return nil
}

// setFinalizers writes the ServiceAccount's finalizers with an update, conditional on the
// resourceVersion read: another writer's finalizer is never dropped (a conflict is returned and
// the caller retries on fresh state).
func (g *Guard) setFinalizers(ctx context.Context, sa *corev1.ServiceAccount, finalizers []string) error {
	next := sa.DeepCopy()
	next.Finalizers = finalizers
	if _, err := g.Kube.CoreV1().ServiceAccounts(sa.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set the finalizers of ServiceAccount %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	return nil
}

// ensureRBAC creates (or brings back in line) the Guard's ClusterRole and ClusterRoleBinding,
// owned by ns. Setting ownerReferences needs delete on the object where the
// OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift): the release grants it.
func (g *Guard) ensureRBAC(ctx context.Context, ns *corev1.Namespace) error {
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Namespace", Name: ns.Name, UID: ns.UID}}
	labels := map[string]string{"app.kubernetes.io/part-of": "ocl-pipelines", "app.kubernetes.io/component": "uninstall-guard"}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: g.ID.HoldRBAC, Labels: labels, OwnerReferences: owner}, Rules: g.ID.HoldRules()}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: g.ID.HoldRBAC, Labels: labels, OwnerReferences: owner},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: g.ID.Namespace, Name: g.ID.ServiceAccount}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: g.ID.HoldRBAC}}
	roles, bindings := g.Kube.RbacV1().ClusterRoles(), g.Kube.RbacV1().ClusterRoleBindings()
	have, err := roles.Get(ctx, role.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := roles.Create(ctx, role, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get ClusterRole %s: %w", role.Name, err)
	case !ownedBy(have.OwnerReferences, ns) || !equalRules(have.Rules, role.Rules):
		// A left-over of an earlier install (another namespace UID), or edited: made right.
		have.OwnerReferences, have.Rules = owner, role.Rules
		if _, err := roles.Update(ctx, have, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update ClusterRole %s: %w", role.Name, err)
		}
	}
	hb, err := bindings.Get(ctx, binding.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := bindings.Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create ClusterRoleBinding %s: %w", binding.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get ClusterRoleBinding %s: %w", binding.Name, err)
	case !ownedBy(hb.OwnerReferences, ns) || !slices.Equal(hb.Subjects, binding.Subjects) || hb.RoleRef != binding.RoleRef:
		if hb.RoleRef != binding.RoleRef { // immutable: replace it
			if err := bindings.Delete(ctx, hb.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("replace ClusterRoleBinding %s: %w", binding.Name, err)
			}
			return fmt.Errorf("replaced ClusterRoleBinding %s (its roleRef was changed): retrying", binding.Name)
		}
		hb.OwnerReferences, hb.Subjects = owner, binding.Subjects
		if _, err := bindings.Update(ctx, hb, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update ClusterRoleBinding %s: %w", binding.Name, err)
		}
	}
	return nil
}

func ownedBy(refs []metav1.OwnerReference, ns *corev1.Namespace) bool {
	return slices.ContainsFunc(refs, func(r metav1.OwnerReference) bool { return r.Kind == "Namespace" && r.UID == ns.UID })
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.APIGroups, y.APIGroups) && slices.Equal(x.Resources, y.Resources) &&
			slices.Equal(x.ResourceNames, y.ResourceNames) && slices.Equal(x.Verbs, y.Verbs) && slices.Equal(x.NonResourceURLs, y.NonResourceURLs)
	})
}

// Stop tells the Guards of a process that the uninstall's release of the holds has begun: from
// then on no hold starts, so the release's list of held pools is the last word.
type Stop struct {
	mu       sync.Mutex
	stopping bool
}

// Begin marks the release as begun. It waits for a pause in flight under Hold to be written.
func (s *Stop) Begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
}

type stopKey struct{}

// WithStop returns ctx carrying s, for the controller's constructor (StopFrom).
func WithStop(ctx context.Context, s *Stop) context.Context {
	return context.WithValue(ctx, stopKey{}, s)
}

// StopFrom returns the Stop ctx carries, nil when none.
func StopFrom(ctx context.Context) *Stop {
	s, _ := ctx.Value(stopKey{}).(*Stop)
	return s
}

// Resources Uninstalling reads.
var (
	namespaces      = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	crds            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	serviceAccounts = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
)

// Uninstalling reports whether the controller is being uninstalled, and why: its namespace, the
// PoolImage CRD or its ServiceAccount is being deleted or is gone. Deleting the release does all
// of these at once; deleting only the CRD removes every PoolImage, which is an uninstall too.
func Uninstalling(ctx context.Context, client metadata.Interface, id Identity) (bool, string, error) {
	for _, o := range []struct {
		gvr       schema.GroupVersionResource
		namespace string
		name      string
	}{{namespaces, "", id.Namespace}, {crds, "", id.CRD}, {serviceAccounts, id.Namespace, id.ServiceAccount}} {
		what := o.gvr.Resource + " " + o.name
		m, err := client.Resource(o.gvr).Namespace(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return true, what + " is deleted", nil
		case err != nil:
			return false, "", fmt.Errorf("get %s: %w", what, err)
		case m.DeletionTimestamp != nil:
			return true, what + " is being deleted", nil
		}
	}
	return false, "", nil
}
