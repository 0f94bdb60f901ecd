//go:build e2e

// Package e2e runs ocl-pipelines against real components started by test/stack: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, a node (containerd + runc + kubelet),
// the Tekton controller, the MCO CRDs with a seeded pool and a ControllerConfig on the stand-in
// base image, a registry, and our controller. Builds run for real in pods on the node.
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	configclient "github.com/openshift/client-go/config/clientset/versioned"
	mcoclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/controller/secrets"
	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/internal/imagetest"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	layeringclient "github.com/ocl-pipelines/ocl-pipelines/pkg/client/clientset/versioned"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
	"github.com/ocl-pipelines/ocl-pipelines/test/stack"
)

var (
	root string
	// cluster is what the tests run against: the local stack, or an attached cluster.
	cluster *stack.Stack
	clients struct {
		kube     kubernetes.Interface
		layering layeringclient.Interface
		tekton   tektonclient.Interface
		mco      mcoclient.Interface
		config   configclient.Interface
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
	if cluster, err = startCluster(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if cluster.Local() && os.Getenv("OCL_E2E_KEEP") == "" {
		defer func() { _ = cluster.Down() }()
	}
	cfg, err := cluster.RESTConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	clients.kube = kubernetes.NewForConfigOrDie(cfg)
	clients.layering = layeringclient.NewForConfigOrDie(cfg)
	clients.tekton = tektonclient.NewForConfigOrDie(cfg)
	clients.mco = mcoclient.NewForConfigOrDie(cfg)
	clients.config = configclient.NewForConfigOrDie(cfg)
	// kubectl and tkn (the stack's, on its PATH), the tests' registry.
	env, err := cluster.Env()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "OCL_REGISTRY" {
			k = "OCL_E2E_REGISTRY"
		}
		_ = os.Setenv(k, v)
	}
	return m.Run()
}

// startCluster starts the local stack from nothing (a stack left over by an interrupted run
// would carry its objects), in $TMPDIR/ocl-stack-e2e unless OCL_STACK_DIR says otherwise; or,
// with OCL_E2E_KUBECONFIG, attaches the cluster it names (docs/e2e.md: what such a cluster
// needs), with OCL_E2E_REGISTRY as the registry the tests push to.
func startCluster() (*stack.Stack, error) {
	if kc := os.Getenv("OCL_E2E_KUBECONFIG"); kc != "" {
		return stack.Attach(kc, os.Getenv("OCL_E2E_REGISTRY"))
	}
	opts := stack.OptionsFromEnv()
	opts.Root = root
	if opts.Dir == "" {
		opts.Dir = filepath.Join(os.TempDir(), "ocl-stack-e2e")
	}
	s, err := stack.New(opts)
	if err != nil {
		return nil, err
	}
	if err := s.Down(); err != nil {
		return nil, fmt.Errorf("down: %w", err)
	}
	if err := s.Up(context.Background()); err != nil {
		_ = s.Down()
		return nil, fmt.Errorf("up: %w", err)
	}
	return s, nil
}

// localState returns a file of the local stack's state directory, skipping the test on an
// attached cluster, which has none.
func localState(t *testing.T, name string) string {
	t.Helper()
	p, err := cluster.Path(name)
	if errors.Is(err, stack.ErrNotLocal) {
		t.Skipf("needs %s of the local stack: %v", name, err)
	}
	return p
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
	if log, err := controllerLog(); err != nil {
		t.Logf("the controller's log: %v", err)
	} else if !hostProcess() {
		lines := strings.Split(string(log), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		t.Logf("last lines of the controller's pods:\n%s", strings.Join(lines, "\n"))
	}
	for _, name := range []string{"ocl-controller", "tekton-controller", "kubelet", "containerd"} {
		b, _ := cluster.ProcessLog(name) // none on an attached cluster
		lines := strings.Split(string(b), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		t.Logf("last lines of %s.log:\n%s", name, strings.Join(lines, "\n"))
	}
}

// newNamespace creates the namespace of a test's PoolImage with the build ServiceAccount the
// installed config-ocl-pipelines names (service-account: ocl-build) and the RoleBinding that
// lets the controller read its Secrets, as docs/install.md says an admin does for a namespace
// other than ocl-pipelines.
func newNamespace(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if _, err := clients.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ocl-build", Namespace: ns}}
	if _, err := clients.kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceAccount %s/ocl-build: %v", ns, err)
	}
	rb := secrets.RoleBinding(ns, "ocl-pipelines/ocl-pipelines-controller")
	if _, err := clients.kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create RoleBinding %s/ocl-pipelines-secrets: %v", ns, err)
	}
}

// createPushSecret creates the dockerconfigjson Secret "push" in ns.
func createPushSecret(t *testing.T, ns string, dockerConfig []byte) {
	t.Helper()
	if _, err := clients.kube.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "push"},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": dockerConfig}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create the push secret: %v", err)
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

