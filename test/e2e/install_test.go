//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// The controller as the stack runs it: the release's Deployment (the default) or a
// host process (OCL_CONTROLLER=process, for debugging).
const (
	systemNamespace = "ocl-pipelines"
	controllerApp   = "app.kubernetes.io/name=ocl-pipelines-controller"
	metricsService  = "ocl-pipelines-controller-metrics"
)

// hostProcess reports whether the local stack runs the controller as a host process
// (OCL_CONTROLLER=process; an attached cluster runs the release's Deployment).
func hostProcess() bool { return cluster.Local() && cluster.Process }

// pastControllerLogs keeps the logs of controller pods the tests deleted (restarts, failovers):
// checkSecretChannels reads every line the controller ever logged.
var pastControllerLogs [][]byte

// controllerPods lists the controller's pods.
func controllerPods(ctx context.Context) ([]corev1.Pod, error) {
	pods, err := clients.kube.CoreV1().Pods(systemNamespace).List(ctx, metav1.ListOptions{LabelSelector: controllerApp})
	if err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// podLog is the log of a controller pod's container, its previous instance's first if it
// restarted.
func podLog(ctx context.Context, pod corev1.Pod) []byte {
	var out []byte
	for _, c := range pod.Status.ContainerStatuses {
		if c.RestartCount > 0 {
			b, _ := clients.kube.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: c.Name, Previous: true}).DoRaw(ctx)
			out = append(out, b...)
		}
	}
	b, _ := clients.kube.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "controller"}).DoRaw(ctx)
	return append(out, b...)
}

// controllerLog is everything the controller has logged: the host process's log file, or the
// logs of every controller pod, the deleted ones included (as far as the tests saved them).
func controllerLog() ([]byte, error) {
	if hostProcess() {
		return cluster.ProcessLog("ocl-controller")
	}
	ctx := context.Background()
	pods, err := controllerPods(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the controller's pods: %w", err)
	}
	out := bytes.Join(pastControllerLogs, nil)
	for _, p := range pods {
		out = append(out, podLog(ctx, p)...)
	}
	return out, nil
}

// scrapeMetrics is what Prometheus sees of the controller: the host process's endpoint, or every
// endpoint of the metrics Service (the leader's ocl_pipelines_* series and the standby's), as
// Prometheus scrapes a Service's endpoints one by one.
func scrapeMetrics(t *testing.T) string {
	t.Helper()
	if hostProcess() {
		return curl(t, "http://127.0.0.1:9092/metrics")
	}
	ctx := context.Background()
	slices, err := clients.kube.DiscoveryV1().EndpointSlices(systemNamespace).List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + metricsService})
	if err != nil {
		t.Fatalf("the metrics Service's endpoints: %v", err)
	}
	var out strings.Builder
	n := 0
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, addr := range e.Addresses {
				out.WriteString(curl(t, fmt.Sprintf("http://%s:9090/metrics", addr)))
				n++
			}
		}
	}
	if n == 0 {
		t.Fatalf("the metrics Service %s has no ready endpoint", metricsService)
	}
	return out.String()
}

func curl(t *testing.T, url string) string {
	t.Helper()
	out, err := exec.Command("curl", "-fsS", "--max-time", "10", url).CombinedOutput()
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, out)
	}
	return string(out)
}

// restartController stops every instance of the controller (its in-memory caches gone), starts
// it again and waits until it has reconciled the PoolImage of ns: the host process killed and
// started, or every pod of the Deployment deleted and replaced.
func restartController(t *testing.T, ns string) {
	t.Helper()
	reconciled := func(log []byte) bool {
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, `"knative.dev/key":"`+ns+`/worker"`) && strings.Contains(line, "Reconcile succeeded") {
				return true
			}
		}
		return false
	}
	if hostProcess() {
		if err := cluster.StopController(); err != nil {
			t.Fatal(err)
		}
		if cluster.Running("ocl-controller") {
			t.Fatal("the controller's process still runs after it was stopped")
		}
		if err := cluster.RestartController(context.Background()); err != nil {
			t.Fatalf("restart: %v", err)
		}
		eventually(t, ns, "the restarted controller reconciled the PoolImage", time.Minute, func(ctx context.Context) (bool, error) {
			// The log starts afresh with the restart; knative logs one line per successful reconcile.
			b, err := cluster.ProcessLog("ocl-controller")
			return reconciled(b), err
		})
		return
	}
	ctx := context.Background()
	old, err := controllerPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{}
	for _, p := range old {
		pastControllerLogs = append(pastControllerLogs, podLog(ctx, p))
		gone[p.Name] = true
		if err := clients.kube.CoreV1().Pods(systemNamespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete controller pod %s: %v", p.Name, err)
		}
	}
	eventually(t, ns, "a new controller pod leads and reconciled the PoolImage", 3*time.Minute, func(ctx context.Context) (bool, error) {
		leader, err := cluster.Leader(ctx)
		if err != nil || leader == "" || gone[leader] {
			return false, err
		}
		pods, err := controllerPods(ctx)
		if err != nil {
			return false, err
		}
		for _, p := range pods {
			if p.Name == leader {
				return reconciled(podLog(ctx, p)), nil
			}
		}
		return false, nil
	})
}

