//go:build e2e

// Package e2e runs ocl-pipelines against real components started by hack/stack.sh: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, the Tekton controller, the MCO CRDs
// with a seeded pool and ControllerConfig, a registry, and our controller. The node (kubelet) is
// not part of the stack yet, so build pods stay Pending: these tests prove the control loop, not
// the build (test/integration runs the build's steps with the real buildah).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	layeringclient "github.com/ocl-pipelines/ocl-pipelines/pkg/client/clientset/versioned"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

var (
	root    string
	stack   string
	clients struct {
		kube     kubernetes.Interface
		layering layeringclient.Interface
		tekton   tektonclient.Interface
	}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if root, err = filepath.Abs("../.."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stack = os.Getenv("OCL_STACK_DIR")
	if stack == "" {
		stack = filepath.Join(os.TempDir(), "ocl-stack-e2e")
		os.Setenv("OCL_STACK_DIR", stack)
	}
	if out, err := stackCmd("up"); err != nil {
		fmt.Fprintf(os.Stderr, "hack/stack.sh up: %v\n%s\n", err, out)
		stackCmd("down")
		return 1
	}
	if os.Getenv("OCL_E2E_KEEP") == "" {
		defer stackCmd("down")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(stack, "kubeconfig"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	clients.kube = kubernetes.NewForConfigOrDie(cfg)
	clients.layering = layeringclient.NewForConfigOrDie(cfg)
	clients.tekton = tektonclient.NewForConfigOrDie(cfg)
	return m.Run()
}

func stackCmd(verb string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(root, "hack/stack.sh"), verb)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// eventually polls cond every 100ms until it is true or timeout; on timeout it fails the test
// with what, and dumps the state of the namespace and the controllers' logs.
func eventually(t *testing.T, ns, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx := context.Background()
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, cond); err != nil {
		dump(t, ns)
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

func dump(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if pis, err := clients.layering.LayeringV1alpha1().PoolImages(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, pi := range pis.Items {
			b, _ := yaml.Marshal(pi.Status)
			t.Logf("PoolImage %s/%s status:\n%s", ns, pi.Name, b)
		}
	}
	if runs, err := clients.tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, pr := range runs.Items {
			t.Logf("PipelineRun %s: spec.status=%q conditions=%v", pr.Name, pr.Spec.Status, pr.Status.Conditions)
		}
	}
	for _, name := range []string{"ocl-controller", "tekton-controller"} {
		b, _ := os.ReadFile(filepath.Join(stack, name+".log"))
		lines := strings.Split(string(b), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		t.Logf("last lines of %s.log:\n%s", name, strings.Join(lines, "\n"))
	}
}

// setConfig sets keys of config-ocl-pipelines; the controller picks them up live.
func setConfig(t *testing.T, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	cm, err := clients.kube.CoreV1().ConfigMaps("ocl-pipelines").Get(ctx, "config-ocl-pipelines", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get config-ocl-pipelines: %v", err)
	}
	for k, v := range data {
		cm.Data[k] = v
	}
	if _, err := clients.kube.CoreV1().ConfigMaps("ocl-pipelines").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update config-ocl-pipelines: %v", err)
	}
}

func poolRuns(ctx context.Context, ns string) ([]tektonv1.PipelineRun, error) {
	l, err := clients.tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: layering.PoolLabel + "=worker"})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// TestControlLoop: a PoolImage gets one deterministic PipelineRun, which the real Tekton
// controller accepts; an edit supersedes it; a controller restart creates no duplicate; deleting
// the PoolImage runs its finalizer.
func TestControlLoop(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-loop"
	setConfig(t, map[string]string{"quiet-period": "0s"})
	if _, err := clients.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	if _, err := clients.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "push"},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create the push secret: %v", err)
	}
	pi := &v1alpha1.PoolImage{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: ns},
		Spec: v1alpha1.PoolImageSpec{
			MachineConfigPool: v1alpha1.MachineConfigPoolReference{Name: "worker"},
			Containerfile:     []v1alpha1.Containerfile{{Content: "FROM configs AS final\nRUN echo one > /etc/e2e\n"}},
			ImagePushSpec:     "127.0.0.1:5000/os/worker:latest",
			PushSecret:        &v1alpha1.SecretReference{Name: "push"},
		},
	}
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PoolImage %s/%s: %v", ns, pi.Name, err)
	}

	// One run, named after the inputs hash the status reports, accepted by Tekton (TaskRun made).
	var first string
	eventually(t, ns, "a PipelineRun for the PoolImage, with a TaskRun", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || got.Status.LatestBuild == nil || got.Status.LatestBuild.PipelineRun == "" {
			return false, err
		}
		b := got.Status.LatestBuild
		if b.PipelineRun != generator.RunName("worker", b.InputsHash) {
			return false, fmt.Errorf("run %s is not RunName(worker, %s)", b.PipelineRun, b.InputsHash)
		}
		if c := got.Status.GetCondition(v1alpha1.ConditionBuildSucceeded); c == nil || c.Reason != v1alpha1.ReasonBuilding {
			return false, nil
		}
		trs, err := clients.tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: "tekton.dev/pipelineRun=" + b.PipelineRun})
		if err != nil || len(trs.Items) == 0 {
			return false, err
		}
		first = b.PipelineRun
		return true, nil
	})

	// An edit: a new run, the first one cancelled.
	// The controller writes the PoolImage's status meanwhile: retry on conflict, as any client must.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return err
		}
		got.Spec.Containerfile[0].Content = "FROM configs AS final\nRUN echo two > /etc/e2e\n"
		_, err = clients.layering.LayeringV1alpha1().PoolImages(ns).Update(ctx, got, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatalf("edit the PoolImage: %v", err)
	}
	var second string
	eventually(t, ns, "a second run superseding the first", time.Minute, func(ctx context.Context) (bool, error) {
		runs, err := poolRuns(ctx, ns)
		if err != nil || len(runs) != 2 {
			return false, err
		}
		for _, pr := range runs {
			switch {
			case pr.Name == first && pr.Spec.Status != tektonv1.PipelineRunSpecStatusCancelled:
				return false, nil
			case pr.Name != first:
				second = pr.Name
			}
		}
		return second != "", nil
	})
	eventually(t, ns, "the Superseded event", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := clients.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Superseded"})
		return err == nil && len(evs.Items) > 0, err
	})

	// A restart of our controller: it reconciles everything again and creates no run.
	pid, err := os.ReadFile(filepath.Join(stack, "ocl-controller.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("kill", strings.TrimSpace(string(pid))).Run(); err != nil {
		t.Fatal(err)
	}
	if out, err := stackCmd("up"); err != nil {
		t.Fatalf("restart: %v\n%s", err, out)
	}
	eventually(t, ns, "the restarted controller reconciled the PoolImage", time.Minute, func(ctx context.Context) (bool, error) {
		// The log starts afresh with the restart; knative logs one line per successful reconcile.
		b, err := os.ReadFile(filepath.Join(stack, "ocl-controller.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"knative.dev/key":"`+ns+`/worker"`) && strings.Contains(line, "Reconcile succeeded") {
				return true, nil
			}
		}
		return false, err
	})
	runs, err := poolRuns(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("after a restart the pool has %d runs, want 2", len(runs))
	}

	// Deleting the PoolImage: the finalizer runs and the object goes.
	if err := clients.layering.LayeringV1alpha1().PoolImages(ns).Delete(ctx, "worker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ns, "the PoolImage deleted through its finalizer", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// TestInvalidInputsCreateNoRun: a PoolImage naming a missing pool gets a clear condition and no run.
func TestInvalidInputsCreateNoRun(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-invalid"
	if _, err := clients.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	pi := &v1alpha1.PoolImage{
		ObjectMeta: metav1.ObjectMeta{Name: "infra", Namespace: ns},
		Spec: v1alpha1.PoolImageSpec{
			MachineConfigPool: v1alpha1.MachineConfigPoolReference{Name: "infra"},
			Containerfile:     []v1alpha1.Containerfile{{Content: "FROM configs AS final\n"}},
			ImagePushSpec:     "127.0.0.1:5000/os/infra:latest",
		},
	}
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PoolImage %s/%s: %v", ns, pi.Name, err)
	}
	want := `MachineConfigPool "infra" not found: create it, or fix spec.machineConfigPool.name`
	eventually(t, ns, "Ready=False naming the missing pool", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "infra", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := got.Status.GetCondition(v1alpha1.ConditionReady)
		return c != nil && c.Status == corev1.ConditionFalse && c.Message == want, nil
	})
	runs, err := clients.tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(runs.Items) != 0 {
		t.Fatalf("runs for an invalid PoolImage: %d (%v)", len(runs.Items), err)
	}
}