// shippedConfig returns the value of key in the shipped config-ocl-pipelines
// (config/400-config-ocl-pipelines.yaml): what users run.
func shippedConfig(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "config", "400-config-ocl-pipelines.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatalf("config/400-config-ocl-pipelines.yaml: %v", err)
	}
	v, ok := cm.Data[key]
	if !ok {
		t.Fatalf("config/400-config-ocl-pipelines.yaml has no %s", key)
	}
	return v
}

// noQuietPeriod sets quiet-period 0s for a test that edits its spec and expects the build at
// once: such a test is about the build, promotion or a fault, not about batching edits, and 15 s
// per edit would multiply its run time. TestBurstBuildsOnce runs with the shipped quiet period.
// The shipped value is restored when the test ends.
func noQuietPeriod(t *testing.T) {
	t.Helper()
	shipped := shippedConfig(t, "quiet-period")
	setConfig(t, map[string]string{"quiet-period": "0s"})
	t.Cleanup(func() { setConfig(t, map[string]string{"quiet-period": shipped}) })
}

func poolRuns(ctx context.Context, ns string) ([]tektonv1.PipelineRun, error) {
	l, err := clients.tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: layering.PoolLabel + "=worker"})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// poolImage returns the PoolImage "worker" of ns, failing the test on error.
func poolImage(t *testing.T, ns string) *v1alpha1.PoolImage {
	t.Helper()
	pi, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(context.Background(), "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get PoolImage %s/worker: %v", ns, err)
	}
	return pi
}

// edit sets the PoolImage's Containerfile.
func edit(t *testing.T, ns, content string) {
	t.Helper()
	update(t, ns, func(pi *v1alpha1.PoolImage) { pi.Spec.Containerfile[0].Content = content })
}

// update changes PoolImage ns/worker, retrying on conflict as any client must (the controller
// writes the status meanwhile).
func update(t *testing.T, ns string, change func(*v1alpha1.PoolImage)) {
	t.Helper()
	ctx := context.Background()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(got)
		_, err = clients.layering.LayeringV1alpha1().PoolImages(ns).Update(ctx, got, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatalf("update PoolImage %s/worker: %v", ns, err)
	}
}

// promotedImage waits until the PoolImage of the given inputs is Ready and returns its image.
func promotedImage(t *testing.T, ns, what string) string {
	t.Helper()
	var image string
	eventually(t, ns, what, 3*time.Minute, func(ctx context.Context) (bool, error) {
		pi, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if pi.Status.ObservedGeneration != pi.Generation {
			// The controller has not seen the latest spec yet: a failure in the status is an
			// earlier spec's (an edit that fixes a failed build, say).
			return false, nil
		}
		if c := pi.Status.GetCondition(v1alpha1.ConditionBuildSucceeded); c != nil && c.IsFalse() {
			return false, fmt.Errorf("the build failed: %s", c.Message)
		}
		if !pi.Status.IsReady() || pi.Status.LatestBuild == nil || pi.Status.CurrentInputsHash != pi.Status.LatestBuild.InputsHash {
			return false, nil
		}
		image = pi.Status.CurrentImage
		return true, nil
	})
	return image
}

