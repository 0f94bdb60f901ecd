// Command scale measures the controller at scale on a real API server (test/stack API: etcd,
// kube-apiserver, the CRDs and config/, no node): N pools with a PoolImage each, PipelineRuns
// completed by this program's status updates (it plays Tekton), and the controller running as
// its ServiceAccount with the RBAC of config/. It prints `bench: scale.<name>=<value> goal=<value>`
// lines:
//
//	steady_state_seconds       controller start → every PoolImage built and promoted
//	resync_api_writes          writes (audit log) during a full resync with no changes; goal 0
//	reconcile_p50_ms, _p99_ms  per-reconcile latency of that resync (knative's log)
//	controller_rss_mb          resident memory at steady state (VmHWM: peak)
//	base_change_to_run_*       ControllerConfig base image change → each pool's PipelineRun exists
//	pipelinerun_create_bytes   a run as the controller creates it (.referenced: referencing its Pipeline)
//
// Usage: go run ./test/bench/scale [-pools 200] [-keep]. Needs root (as test/stack).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcoclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"knative.dev/pkg/apis"

	"github.com/ocl-pipelines/ocl-pipelines/controller/secrets"
	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	layeringclient "github.com/ocl-pipelines/ocl-pipelines/pkg/client/clientset/versioned"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
	"github.com/ocl-pipelines/ocl-pipelines/test/stack"
)

const (
	ns        = "bench"
	baseV1    = "quay.io/bench/rhcos@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	baseV2    = "quay.io/bench/rhcos@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	baseV3    = "quay.io/bench/rhcos@sha256:3333333333333333333333333333333333333333333333333333333333333333"
	extImage  = "quay.io/bench/ext@sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	serviceSA = "system:serviceaccount:ocl-pipelines:ocl-pipelines-controller"
)

type clients struct {
	kube     kubernetes.Interface
	layering layeringclient.Interface
	tekton   tektonclient.Interface
	mco      mcoclient.Interface
	dynamic  dynamic.Interface
}

type bench struct {
	root, stack string
	pools       int
	qps, burst  string
	c           clients
	controller  *exec.Cmd
	st          *stack.Stack
	// seen records when each run was first seen (the fake Tekton's watch), by name.
	mu   sync.Mutex
	seen map[string]time.Time
	// sized says the sizes of a created run were printed.
	sized bool
}