// TestInstalledFromRelease: the stack installed dist/release.yaml alone (test/stack: the
// images built by ko and pushed to its registry, hack/release.sh, kubectl apply -f; the only
// edits are the stack's buildah image and its plain-HTTP registry, as quay.io cannot be reached
// here). The controller runs as that release's Deployment: its pods run the release's image,
// pinned by digest, as non-root with a read-only root filesystem; a standby is ready; /metrics
// answers through the Service; and a PoolImage builds with the release's tools image and is
// promoted.
func TestInstalledFromRelease(t *testing.T) {
	if hostProcess() {
		t.Skip("OCL_CONTROLLER=process: the stack runs the controller as a host process, not the release")
	}
	ctx := context.Background()
	release, err := os.ReadFile(localState(t, "release.yaml"))
	if err != nil {
		t.Fatalf("the stack's release: %v", err)
	}
	refs := map[string]string{}
	for _, m := range regexp.MustCompile(`[0-9.:]+/ocl-pipelines/(controller|ocl-step)(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}`).FindAllStringSubmatch(string(release), -1) {
		refs[m[1]] = m[0]
	}
	if refs["controller"] == "" || refs["ocl-step"] == "" {
		t.Fatalf("release.yaml pins %v, want the controller and ocl-step images by digest", refs)
	}
	if bytes.Contains(release, []byte("ko://")) {
		t.Fatal("release.yaml has an unresolved ko:// reference")
	}
	// The release's GitOps Tasks and Pipeline default TOOLS_IMAGE to its own ocl-step image.
	tekton, err := os.ReadFile(localState(t, "tekton.yaml"))
	if err != nil {
		t.Fatalf("the stack's release has no tekton.yaml: %v", err)
	}
	if n := bytes.Count(tekton, []byte("default: "+refs["ocl-step"]+"\n")); n < 5 || bytes.Contains(tekton, []byte("ghcr.io")) {
		t.Errorf("tekton.yaml defaults TOOLS_IMAGE to %s %d times (want every Task and the Pipeline), ghcr.io present: %v",
			refs["ocl-step"], n, bytes.Contains(tekton, []byte("ghcr.io")))
	}

	pods, err := controllerPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, p := range pods {
		c := p.Spec.Containers[0]
		if c.Image != refs["controller"] {
			t.Errorf("pod %s runs %s, want the release's %s", p.Name, c.Image, refs["controller"])
		}
		sc := c.SecurityContext
		psc := p.Spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("pod %s: runAsNonRoot %v, readOnlyRootFilesystem %v: want both", p.Name, psc, sc)
		}
		for _, cs := range p.Status.ContainerStatuses {
			// The kubelet refuses to start a runAsNonRoot container whose image runs as root, so a
			// ready container is a non-root one; its image ID is the release's digest.
			if cs.Ready {
				ready++
			}
			if !strings.HasSuffix(cs.ImageID, refs["controller"][strings.Index(refs["controller"], "@"):]) {
				t.Errorf("pod %s container image ID %s, want the release's digest", p.Name, cs.ImageID)
			}
		}
	}
	if ready < 2 {
		t.Errorf("%d ready controller pods, want 2 (a leader and a standby)", ready)
	}
	leader, err := cluster.Leader(ctx)
	if err != nil || leader == "" {
		t.Errorf("no controller pod leads (%v)", err)
	}

	// /metrics through the Service's cluster IP (kube-proxy), as any client in the cluster.
	svc, err := clients.kube.CoreV1().Services(systemNamespace).Get(ctx, metricsService, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := curl(t, fmt.Sprintf("http://%s:9090/metrics", svc.Spec.ClusterIP)); !strings.Contains(m, "# TYPE") {
		t.Errorf("GET /metrics through the Service %s: no metrics:\n%.500s", svc.Spec.ClusterIP, m)
	}

	// The leader's memory at rest, then its peak while the build runs (sampled every second).
	rest := leaderRSS(t)
	peak := rest
	stop := make(chan struct{})
	sampled := make(chan struct{})
	var once sync.Once
	stopSampling := func() { once.Do(func() { close(stop) }); <-sampled }
	defer stopSampling()
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
				if m := leaderRSS(nil); m > peak {
					peak = m
				}
			}
		}
	}()

	ns := "e2e-release"
	noQuietPeriod(t)
	newNamespace(t, ns)
	createPushSecret(t, ns, pushAuth())
	createWorkerImage(t, ns, "FROM configs AS final\nRUN echo released > /etc/released && ostree container commit\n", "/os/release:latest")
	promotedImage(t, ns, "built with the release's tools image and promoted")
	stopSampling()
	t.Logf("controller memory (leader, resident): %.1f MB at rest, %.1f MB peak during a build", rest/1e6, peak/1e6)
	fmt.Printf("bench: controller.rss_rest_mb=%.1f\nbench: controller.rss_build_peak_mb=%.1f\n", rest/1e6, peak/1e6)
	// Every Go stage ran the release's ocl-step image.
	buildPods, err := clients.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stages := 0
	for _, p := range buildPods.Items {
		for _, c := range p.Spec.Containers {
			if slicesContains(c.Command, "ocl-step") || strings.Contains(strings.Join(c.Args, " "), "ocl-step") {
				stages++
				if c.Image != refs["ocl-step"] {
					t.Errorf("%s/%s runs %s, want the release's %s", p.Name, c.Name, c.Image, refs["ocl-step"])
				}
			}
		}
	}
	if stages == 0 {
		t.Error("no step ran ocl-step")
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v || strings.HasSuffix(x, "/"+v) {
			return true
		}
	}
	return false
}