func machineConfigImage(t *testing.T) string {
	t.Helper()
	mc, err := clients.mco.MachineconfigurationV1().MachineConfigs().Get(context.Background(), "zz-ocl-0-worker-os-image", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	return mc.Spec.OSImageURL
}

// TestBuildLoop runs the whole loop for real: a PoolImage is built by real pods on the stack's
// node, verified and promoted through the pool's MachineConfig; an edit supersedes a running
// build; a controller restart creates no duplicate; a failing RUN leaves the promoted image and
// says where to look; fixing it promotes again; a Containerfile that removes the kernel is
// refused by verify; deleting the PoolImage reverts the pool.
func TestBuildLoop(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-loop"
	noQuietPeriod(t)
	newNamespace(t, ns)
	createPushSecret(t, ns, []byte(`{"auths":{}}`))
	registry := os.Getenv("OCL_E2E_REGISTRY")
	// A build that takes long enough to be superseded while it runs.
	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile("FROM configs AS final\nRUN sleep 600\n"), builders.WithPushSpec(registry+"/os/worker:latest"), builders.WithPushSecret("push"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PoolImage %s/%s: %v", ns, pi.Name, err)
	}
	t.Cleanup(func() { deletePoolImage(t, ns) }) // a failure must not leave the pool claimed for the tests after

	// One run, named after the inputs hash the status reports, running in real pods.
	var first string
	eventually(t, ns, "a running build pod for the PoolImage", 2*time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || got.Status.LatestBuild == nil || got.Status.LatestBuild.PipelineRun == "" {
			return false, err
		}
		b := got.Status.LatestBuild
		if b.PipelineRun != generator.RunName("worker", b.InputsHash) {
			return false, fmt.Errorf("run %s is not RunName(worker, %s)", b.PipelineRun, b.InputsHash)
		}
		pod, err := clients.kube.CoreV1().Pods(ns).Get(ctx, b.PipelineRun+"-build-pod", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		first = b.PipelineRun
		return pod.Status.Phase == corev1.PodRunning, nil
	})

	// An edit: the running build is cancelled, the new one is built and promoted.
	edit(t, ns, "FROM configs AS final\nRUN echo two > /etc/e2e\n")
	image := promotedImage(t, ns, "the edited inputs built, verified and promoted")
	runs, err := poolRuns(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range runs {
		if pr.Name == first && pr.Spec.Status != tektonv1.PipelineRunSpecStatusCancelled {
			t.Errorf("the superseded run %s was not cancelled", first)
		}
	}
	if got := machineConfigImage(t); got != image {
		t.Fatalf("MachineConfig osImageURL = %q, want the promoted %q", got, image)
	}
	built := poolImage(t, ns).Status.LatestBuild.PipelineRun
	checkDashboardFidelity(t, ns, built)
	checkMetrics(t, map[string]string{
		`ocl_pipelines_builds_total{`:                            `result="succeeded"`,
		`ocl_pipelines_build_duration_seconds_bucket{`:           `result="succeeded"`,
		`ocl_pipelines_builds_started_total{`:                    `trigger="spec"`,
		`ocl_pipelines_builds_superseded_total{`:                 `pool="worker"`,
		`ocl_pipelines_last_successful_build_timestamp_seconds{`: `poolimage="e2e-loop/worker"`,
		`ocl_pipelines_pool_out_of_date_seconds{`:                `poolimage="e2e-loop/worker"`,
	})
	waitTagged(t, ns, image, "latest")

	// A restart of our controller reconciles everything again and creates no run.
	restartController(t, ns)
	if again, err := poolRuns(ctx, ns); err != nil || len(again) != len(runs) {
		t.Fatalf("after a restart the pool has %d runs, want %d (%v)", len(again), len(runs), err)
	}

	// A failing RUN: the failure names task, step and logs; the promoted image stays.
	edit(t, ns, "FROM configs AS final\nRUN echo e2e-failing-step && exit 3\n")
	var failure *v1alpha1.BuildFailure
	eventually(t, ns, "BuildSucceeded=False naming the failed task and step", 3*time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || got.Status.LatestBuild == nil || got.Status.LatestBuild.Failure == nil {
			return false, err
		}
		failure = got.Status.LatestBuild.Failure
		return got.Status.GetCondition(v1alpha1.ConditionBuildSucceeded).IsFalse(), nil
	})
	if failure.Task != "build" || failure.Step != "build" || !strings.HasPrefix(failure.LogsCommand, "tkn pipelinerun logs ") {
		t.Errorf("failure = %+v", failure)
	}
	run := poolImage(t, ns).Status.LatestBuild.PipelineRun
	logs, err := clients.kube.CoreV1().Pods(ns).GetLogs(run+"-build-pod", &corev1.PodLogOptions{Container: "step-build"}).DoRaw(ctx)
	if err != nil || !strings.Contains(string(logs), "e2e-failing-step") || !strings.Contains(string(logs), "build: FAILED (exit code 3)") ||
		!strings.Contains(string(logs), "build: ---- Containerfile ----\n# Rendered by ocl-pipelines") {
		t.Errorf("the failed step's logs do not show the Containerfile, the failing RUN and its exit code (%v):\n%s", err, logs)
	}
	checkBuildExit(t, ns, run, 3)
	checkFailedReport(t, ns, run, "report", "build", "build")
	if got := machineConfigImage(t); got != image || poolImage(t, ns).Status.CurrentImage != image {
		t.Errorf("a failed build changed the promoted image: MachineConfig %q, status %q, want %q", got, poolImage(t, ns).Status.CurrentImage, image)
	}
	checkMetrics(t, map[string]string{
		`ocl_pipelines_pool_build_failed{`: `pipelinerun="` + run + `"`,
		`ocl_pipelines_builds_total{`:      `step="build"`,
	})

	// Fixing the Containerfile builds again and promotes the new image.
	edit(t, ns, "FROM configs AS final\nRUN echo three > /etc/e2e\n")
	fixed := promotedImage(t, ns, "the fixed inputs promoted")
	if fixed == image || machineConfigImage(t) != fixed {
		t.Errorf("after the fix: promoted %q (before %q), MachineConfig %q", fixed, image, machineConfigImage(t))
	}

	// The verify gate: an image without kernel is built and pushed but never promoted.
	edit(t, ns, "FROM configs AS final\nRUN rm -rf /usr/lib/modules/*\n")
	eventually(t, ns, "verify refuses the image without a kernel", 3*time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || got.Status.LatestBuild == nil || got.Status.LatestBuild.Failure == nil {
			return false, err
		}
		return got.Status.LatestBuild.Failure.Task == "verify", nil
	})
	if got := machineConfigImage(t); got != fixed {
		t.Errorf("a refused image reached the MachineConfig: %q, want %q", got, fixed)
	}

	// Deleting the PoolImage reverts the pool: the MachineConfig goes, then the PoolImage.
	if err := clients.layering.LayeringV1alpha1().PoolImages(ns).Delete(ctx, "worker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ns, "the PoolImage and its MachineConfig deleted", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && machineConfigImage(t) == "", nil
	})
}