func main() {
	pools := flag.Int("pools", 200, "number of MachineConfigPools, each with a PoolImage")
	keep := flag.Bool("keep", false, "leave the API server running")
	qps := flag.String("kube-api-qps", "50", "the controller's client QPS (config/500-controller.yaml's)")
	burst := flag.String("kube-api-burst", "100", "the controller's client burst")
	flag.Parse()
	root, err := os.Getwd()
	must(err)
	b := &bench{root: root, stack: filepath.Join(os.TempDir(), "ocl-stack-bench"), pools: *pools, seen: map[string]time.Time{},
		qps: *qps, burst: *burst}
	if err := b.run(*keep); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func (b *bench) run(keep bool) error {
	st, err := stack.New(stack.Options{Root: b.root, Dir: b.stack})
	if err != nil {
		return err
	}
	b.st = st
	if err := st.Down(); err != nil {
		return err
	}
	if err := st.API(context.Background()); err != nil {
		return err
	}
	if !keep {
		defer func() { _ = st.Down() }()
	}
	cfg, err := st.RESTConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	b.c = clients{kubernetes.NewForConfigOrDie(cfg), layeringclient.NewForConfigOrDie(cfg), tektonclient.NewForConfigOrDie(cfg),
		mcoclient.NewForConfigOrDie(cfg), dynamic.NewForConfigOrDie(cfg)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.seed(ctx); err != nil {
		return err
	}
	go b.fakeTekton(ctx)

	fmt.Printf("bench: scale.pools=%d\nbench: scale.kube_api_qps=%s\nbench: scale.kube_api_burst=%s\n", b.pools, b.qps, b.burst)
	start := time.Now()
	if err := b.startController(); err != nil {
		return err
	}
	defer b.stopController()
	if err := b.waitPromoted(ctx, baseV1, 10*time.Minute); err != nil {
		return err
	}
	fmt.Printf("bench: scale.steady_state_seconds=%.1f\n", time.Since(start).Seconds())
	if p50, p99, n := reconcileLatency(filepath.Join(b.stack, "ocl-controller.log")); n > 0 {
		fmt.Printf("bench: scale.first_pass_reconcile_p50_ms=%.2f\nbench: scale.first_pass_reconcile_p99_ms=%.2f\n", p50, p99)
	}
	rss, hwm := memory(b.controller.Process.Pid)
	fmt.Printf("bench: scale.controller_rss_mb=%.1f\nbench: scale.controller_peak_rss_mb=%.1f\n", rss, hwm)

	// A full resync with nothing to do: once the controller has written nothing for 3 s (Ready
	// is written before the last of a promotion's writes, the tag TaskRun's), restart, wait for
	// every key's reconcile, count writes.
	if err := b.waitQuiet(3*time.Second, time.Minute); err != nil {
		return err
	}
	offset, _ := b.st.AuditOffset()
	b.stopController()
	if err := b.startController(); err != nil {
		return err
	}
	if err := b.waitReconciled(b.pools, 5*time.Minute); err != nil {
		return err
	}
	writes, byVerb := b.auditWrites(offset)
	fmt.Printf("bench: scale.resync_api_writes=%d goal=0\n", writes)
	if writes > 0 {
		fmt.Printf("bench: scale.resync_api_writes.detail=%s\n", strings.Join(byVerb, ","))
	}
	p50, p99, _ := reconcileLatency(filepath.Join(b.stack, "ocl-controller.log"))
	fmt.Printf("bench: scale.reconcile_p50_ms=%.2f\nbench: scale.reconcile_p99_ms=%.2f\n", p50, p99)

	// Two upgrades: the base image changes and each pool's run should exist at once. The first
	// with the shipped defaults (quiet period 15s: a change of the base images alone does not
	// wait for it), the second with quiet-period 0s, the figure of earlier versions.
	for _, u := range []struct{ base, name, quiet string }{{baseV2, "base_change_to_run", ""}, {baseV3, "base_change_to_run_quiet0", "0s"}} {
		if u.quiet != "" {
			patch := fmt.Sprintf(`{"data":{"quiet-period":%q}}`, u.quiet)
			if _, err := b.c.kube.CoreV1().ConfigMaps("ocl-pipelines").Patch(ctx, "config-ocl-pipelines", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				return err
			}
		}
		changed := time.Now()
		patch := fmt.Sprintf(`{"spec":{"baseOSContainerImage":%q,"osImageURL":%q}}`, u.base, u.base)
		if _, err := b.c.mco.MachineconfigurationV1().ControllerConfigs().Patch(ctx, "machine-config-controller", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("change the base image: %w", err)
		}
		lat, err := b.waitRuns(u.base, changed, 10*time.Minute)
		if err != nil {
			return err
		}
		goal := ""
		if u.quiet == "" {
			goal = " goal=2"
		}
		fmt.Printf("bench: scale.%s_p50_seconds=%.2f%s\n", u.name, percentile(lat, 50), goal)
		fmt.Printf("bench: scale.%s_p99_seconds=%.2f\n", u.name, percentile(lat, 99))
		fmt.Printf("bench: scale.%s_max_seconds=%.2f\n", u.name, percentile(lat, 100))
		if err := b.waitPromoted(ctx, u.base, 10*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// seed creates the namespace, a push secret, the ControllerConfig and N pools with a PoolImage
// each; the controller's settings stay the shipped ones (quiet period 15s).
func (b *bench) seed(ctx context.Context) error {
	if _, err := b.c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := b.c.kube.RbacV1().RoleBindings(ns).Create(ctx, secrets.RoleBinding(ns, "ocl-pipelines/ocl-pipelines-controller"), metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := b.c.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "push"},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	// Every "Reconcile succeeded" line is counted: no log sampling (the shipped config keeps the
	// first 100 lines of a kind per second, then 1 in 100).
	logging, err := b.c.kube.CoreV1().ConfigMaps("ocl-pipelines").Get(ctx, "config-logging", metav1.GetOptions{})
	if err != nil {
		return err
	}
	var zapCfg map[string]any
	if err := json.Unmarshal([]byte(logging.Data["zap-logger-config"]), &zapCfg); err != nil {
		return fmt.Errorf("config-logging: %w", err)
	}
	zapCfg["sampling"] = nil // null: knative starts from zap's production config, which samples
	zb, _ := json.Marshal(zapCfg)
	logging.Data["zap-logger-config"] = string(zb)
	if _, err := b.c.kube.CoreV1().ConfigMaps("ocl-pipelines").Update(ctx, logging, metav1.UpdateOptions{}); err != nil {
		return err
	}
	// Created from JSON: the CRD requires nullable fields the typed object would omit.
	var cc map[string]any
	must(json.Unmarshal([]byte(fmt.Sprintf(`{"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "ControllerConfig",
 "metadata": {"name": "machine-config-controller"},
 "spec": {"baseOSContainerImage": %q, "baseOSExtensionsContainerImage": %q, "osImageURL": %q,
  "releaseImage": "quay.io/bench/release:1", "additionalTrustBundle": null, "cloudProviderCAData": null,
  "cloudProviderConfig": "", "clusterDNSIP": "10.96.0.10", "images": {}, "ipFamilies": "IPv4",
  "dns": {"apiVersion": "config.openshift.io/v1", "kind": "DNS", "spec": {}},
  "infra": {"apiVersion": "config.openshift.io/v1", "kind": "Infrastructure", "spec": {}},
  "kubeAPIServerServingCAData": "c3RhbmQtaW4=", "rootCAData": "c3RhbmQtaW4=",
  "network": {"mtuMigration": null}, "proxy": null}}`, baseV1, extImage, baseV1)), &cc))
	gvr := schema.GroupVersionResource{Group: "machineconfiguration.openshift.io", Version: "v1", Resource: "controllerconfigs"}
	if _, err := b.c.dynamic.Resource(gvr).Create(ctx, &unstructured.Unstructured{Object: cc}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the ControllerConfig: %w", err)
	}
	sem := make(chan struct{}, 32)
	errs := make(chan error, b.pools)
	var wg sync.WaitGroup
	for i := 0; i < b.pools; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(name string) {
			defer wg.Done()
			defer func() { <-sem }()
			pool := &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: mcfgv1.MachineConfigPoolSpec{
				MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"machineconfiguration.openshift.io/role": name}},
				NodeSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + name: ""}}}}
			if _, err := b.c.mco.MachineconfigurationV1().MachineConfigPools().Create(ctx, pool, metav1.CreateOptions{}); err != nil {
				errs <- fmt.Errorf("create pool %s: %w", name, err)
				return
			}
			pi := builders.PoolImage(ns, name, builders.WithContainerfile("FROM configs AS final\nRUN echo "+name+" > /etc/pool\n"),
				builders.WithPushSecret("push"))
			if _, err := b.c.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
				errs <- fmt.Errorf("create PoolImage %s: %w", name, err)
			}
		}(fmt.Sprintf("pool-%04d", i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}

// fakeTekton completes every new PipelineRun at once with the results a real run reports, and
// records when it first saw each run.
func (b *bench) fakeTekton(ctx context.Context) {
	w, err := b.c.tekton.TektonV1().PipelineRuns(ns).Watch(ctx, metav1.ListOptions{})
	must(err)
	for ev := range w.ResultChan() {
		pr, ok := ev.Object.(*tektonv1.PipelineRun)
		if !ok || ev.Type != watch.Added {
			continue
		}
		b.mu.Lock()
		b.seen[pr.Name] = time.Now()
		first := !b.sized
		b.sized = true
		b.mu.Unlock()
		if first {
			b.printSizes(pr)
		}
		go func(pr *tektonv1.PipelineRun) {
			t := metav1.Now()
			pr.Status.StartTime, pr.Status.CompletionTime = &t, &t
			pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"})
			var url string
			for _, p := range pr.Spec.Params {
				if p.Name == "IMAGE" {
					url = p.Value.StringVal
				}
			}
			pr.Status.Results = []tektonv1.PipelineRunResult{
				{Name: contract.ResultImageURL, Value: *tektonv1.NewStructuredValues(url)},
				{Name: contract.ResultImageDigest, Value: *tektonv1.NewStructuredValues("sha256:" + strings.Repeat("a", 64))},
			}
			if _, err := b.c.tekton.TektonV1().PipelineRuns(ns).UpdateStatus(ctx, pr, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "scale: complete %s: %v\n", pr.Name, err)
			}
		}(pr.DeepCopy())
	}
}

