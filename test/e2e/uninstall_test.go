//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/controller/poolimage"
	"github.com/ocl-pipelines/ocl-pipelines/controller/uninstall"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
)

// TestUninstall: deleting the release (kubectl delete -f release.yaml, as a user uninstalls)
// while a PoolImage holds its pool for a cluster upgrade leaves no pool paused and nothing stuck:
// the delete returns, the namespace, the CRD and the controller's RBAC are gone, the pool is
// unpaused and keeps its image (an uninstall reboots nothing), and the PoolImage's namespace
// can be deleted. Before that, with the controller scaled to zero ("gone"), deleting a
// namespace with a reconciled PoolImage in it completes: no finalizer waits for the controller.
// The stack's release is installed again at the end.
func TestUninstall(t *testing.T) {
	if hostProcess() {
		t.Skip("OCL_CONTROLLER=process: the stack runs config/ with a host process, not the release")
	}
	ctx := context.Background()
	overlay := localState(t, "install")
	noQuietPeriod(t) // before the reinstall's cleanup: it restores the ConfigMap the reinstall re-creates
	t.Cleanup(func() { reinstall(t, overlay) })

	// 1. The controller gone: a namespace with a PoolImage it reconciled is deleted all the same.
	gone := "e2e-uninstall-gone"
	newNamespace(t, gone)
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(gone).Create(ctx, &v1alpha1.PoolImage{
		ObjectMeta: metav1.ObjectMeta{Name: "absent", Namespace: gone},
		Spec: v1alpha1.PoolImageSpec{MachineConfigPool: v1alpha1.MachineConfigPoolReference{Name: "absent"},
			Containerfile: []v1alpha1.Containerfile{{Content: "FROM configs AS final\n"}}, ImagePushSpec: os.Getenv("OCL_E2E_REGISTRY") + "/os/absent:latest"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, gone, "the controller reconciled PoolImage absent", time.Minute, func(ctx context.Context) (bool, error) {
		pi, err := clients.layering.LayeringV1alpha1().PoolImages(gone).Get(ctx, "absent", metav1.GetOptions{})
		return err == nil && pi.Status.ObservedGeneration == pi.Generation && len(pi.Status.Conditions) > 0, err
	})
	kubectl(t, "-n", systemNamespace, "scale", "deployment/ocl-pipelines-controller", "--replicas=0")
	eventually(t, gone, "no controller pod", 2*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := controllerPods(ctx)
		return err == nil && len(pods) == 0, err
	})
	if err := clients.kube.CoreV1().Namespaces().Delete(ctx, gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, gone, "namespace "+gone+" deleted with no controller running", 2*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := clients.kube.CoreV1().Namespaces().Get(ctx, gone, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	kubectl(t, "-n", systemNamespace, "scale", "deployment/ocl-pipelines-controller", "--replicas=2")
	controllerReady(t, gone)

	// 2. A pool held for a cluster upgrade while its rebuild runs.
	ns := "e2e-uninstall"
	image := promotedWorker(t, ns, "FROM configs AS final\nRUN sleep 60 && echo kept > /etc/kept && ostree container commit\n", "/os/uninstall:latest")
	mcName := facts.MachineConfigName("worker")
	t.Cleanup(func() {
		// What docs/install.md tells an admin who wants the release's image back.
		_ = clients.mco.MachineconfigurationV1().MachineConfigs().Delete(context.Background(), mcName, metav1.DeleteOptions{})
	})
	base9, ext9, _ := standinRelease(t, "9")
	upgradeTo(t, base9, ext9)
	heldWhileBuilding(t, ns)
	// The guard: while the pool is held, the ServiceAccount carries its finalizer, and the
	// controller's own binding of what ending a hold needs exists, owned by its Namespace.
	sa, err := clients.kube.CoreV1().ServiceAccounts(systemNamespace).Get(ctx, poolimage.ControllerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sa.Finalizers, uninstall.Finalizer) {
		t.Fatalf("pool held, but the ServiceAccount's finalizers are %v: want %s", sa.Finalizers, uninstall.Finalizer)
	}
	holdRBAC := poolimage.Identity(systemNamespace).HoldRBAC
	crb, err := clients.kube.RbacV1().ClusterRoleBindings().Get(ctx, holdRBAC, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pool held, but no ClusterRoleBinding %s: %v", holdRBAC, err)
	}
	if len(crb.OwnerReferences) != 1 || crb.OwnerReferences[0].Kind != "Namespace" || crb.OwnerReferences[0].Name != systemNamespace {
		t.Errorf("ClusterRoleBinding %s is owned by %+v, want Namespace %s", holdRBAC, crb.OwnerReferences, systemNamespace)
	}
	keepControllerLogs(t)

	// 3. Uninstall, as a user does. kubectl waits for every object to be gone: a stuck one fails it.
	start := time.Now()
	uninstalls.begin(start)
	if out, err := exec.Command("kubectl", "delete", "-f", localState(t, "release.yaml"), "--timeout=3m").CombinedOutput(); err != nil {
		t.Fatalf("kubectl delete -f release.yaml: %v\n%s", err, out)
	}
	t.Logf("uninstall: kubectl delete -f release.yaml returned in %s; the hold ended by the PoolImage's deletion (%d PoolReleased) or the pods' last act (%d HoldReleased on the pool)",
		time.Since(start).Round(100*time.Millisecond), countEvents(t, ns, v1alpha1.ReasonPoolReleased), countEvents(t, metav1.NamespaceDefault, v1alpha1.ReasonHoldReleased))
	pool, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pool.Spec.Paused {
		t.Errorf("pool worker is still paused after the uninstall (annotations %v)", pool.Annotations)
	}
	mc, err := clients.mco.MachineconfigurationV1().MachineConfigs().Get(ctx, mcName, metav1.GetOptions{})
	switch {
	case err != nil:
		t.Errorf("MachineConfig %s after the uninstall: %v; want it kept (an uninstall reboots nothing)", mcName, err)
	case mc.Spec.OSImageURL != image:
		t.Errorf("MachineConfig %s promotes %s after the uninstall, want the image it had, %s", mcName, mc.Spec.OSImageURL, image)
	}
	for what, get := range map[string]func() error{
		"namespace " + systemNamespace: func() error {
			_, err := clients.kube.CoreV1().Namespaces().Get(ctx, systemNamespace, metav1.GetOptions{})
			return err
		},
		"ClusterRoleBinding": func() error {
			_, err := clients.kube.RbacV1().ClusterRoleBindings().Get(ctx, poolimage.ControllerName, metav1.GetOptions{})
			return err
		},
		"ClusterRole": func() error {
			_, err := clients.kube.RbacV1().ClusterRoles().Get(ctx, poolimage.ControllerName, metav1.GetOptions{})
			return err
		},
		"PoolImages": func() error {
			_, err := clients.layering.LayeringV1alpha1().PoolImages(ns).List(ctx, metav1.ListOptions{})
			return err
		},
	} {
		if err := get(); !apierrors.IsNotFound(err) {
			t.Errorf("%s after the uninstall: %v, want NotFound", what, err)
		}
	}
	// The guard's own RBAC goes with the namespace (the garbage collector).
	eventually(t, ns, "the guard's ClusterRole and ClusterRoleBinding garbage-collected", 2*time.Minute, func(ctx context.Context) (bool, error) {
		_, err1 := clients.kube.RbacV1().ClusterRoleBindings().Get(ctx, holdRBAC, metav1.GetOptions{})
		_, err2 := clients.kube.RbacV1().ClusterRoles().Get(ctx, holdRBAC, metav1.GetOptions{})
		return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2), nil
	})
	// The PoolImages' namespace goes too (its runs included), with no controller at all.
	if err := clients.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ns, "namespace "+ns+" deleted after the uninstall", 3*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := clients.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// reinstall applies the stack's overlay of its release again and waits for a leader.
func reinstall(t *testing.T, overlay string) {
	t.Helper()
	kubectl(t, "apply", "--server-side", "--force-conflicts", "-k", overlay)
	controllerReady(t, systemNamespace)
	uninstalls.end(time.Now())
}

// uninstalls are the times TestUninstall had deleted the release: the controller's requests are
// refused then (its RBAC is gone), which the audit test must not count against config/.
var uninstalls windows

type windows struct {
	mu   sync.Mutex
	list [][2]time.Time
}

func (w *windows) begin(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, [2]time.Time{t, {}})
}

func (w *windows) end(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.list); n > 0 && w.list[n-1][1].IsZero() {
		w.list[n-1][1] = t
	}
}

// duringUninstall reports whether t falls in an uninstall window (an open one lasts for ever).
func duringUninstall(t time.Time) bool {
	uninstalls.mu.Lock()
	defer uninstalls.mu.Unlock()
	for _, w := range uninstalls.list {
		if !t.Before(w[0]) && (w[1].IsZero() || !t.After(w[1])) {
			return true
		}
	}
	return false
}

// controllerReady waits until the Deployment has two ready pods and one of them leads.
func controllerReady(t *testing.T, ns string) {
	t.Helper()
	eventually(t, ns, "two ready controller pods, one leading", 5*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := controllerPods(ctx)
		if err != nil {
			return false, nil // the namespace may be coming back
		}
		ready := map[string]bool{}
		for _, p := range pods {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Ready && p.DeletionTimestamp == nil {
					ready[p.Name] = true
				}
			}
		}
		leader, err := cluster.Leader(ctx)
		return err == nil && len(ready) == 2 && ready[leader], nil
	})
}

// kubectl runs kubectl against the stack, failing the test on error.
func kubectl(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("kubectl", args...).CombinedOutput(); err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
}