// checkSecretChannels greps every place a secret could leak to for the canaries of the test's
// secrets: the PipelineRuns and TaskRuns (params, specs, results, status), the PoolImages'
// status, the namespace's events, every container log of every build pod, and our controller's
// log. (checkImage reads every layer of the built image.)
func checkSecretChannels(t *testing.T, ns string, canaries ...string) {
	t.Helper()
	ctx := context.Background()
	channels := map[string][]byte{}
	for name, list := range map[string]func() (any, error){
		"PipelineRuns": func() (any, error) { return clients.tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{}) },
		"TaskRuns":     func() (any, error) { return clients.tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{}) },
		"PoolImages": func() (any, error) {
			return clients.layering.LayeringV1alpha1().PoolImages(ns).List(ctx, metav1.ListOptions{})
		},
		"events": func() (any, error) { return clients.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}) },
	} {
		l, err := list()
		if err != nil {
			t.Fatalf("list %s: %v", name, err)
		}
		channels[name], _ = json.Marshal(l)
	}
	// Every pod of the namespace finished (the tag TaskRun starts right after a promotion).
	var pods *corev1.PodList
	eventually(t, ns, "every pod finished before its logs are read", 2*time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		if pods, err = clients.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				return false, nil
			}
		}
		return true, nil
	})
	logs := 0
	for _, pod := range pods.Items {
		for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			b, err := clients.kube.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: c.Name}).DoRaw(ctx)
			if err != nil {
				t.Fatalf("logs of %s/%s: %v", pod.Name, c.Name, err)
			}
			channels["log of "+pod.Name+"/"+c.Name] = b
			logs++
		}
	}
	if logs == 0 {
		t.Fatal("no build pod logs to check")
	}
	log, err := controllerLog()
	if err != nil {
		t.Fatal(err)
	}
	channels["controller log"] = log
	for name, b := range channels {
		for _, canary := range canaries {
			if bytes.Contains(b, []byte(canary)) {
				t.Errorf("secret material %s leaked into %s", canary, name)
			}
		}
	}
	t.Logf("checked %d channels (%d container logs) for %d secrets", len(channels), logs, len(canaries))
}