// printSizes prints the size of a run as the controller creates it (embedding its pipeline)
// and, for comparison, of the same run referencing its Pipeline by name instead.
func (b *bench) printSizes(pr *tektonv1.PipelineRun) {
	created, err := json.Marshal(pr)
	must(err)
	fmt.Printf("bench: scale.pipelinerun_create_bytes=%d\n", len(created))
	if pr.Spec.PipelineSpec != nil {
		ref := pr.DeepCopy()
		ref.Spec.PipelineSpec, ref.Spec.PipelineRef = nil, &tektonv1.PipelineRef{Name: pr.Labels["tekton.dev/pipeline"]}
		referenced, err := json.Marshal(ref)
		must(err)
		fmt.Printf("bench: scale.pipelinerun_create_bytes.referenced=%d\n", len(referenced))
	}
}

func (b *bench) startController() error {
	bin := filepath.Join(b.stack, "ocl-controller")
	if _, err := os.Stat(bin); err != nil {
		build := exec.Command("go", "build", "-o", bin, "./cmd/controller")
		build.Dir = b.root
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build the controller: %w\n%s", err, out)
		}
	}
	logf, err := os.Create(filepath.Join(b.stack, "ocl-controller.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--kubeconfig="+filepath.Join(b.stack, "controller.kubeconfig"), "--health-probes=false",
		"--kube-api-qps="+b.qps, "--kube-api-burst="+b.burst)
	cmd.Env = append(os.Environ(), "METRICS_PROMETHEUS_HOST=127.0.0.1", "METRICS_PROMETHEUS_PORT=9092", "PROFILING_PORT=18009")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	b.controller = cmd
	return nil
}

