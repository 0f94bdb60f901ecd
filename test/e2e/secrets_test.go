//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ocl-pipelines/ocl-pipelines/controller/secrets"
	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// lockedNamespace holds a PoolImage before the controller may read its Secrets.
const lockedNamespace = "e2e-locked"

// TestSecretsNeedARoleBinding: the controller has no cluster-wide access to Secrets. A PoolImage
// in a namespace without the ocl-pipelines-secrets RoleBinding gets Ready=False naming the
// command that grants it, and no run; once the admin runs it, the build starts with no other
// action. The audit test checks the refusals were real API answers.
func TestSecretsNeedARoleBinding(t *testing.T) {
	ctx := context.Background()
	ns := lockedNamespace
	if _, err := clients.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := clients.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ocl-build"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	createPushSecret(t, ns, []byte(`{"auths":{}}`))
	pool := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: "e2e-locked"}}
	if _, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Create(ctx, pool, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = clients.mco.MachineconfigurationV1().MachineConfigPools().Delete(context.Background(), pool.Name, metav1.DeleteOptions{})
	})
	pi := builders.PoolImage(ns, "locked", builders.WithPool(pool.Name), builders.WithPushSpec("127.0.0.1:5000/os/locked:latest"), builders.WithPushSecret("push"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = clients.layering.LayeringV1alpha1().PoolImages(ns).Delete(context.Background(), pi.Name, metav1.DeleteOptions{})
	})

	fix := "`oc -n e2e-locked create rolebinding ocl-pipelines-secrets --clusterrole=ocl-pipelines-secrets --serviceaccount=ocl-pipelines:ocl-pipelines-controller`"
	var msg string
	eventually(t, ns, "Ready=False naming the RoleBinding", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, pi.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := got.Status.GetCondition(v1alpha1.ConditionReady)
		if c == nil {
			return false, nil
		}
		msg = c.Message
		return c.Status == corev1.ConditionFalse && strings.Contains(c.Message, fix), nil
	})
	if !strings.HasPrefix(msg, "spec.pushSecret: the controller may not read Secrets in namespace e2e-locked (") || !strings.Contains(msg, "forbidden") {
		t.Errorf("Ready message %q: want it to name the field and carry the API server's refusal", msg)
	}
	if runs, err := clients.tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{}); err != nil || len(runs.Items) != 0 {
		t.Fatalf("runs (%v) before the controller may read the Secrets: %v", err, runs)
	}

	// What the message says to run.
	rb := secrets.RoleBinding(ns, "ocl-pipelines/ocl-pipelines-controller")
	if _, err := clients.kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var run string
	eventually(t, ns, "a build once the RoleBinding exists", 2*time.Minute, func(ctx context.Context) (bool, error) {
		runs, err := clients.tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(runs.Items) != 1 {
			return false, err
		}
		run = runs.Items[0].Name
		return true, nil
	})
	// The build itself is the other tests' subject: stop it.
	if _, err := clients.tekton.TektonV1().PipelineRuns(ns).Patch(ctx, run, types.MergePatchType,
		[]byte(`{"spec":{"status":"Cancelled"}}`), metav1.PatchOptions{}); err != nil {
		t.Errorf("cancel %s: %v", run, err)
	}
}