// checkDashboardFidelity: `tkn pipelinerun logs` of a finished run shows every stage, finally
// included, each step prints what it does, and Tekton kept the per-pool pipeline label and our
// annotations (pool, PoolImage, trigger, inputs hash).
func checkDashboardFidelity(t *testing.T, ns, run string) {
	t.Helper()
	out, err := exec.Command("tkn", "pipelinerun", "logs", run, "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("tkn pipelinerun logs %s -n %s: %v\n%s", run, ns, err, out)
	}
	for _, want := range []string{
		"[fetch-base-digest : fetch-base-digest]", "[build : inject]", "[build : check-push]", "[build : build]", "[build : push]",
		"[verify : verify]", "[report : report]",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("tkn pipelinerun logs %s does not show %s:\n%s", run, want, out)
		}
	}
	pr, err := clients.tekton.TektonV1().PipelineRuns(ns).Get(context.Background(), run, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The run embeds its pipeline and carries the name of the Pipeline of that spec, which the
	// controller created for the dashboard's Pipelines page; Tekton keeps the label.
	name := pr.Labels["tekton.dev/pipeline"]
	if pr.Spec.PipelineSpec == nil || pr.Spec.PipelineRef != nil || !strings.HasPrefix(name, generator.PipelineNamePrefix) {
		t.Errorf("run %s: embedded spec %v, pipelineRef %+v, tekton.dev/pipeline=%q; want its pipeline embedded and a generated Pipeline's name",
			run, pr.Spec.PipelineSpec != nil, pr.Spec.PipelineRef, name)
	} else if pl, err := clients.tekton.TektonV1().Pipelines(ns).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
		t.Errorf("Pipeline %s of run %s: %v", name, run, err)
	} else if generator.PipelineNameFor(&pl.Spec) != pl.Name || generator.PipelineDigest(&pl.Spec) != generator.PipelineDigest(pr.Spec.PipelineSpec) {
		t.Errorf("Pipeline %s's spec is not the one run %s embeds, or does not hash to its name", pl.Name, run)
	}
	for _, k := range []string{layering.PoolLabel, layering.PoolImageLabel, layering.TriggerAnnotation, layering.InputsHashLabel, layering.DescriptionAnnotation} {
		if pr.Annotations[k] == "" {
			t.Errorf("run %s has no annotation %s: %v", run, k, pr.Annotations)
		}
	}
	// tkn describe shows the run's description.
	if d, err := exec.Command("tkn", "pipelinerun", "describe", run, "-n", ns).CombinedOutput(); err != nil || !bytes.Contains(d, []byte(pr.Annotations[layering.DescriptionAnnotation])) {
		t.Errorf("tkn pipelinerun describe %s does not show the description %q (%v):\n%s", run, pr.Annotations[layering.DescriptionAnnotation], err, d)
	}
	// The build moves no tag (defect B9 of modelTraces): its promote task is skipped, the controller's tag
	// TaskRun moves the push spec's tag once the image is promoted.
	if bytes.Contains(out, []byte("[promote : promote]")) {
		t.Errorf("the build's promote task ran (tkn pipelinerun logs %s):\n%s", run, out)
	}
}