func (b *bench) stopController() {
	if b.controller == nil || b.controller.Process == nil {
		return
	}
	_ = b.controller.Process.Signal(syscall.SIGTERM)
	_ = b.controller.Wait()
	b.controller = nil
}

// waitPromoted waits, on a watch, until every PoolImage's promoted image is built on base.
func (b *bench) waitPromoted(ctx context.Context, base string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := map[string]bool{}
	list, err := b.c.layering.LayeringV1alpha1().PoolImages(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	check := func(pi *v1alpha1.PoolImage) {
		if pi.Status.IsReady() && pi.Status.CurrentInputs != nil && pi.Status.CurrentInputs.BaseImage == base {
			done[pi.Name] = true
		}
	}
	for i := range list.Items {
		check(&list.Items[i])
	}
	w, err := b.c.layering.LayeringV1alpha1().PoolImages(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	for len(done) < b.pools {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch closed with %d/%d PoolImages promoted on %s", len(done), b.pools, base)
			}
			if pi, ok := ev.Object.(*v1alpha1.PoolImage); ok {
				check(pi)
			}
		case <-ctx.Done():
			return fmt.Errorf("%d/%d PoolImages promoted on %s after %s", len(done), b.pools, base, timeout)
		}
	}
	return nil
}

// waitReconciled follows the controller's log until n distinct keys reconciled successfully.
func (b *bench) waitReconciled(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, _, got := reconcileLatency(filepath.Join(b.stack, "ocl-controller.log")); got >= n {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // polling a log file; the program, not a test, waits
	}
	return fmt.Errorf("the restarted controller did not reconcile %d PoolImages in %s", n, timeout)
}

// waitRuns waits until every pool has a run of base (found by its params) and returns the
// latency of each from changed, as the fake Tekton's watch first saw it.
func (b *bench) waitRuns(base string, changed time.Time, timeout time.Duration) ([]float64, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		runs, err := b.c.tekton.TektonV1().PipelineRuns(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		var lat []float64
		b.mu.Lock()
		for _, pr := range runs.Items {
			for _, p := range pr.Spec.Params {
				if p.Name == "BASE_IMAGE" && p.Value.StringVal == base {
					if at, ok := b.seen[pr.Name]; ok {
						lat = append(lat, at.Sub(changed).Seconds())
					}
				}
			}
		}
		b.mu.Unlock()
		if len(lat) >= b.pools {
			return lat, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("not every pool has a run of %s after %s", base, timeout)
}

// reconcileLatency reads knative's "Reconcile succeeded" lines: p50 and p99 in milliseconds and
// the number of distinct keys.
func reconcileLatency(path string) (p50, p99 float64, keys int) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0
	}
	defer func() { _ = f.Close() }() // read only: nothing is lost
	var d []float64
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Message  string  `json:"message"`
			Key      string  `json:"knative.dev/key"`
			Duration float64 `json:"duration"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Message != "Reconcile succeeded" {
			continue
		}
		d = append(d, l.Duration*1000)
		seen[l.Key] = true
	}
	return percentile(d, 50), percentile(d, 99), len(seen)
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// auditWrites counts the controller's writes in the audit log after offset, leader election
// leases and events aside.
// waitQuiet waits until the audit log records no write for quiet, for at most limit.
func (b *bench) waitQuiet(quiet, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		offset, _ := b.st.AuditOffset()
		time.Sleep(quiet)
		if n, _ := b.auditWrites(offset); n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the controller still writes after %s", limit)
		}
	}
}

func (b *bench) auditWrites(offset int64) (int, []string) {
	n := 0
	by := map[string]int{}
	_, err := b.st.Audit(offset, func(e stack.AuditEvent) {
		if e.User.Username != stack.ControllerUser || e.ObjectRef == nil || e.Stage != "ResponseComplete" {
			return
		}
		switch e.Verb {
		case "create", "update", "patch", "delete":
		default:
			return
		}
		if e.ObjectRef.Resource == "leases" || e.ObjectRef.Resource == "events" {
			return
		}
		n++
		by[e.Verb+" "+e.ObjectRef.Resource+"/"+e.ObjectRef.Subresource]++
	})
	if err != nil {
		return -1, nil
	}
	var out []string
	for k, v := range by {
		out = append(out, k+"="+strconv.Itoa(v))
	}
	sort.Strings(out)
	return n, out
}

// memory returns the process's resident and peak resident memory in MB.
func memory(pid int) (rss, hwm float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}