// TestLeaderFailover: the leading controller pod is deleted in the middle of a build (the node
// drained, the pod evicted); the standby takes the lease within its duration, follows the build
// to its end and promotes it once: one PipelineRun, one BuildSucceeded, the status complete.
// It logs the takeover time (`failover: takeover=…s`).
func TestLeaderFailover(t *testing.T) {
	if hostProcess() {
		t.Skip("OCL_CONTROLLER=process: one host process, no standby")
	}
	ctx := context.Background()
	ns := "e2e-failover"
	noQuietPeriod(t)
	newNamespace(t, ns)
	createPushSecret(t, ns, pushAuth())
	// A build long enough to be in the middle of when the leader goes.
	createWorkerImage(t, ns, "FROM configs AS final\nRUN sleep 30 && echo failover > /etc/failover && ostree container commit\n", "/os/failover:latest")
	buildRunning(t, ns)
	leader, err := cluster.Leader(ctx)
	if err != nil || leader == "" {
		t.Fatalf("no leader before the failover (%v)", err)
	}
	pods, err := controllerPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if p.Name == leader {
			pastControllerLogs = append(pastControllerLogs, podLog(ctx, p))
		}
	}
	deleted := time.Now()
	if err := clients.kube.CoreV1().Pods(systemNamespace).Delete(ctx, leader, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete the leader %s: %v", leader, err)
	}
	var next string
	eventually(t, ns, "another pod takes the lease", 2*time.Minute, func(ctx context.Context) (bool, error) {
		var err error
		next, err = cluster.Leader(ctx)
		return next != "" && next != leader, err
	})
	takeover := time.Since(deleted)
	t.Logf("failover: takeover=%.1fs (from %s to %s; lease duration 60s)", takeover.Seconds(), leader, next)
	unfinished(t, ns, "the standby led")
	if takeover > 60*time.Second {
		t.Errorf("the standby took %s to lead, more than the lease duration", takeover)
	}
	image := promotedImage(t, ns, "the build followed by the new leader and promoted")
	runs, err := poolRuns(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Errorf("%d PipelineRuns, want the one the first leader created", len(runs))
	}
	got := poolImage(t, ns)
	if got.Status.LatestBuild == nil || len(runs) == 0 || got.Status.LatestBuild.PipelineRun != runs[0].Name || got.Status.CurrentImage != image {
		t.Errorf("status after the failover: latestBuild %+v, currentImage %s; want the run %v and its image", got.Status.LatestBuild, got.Status.CurrentImage, runs)
	}
	events, err := clients.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + v1alpha1.ReasonBuildSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events.Items {
		n += int(max(e.Count, 1))
	}
	if n != 1 {
		t.Errorf("%d BuildSucceeded events, want 1 (the outcome reported once across the failover)", n)
	}
}