// checkBuildExit: the build step of run exited with code, the failing RUN's.
func checkBuildExit(t *testing.T, ns, run string, code int32) {
	t.Helper()
	tr, err := clients.tekton.TektonV1().TaskRuns(ns).Get(context.Background(), run+"-build", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tr.Status.Steps {
		if s.Name == "build" && (s.Terminated == nil || s.Terminated.ExitCode != code) {
			t.Errorf("the build step of %s ended %+v, want exit code %d, the RUN's", run, s.Terminated, code)
		}
	}
}

// checkFailedReport: the failed run's report (the finally task report, the other one skipped),
// in `tkn pipelinerun logs`, starts with the verdict, then the failed task, step and logs
// command on lines of their own, each within the dashboard's 100 characters; skipped tasks say
// so.
func checkFailedReport(t *testing.T, ns, run, report, task, step string) {
	t.Helper()
	eventually(t, ns, "the failed run done, its report included", 2*time.Minute, func(ctx context.Context) (bool, error) {
		pr, err := clients.tekton.TektonV1().PipelineRuns(ns).Get(ctx, run, metav1.GetOptions{})
		return err == nil && pr.IsDone(), err
	})
	out, err := exec.Command("tkn", "pipelinerun", "logs", run, "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("tkn pipelinerun logs %s -n %s: %v\n%s", run, ns, err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(l, "["+report+" : report] "); ok {
			lines = append(lines, rest)
		}
	}
	want := []string{"FAILED: the OS image was not built; the pool keeps its current image", "  pool: worker", "  task: " + task, "  step: " + step,
		"  logs:", "tkn pipelinerun logs " + run + " -n " + ns + " --task " + task}
	if len(lines) < len(want) || strings.Join(lines[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Errorf("the report of %s starts\n%s\nwant\n%s\n(tkn pipelinerun logs:\n%s)", run, strings.Join(lines, "\n"), strings.Join(want, "\n"), out)
	}
	for _, l := range lines {
		if len(l) > 100 || strings.HasSuffix(l, " None") {
			t.Errorf("report line %q: longer than 100 characters, or Tekton's None for Skipped", l)
		}
	}
	if !strings.Contains(strings.Join(lines, "\n"), "  verify             Skipped") {
		t.Errorf("the report does not say verify was skipped:\n%s", strings.Join(lines, "\n"))
	}
	other := "report-no-build"
	if report == other {
		other = "report"
	}
	if bytes.Contains(out, []byte("["+other+" : report]")) {
		t.Errorf("both reports ran:\n%s", out)
	}
}

// waitTagged waits until the controller's tag TaskRun of the promoted image succeeded and the
// push spec's tag names it (skopeo), and checks the TaskRun was made after the promotion.
func waitTagged(t *testing.T, ns, image, tag string) {
	t.Helper()
	repo, digest, _ := strings.Cut(image, "@")
	name := generator.TagRunName("worker", digest)
	eventually(t, ns, "the tag TaskRun "+name+" of the promoted image", 2*time.Minute, func(ctx context.Context) (bool, error) {
		tr, err := clients.tekton.TektonV1().TaskRuns(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		if c := tr.Status.GetCondition(apis.ConditionSucceeded); c == nil || !c.IsTrue() {
			if c != nil && c.IsFalse() {
				return false, fmt.Errorf("the tag TaskRun %s failed: %s", name, c.Message)
			}
			return false, nil
		}
		mc, err := clients.mco.MachineconfigurationV1().MachineConfigs().Get(ctx, "zz-ocl-0-worker-os-image", metav1.GetOptions{})
		if err == nil && mc.Spec.OSImageURL == image && tr.CreationTimestamp.Before(&mc.CreationTimestamp) {
			return false, fmt.Errorf("the tag TaskRun %s was created before the MachineConfig promoting %s", name, image)
		}
		return true, nil
	})
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+repo+":"+tag).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != digest {
		t.Errorf("skopeo sees %s:%s at %q (%v), the status says %s", repo, tag, out, err, digest)
	}
}

// checkMetrics scrapes our controller's metrics (scrapeMetrics) and wants,
// for each metric prefix, a sample line that contains the given label.
func checkMetrics(t *testing.T, want map[string]string) {
	t.Helper()
	out := scrapeMetrics(t)
	for prefix, label := range want {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, prefix) && strings.Contains(line, label) {
				found = true
				break
			}
		}
		if !found {
			var ours []string
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "ocl_pipelines_") {
					ours = append(ours, line)
				}
			}
			t.Errorf("no metric %s...%s...; the controller exports:\n%s", prefix, label, strings.Join(ours, "\n"))
		}
	}
}

// TestInvalidInputsCreateNoRun: a PoolImage naming a missing pool gets a clear condition and no run.
func TestInvalidInputsCreateNoRun(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-invalid"
	newNamespace(t, ns)
	pi := builders.PoolImage(ns, "infra", builders.WithPushSpec("127.0.0.1:5000/os/infra:latest"))
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

	// Defect B3 of modelTraces: the pool is immutable (the CRD's x-kubernetes-validations rule, enforced by
	// the real API server): a rename would leave the old pool with our MachineConfig and pause.
	got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "infra", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.MachineConfigPool.Name = "worker"
	_, err = clients.layering.LayeringV1alpha1().PoolImages(ns).Update(ctx, got, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.machineConfigPool is immutable") {
		t.Fatalf("renaming spec.machineConfigPool.name: %v, want Invalid: spec.machineConfigPool is immutable", err)
	}
}

const (
	entitlementCanary = "CANARY-E2E-ENTITLEMENT-9c41"
	// pushCanary is the password in the push secret (the stack's registry ignores credentials).
	pushCanary = "CANARY-E2E-PUSH-PASSWORD-77d0"
)

// pushAuth is a dockerconfigjson whose credentials for the stack's registry carry pushCanary.
func pushAuth() []byte {
	auth := base64.StdEncoding.EncodeToString([]byte("e2e:" + pushCanary))
	return []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, os.Getenv("OCL_E2E_REGISTRY"), auth))
}

// TestUpgradeAndEntitlements: entitlements found on the cluster (the default etc-pki-entitlement
// Secret) are visible to RUN steps and absent from every layer; a new base image in the
// ControllerConfig (a cluster upgrade) rebuilds and promotes without any user action, and a
// controller restart does not build the same inputs again.
func TestUpgradeAndEntitlements(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-upgrade"
	noQuietPeriod(t)
	newNamespace(t, ns)
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "push"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{".dockerconfigjson": pushAuth()}},
		{ObjectMeta: metav1.ObjectMeta{Name: "etc-pki-entitlement"}, Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"entitlement.pem": []byte(entitlementCanary), "entitlement-key.pem": []byte(entitlementCanary)}},
	} {
		if _, err := clients.kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create Secret %s: %v", s.Name, err)
		}
	}
	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile("FROM configs AS final\n"+
		"RUN test -s /etc/pki/entitlement/entitlement.pem && echo visible > /etc/entitlement-was-visible && "+
		"echo e2e > /etc/e2e && ostree container commit\n"), builders.WithPushSpec(os.Getenv("OCL_E2E_REGISTRY")+"/os/worker:latest"), builders.WithPushSecret("push"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PoolImage: %v", err)
	}
	t.Cleanup(func() { deletePoolImage(t, ns) }) // a failure must not leave the pool claimed for the tests after
	first := promotedImage(t, ns, "the entitled build promoted")
	waitTagged(t, ns, first, "latest")
	if got := poolImage(t, ns).Status.LatestBuild.Inputs.Entitlements; len(got) == 0 || got[0] != "Secret/entitlement=etc-pki-entitlement" {
		t.Errorf("status does not show the cluster's entitlement wired in: %v", got)
	}
	cc, err := clients.mco.MachineconfigurationV1().ControllerConfigs().Get(ctx, "machine-config-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, first, cc.Spec.BaseOSContainerImage, map[string]string{
		"etc/entitlement-was-visible": "visible\n", "etc/e2e": "e2e\n"})
	checkSecretChannels(t, ns, entitlementCanary, pushCanary, base64.StdEncoding.EncodeToString([]byte("e2e:"+pushCanary)))

	// The upgrade: a new stand-in release base in the ControllerConfig.
	cmd := exec.Command("bash", filepath.Join(root, "test/images/build-standin-images.sh"), os.Getenv("OCL_E2E_REGISTRY"), "2")
	cmd.Env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+localState(t, "images/storage.conf"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build the new stand-in release: %v", err)
	}
	refs := strings.Fields(string(out))
	newBase, newExt := refs[0], refs[1]
	// A merge patch, as the MCO's own operator changes it; a typed update would send empty
	// fields the CRD refuses.
	patch := fmt.Sprintf(`{"spec":{"baseOSContainerImage":%q,"baseOSExtensionsContainerImage":%q}}`, newBase, newExt)
	if _, err := clients.mco.MachineconfigurationV1().ControllerConfigs().Patch(ctx, "machine-config-controller",
		types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("upgrade the ControllerConfig: %v", err)
	}
	// HoldPool (the default): the pool is paused, by the controller, while the image is rebuilt.
	eventually(t, ns, "the pool held for the rebuild", time.Minute, func(ctx context.Context) (bool, error) {
		pool, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := poolImage(t, ns).Status.GetCondition(v1alpha1.ConditionPoolHeld)
		return pool.Spec.Paused && pool.Annotations[layering.PausedByAnnotation] == ns+"/worker" &&
			pool.Annotations[layering.PausedForAnnotation] == newBase && c != nil && c.IsTrue() && c.Reason == v1alpha1.ReasonHeldForRebuild, nil
	})
	var upgraded string
	eventually(t, ns, "the image rebuilt on the new base and promoted", 3*time.Minute, func(ctx context.Context) (bool, error) {
		pi, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || !pi.Status.IsReady() || pi.Status.CurrentImage == first || pi.Status.CurrentInputs == nil {
			return false, err
		}
		upgraded = pi.Status.CurrentImage
		return pi.Status.CurrentInputs.BaseImage == newBase, nil
	})
	b := poolImage(t, ns).Status.LatestBuild
	pr, err := clients.tekton.TektonV1().PipelineRuns(ns).Get(ctx, b.PipelineRun, metav1.GetOptions{})
	if err != nil || pr.Annotations[layering.TriggerAnnotation] != "upgrade" {
		t.Errorf("the rebuild's trigger = %q (%v), want upgrade", pr.Annotations[layering.TriggerAnnotation], err)
	}
	if got := strings.Join(b.Inputs.Changed, ","); got != "baseImage,extensionsImage" {
		t.Errorf("latestBuild.inputs.changed = %q, want baseImage,extensionsImage", got)
	}
	if machineConfigImage(t) != upgraded {
		t.Errorf("MachineConfig osImageURL = %q, want %q", machineConfigImage(t), upgraded)
	}
	checkImage(t, upgraded, newBase, map[string]string{"etc/e2e": "e2e\n"})
	// Released after the promotion (the stack has no MCO rendering the pool: nothing to wait for).
	eventually(t, ns, "the pool released", time.Minute, func(ctx context.Context) (bool, error) {
		pool, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, annotated := pool.Annotations[layering.PausedByAnnotation]
		return !pool.Spec.Paused && !annotated && poolImage(t, ns).Status.GetCondition(v1alpha1.ConditionPoolHeld) == nil, nil
	})
	for _, reason := range []string{v1alpha1.ReasonPoolHeld, v1alpha1.ReasonPoolReleased} {
		if ev, err := clients.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + reason}); err != nil || len(ev.Items) != 1 {
			t.Errorf("%s events: %v (%v), want one", reason, ev, err)
		}
	}
	if c := poolImage(t, ns).Status.GetCondition(v1alpha1.ConditionFirstBootPullable); c == nil || !c.IsTrue() {
		t.Errorf("FirstBootPullable = %+v, want True: the stand-in global pull secret has credentials for the stack's registry", c)
	}

	runs, err := poolRuns(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	restartController(t, ns)
	if again, err := poolRuns(ctx, ns); err != nil || len(again) != len(runs) {
		t.Fatalf("after a restart the pool has %d runs, want %d: the same inputs were built again (%v)", len(again), len(runs), err)
	}
	if err := clients.layering.LayeringV1alpha1().PoolImages(ns).Delete(ctx, "worker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ns, "the PoolImage and its MachineConfig deleted", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && machineConfigImage(t) == "", nil
	})
}