// buildRunning waits until the build task of ns's current run runs.
func buildRunning(t *testing.T, ns string) {
	t.Helper()
	eventually(t, ns, "the build task runs", 3*time.Minute, func(ctx context.Context) (bool, error) {
		trs, err := clients.tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, tr := range trs.Items {
			if strings.HasSuffix(tr.Name, "-build") && tr.Status.StartTime != nil && tr.Status.CompletionTime == nil {
				return true, nil
			}
		}
		return false, nil
	})
}

// controllerImage is the image of the controller's Deployment in a release file.
func controllerImage(t *testing.T, release string) string {
	t.Helper()
	b, err := os.ReadFile(release)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`[0-9.:]+/ocl-pipelines/controller(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}`).Find(b)
	if m == nil {
		t.Fatalf("%s names no controller image by digest", release)
	}
	return string(m)
}

// reconciles counts the lines in which the leading pod reports a successful reconcile of ns's
// PoolImage.
func reconciles(ctx context.Context, ns string) (int, error) {
	leader, err := cluster.Leader(ctx)
	if err != nil || leader == "" {
		return 0, err
	}
	pods, err := controllerPods(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range pods {
		if p.Name == leader {
			n := 0
			for _, line := range strings.Split(string(podLog(ctx, p)), "\n") {
				if strings.Contains(line, `"knative.dev/key":"`+ns+`/worker"`) && strings.Contains(line, "Reconcile succeeded") {
					n++
				}
			}
			return n, nil
		}
	}
	return 0, nil
}

// TestControllerUpgrade: the controller's Deployment is rolled from the stack's release to the
// next one (built from the same tree as another version: another image), the way a user
// upgrades (kubectl apply --server-side of their overlay of the new release), while a pool is
// held for a cluster upgrade and its rebuild runs. The new version follows that build: one run,
// promoted, the hold ended with PoolReleased as it would have; and it rebuilds nothing whose
// inputs did not change (upgrading the controller must never reboot the fleet).
func TestControllerUpgrade(t *testing.T) {
	if hostProcess() {
		t.Skip("OCL_CONTROLLER=process: no Deployment to upgrade")
	}
	ctx := context.Background()
	ns := "e2e-ctl-upgrade"
	next := localState(t, "release-next.yaml") // the next release is built on the local stack
	noQuietPeriod(t)
	promotedWorker(t, ns, "FROM configs AS final\nRUN sleep 90 && echo upgraded > /etc/upgraded && ostree container commit\n", "/os/ctl-upgrade:latest")

	// The next release and the overlay a user keeps their settings in (stack.Overlay).
	cmd := exec.Command("bash", filepath.Join(root, "hack/release.sh"), "v0.0.1-next", os.Getenv("OCL_E2E_REGISTRY")+"/ocl-pipelines", next)
	cmd.Env = append(os.Environ(), "OCL_PLATFORMS=linux/"+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the next release: %v\n%s", err, out)
	}
	overlay := localState(t, "install-next")
	if err := cluster.Overlay(overlay, next); err != nil {
		t.Fatalf("overlay: %v", err)
	}
	was, want := controllerImage(t, localState(t, "release.yaml")), controllerImage(t, next)
	if was == want {
		t.Fatalf("the next release has the same controller image %s: nothing to upgrade", want)
	}

	// A cluster upgrade: the pool held while its image is rebuilt.
	base8, ext8, _ := standinRelease(t, "8")
	runsBefore := countRuns(t, ns)
	releasedBefore := countEvents(t, ns, v1alpha1.ReasonPoolReleased)
	upgradeTo(t, base8, ext8)
	heldWhileBuilding(t, ns)

	// Roll the controller to the next release.
	keepControllerLogs(t)
	rolled := time.Now()
	if out, err := exec.Command("kubectl", "apply", "--server-side", "--force-conflicts", "-k", overlay).CombinedOutput(); err != nil {
		t.Fatalf("apply the next release: %v\n%s", err, out)
	}
	// The release resets the ConfigMap to its settings; this test's quiet period again.
	setConfig(t, map[string]string{"quiet-period": "0s"})
	eventually(t, ns, "the Deployment rolled to the next release, a new pod leading", 5*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := controllerPods(ctx)
		if err != nil {
			return false, err
		}
		ready := 0
		for _, p := range pods {
			if p.Spec.Containers[0].Image != want {
				return false, nil
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Ready {
					ready++
				}
			}
		}
		leader, err := cluster.Leader(ctx)
		if err != nil || ready < 2 {
			return false, err
		}
		for _, p := range pods {
			if p.Name == leader {
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("controller upgrade: rolled and a new leader in %s", time.Since(rolled).Round(time.Second))
	unfinished(t, ns, "the new version led")

	promotedOn(t, ns, base8)
	eventually(t, ns, "the hold ended", 2*time.Minute, func(ctx context.Context) (bool, error) {
		pool, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && !pool.Spec.Paused, err
	})
	if n := countEvents(t, ns, v1alpha1.ReasonPoolReleased) - releasedBefore; n != 1 {
		t.Errorf("%d PoolReleased events, want 1", n)
	}
	// Nothing rebuilt: make the new leader reconcile again, and count the runs after it did.
	n0, err := reconciles(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	update(t, ns, func(p *v1alpha1.PoolImage) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations["e2e.ocl-pipelines.dev/touch"] = "after-upgrade"
	})
	eventually(t, ns, "the new leader reconciled the PoolImage again", time.Minute, func(ctx context.Context) (bool, error) {
		n, err := reconciles(ctx, ns)
		return n > n0, err
	})
	if n := countRuns(t, ns) - runsBefore; n != 1 {
		t.Errorf("%d runs since the cluster upgrade, want 1: the controller upgrade rebuilt inputs that did not change", n)
	}
}

// promotedWorker makes ns a build namespace with a push secret, starts the stand-in renderer, and
// creates PoolImage worker with containerfile, pushing to repo (a path on the stack's
// registry); it returns the image promoted on the cluster's current base.
func promotedWorker(t *testing.T, ns, containerfile, repo string) string {
	t.Helper()
	newNamespace(t, ns)
	createPushSecret(t, ns, pushAuth())
	startRenderer(t)
	createWorkerImage(t, ns, containerfile, repo)
	cc, err := clients.mco.MachineconfigurationV1().ControllerConfigs().Get(context.Background(), "machine-config-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return promotedOn(t, ns, cc.Spec.BaseOSContainerImage)
}

// keepControllerLogs saves the logs of the controller's pods before they go (pastControllerLogs).
func keepControllerLogs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	pods, err := controllerPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		pastControllerLogs = append(pastControllerLogs, podLog(ctx, p))
	}
}

// heldWhileBuilding waits until pool worker is paused (the hold of a cluster upgrade) and ns's
// rebuild runs.
func heldWhileBuilding(t *testing.T, ns string) {
	t.Helper()
	eventually(t, ns, "the pool held", time.Minute, func(ctx context.Context) (bool, error) {
		pool, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && pool.Spec.Paused, err
	})
	buildRunning(t, ns)
}

// leaderRSS is the leading controller pod's resident memory (process_resident_memory_bytes of
// its /metrics), 0 when it cannot be read; t, when not nil, fails the test then.
func leaderRSS(t *testing.T) float64 {
	ctx := context.Background()
	leader, err := cluster.Leader(ctx)
	if err != nil || leader == "" {
		if t != nil {
			t.Fatalf("no leader (%v)", err)
		}
		return 0
	}
	pod, err := clients.kube.CoreV1().Pods(systemNamespace).Get(ctx, leader, metav1.GetOptions{})
	if err != nil {
		if t != nil {
			t.Fatal(err)
		}
		return 0
	}
	out, err := exec.Command("curl", "-fsS", "--max-time", "5", "http://"+pod.Status.PodIP+":9090/metrics").Output()
	if err != nil {
		if t != nil {
			t.Fatalf("metrics of %s: %v", leader, err)
		}
		return 0
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				return -1
			}
			return f
		}
	}
	if t != nil {
		t.Fatalf("%s exports no process_resident_memory_bytes", leader)
	}
	return 0
}

// createWorkerImage creates the PoolImage "worker" of pool worker in ns, pushing to the stack's
// registry under repo with the namespace's push secret, and deletes it when the test ends.
func createWorkerImage(t *testing.T, ns, containerfile, repo string) {
	t.Helper()
	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile(containerfile), builders.WithPushSpec(os.Getenv("OCL_E2E_REGISTRY")+repo), builders.WithPushSecret("push"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(context.Background(), pi, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePoolImage(t, ns) })
}

// unfinished fails the test when ns's current build (the newest run) already ended at the moment
// named by when: the handover the test is about did not happen in the middle of the build.
func unfinished(t *testing.T, ns, when string) {
	t.Helper()
	runs, err := poolRuns(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) == 0 {
		t.Fatalf("no PipelineRun in %s when %s", ns, when)
	}
	newest := runs[0]
	for _, r := range runs[1:] {
		if r.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = r
		}
	}
	if newest.IsDone() {
		t.Fatalf("PipelineRun %s had finished when %s: the handover was not in the middle of the build (make the build longer)", newest.Name, when)
	}
}