// checkImage reads every layer of image from the registry: its first layers must be base's, the
// wanted files must have the wanted content, and no layer may hold the entitlement or push
// credentials canaries.
func checkImage(t *testing.T, image, base string, want map[string]string) {
	t.Helper()
	ref, err := name.NewDigest(image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", image, err)
	}
	baseRef, err := name.NewDigest(base, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	baseImg, err := remote.Image(baseRef)
	if err != nil {
		t.Fatalf("pull %s: %v", base, err)
	}
	ids, _ := img.ConfigFile()
	baseIDs, _ := baseImg.ConfigFile()
	if len(ids.RootFS.DiffIDs) <= len(baseIDs.RootFS.DiffIDs) {
		t.Fatalf("%s has %d layers, its base %d", image, len(ids.RootFS.DiffIDs), len(baseIDs.RootFS.DiffIDs))
	}
	for i, id := range baseIDs.RootFS.DiffIDs {
		if ids.RootFS.DiffIDs[i] != id {
			t.Errorf("layer %d of %s is not its base's", i, image)
		}
	}
	got := map[string]string{}
	if err := imagetest.EachFile(img, func(f imagetest.File) {
		for _, canary := range []string{entitlementCanary, pushCanary} {
			if bytes.Contains(f.Content, []byte(canary)) {
				t.Errorf("%s: secret material %s is in a layer, file %s", image, canary, f.Header.Name)
			}
		}
		got[f.Path] = string(f.Content)
	}); err != nil {
		t.Fatal(err)
	}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("%s: /%s = %q, want %q", image, f, got[f], w)
		}
	}
}
