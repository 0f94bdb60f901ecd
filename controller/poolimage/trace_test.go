package poolimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgotesting "k8s.io/client-go/testing"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// trace is a recorded stretch of cluster life (testdata/month.trace.yaml).
type trace struct {
	Duration      metav1.Duration `json:"duration"`
	BuildDuration metav1.Duration `json:"buildDuration"`
	Events        []traceEvent    `json:"events"`
}

type traceEvent struct {
	At    metav1.Duration `json:"at"`
	Kind  string          `json:"kind"`
	Burst bool            `json:"burst,omitempty"`
}

// traceResult is what a replay measured, with the baselines computed on the same trace.
type traceResult struct {
	realChanges     int           // changes of the image's inputs (a burst counts once)
	builds          int           // PipelineRuns the controller created
	duplicateBuilds int           // of those, runs of inputs already built
	rollouts        int           // changes of the pool's osImageURL (each a drain and reboot of every node)
	staleBeyond     time.Duration // after upgrades: time on an image older than the release, beyond the build
	upgrades        int

	// The MCO's on-cluster layering (MachineOSConfig, 4.19+), from its build controller
	// (pkg/controller/build): a MachineOSBuild per rendered config (every MachineConfig edit, a
	// MachineOSConfig edit, an upgrade), the in-flight build deleted when a newer one starts;
	// each completed build is a new image the pool rolls out.
	mcoStarted, mcoCompleted int
	// A nightly cron that rebuilds and pushes at midnight, without and with a check that the
	// inputs changed since its last build; every build has a new digest (build timestamps), so
	// every build is a rollout.
	nightlyBuilds, nightlyCheckedBuilds int
	nightlyStale                        time.Duration // the cron's time on an older image after upgrades, beyond the build
}

func loadTrace(tb testing.TB) trace {
	tb.Helper()
	b, err := os.ReadFile("testdata/month.trace.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	var tr trace
	if err := yaml.UnmarshalStrict(b, &tr); err != nil {
		tb.Fatalf("testdata/month.trace.yaml: %v", err)
	}
	return tr
}

// happening is something due at a time of the simulation: a trace event, the end of a build
// (what Tekton would report), or a re-enqueue the reconciler asked for (the quiet period).
type happening struct {
	at    time.Time
	seq   int
	event *traceEvent
	run   string // a run to complete
}

// sim is a cluster's API state; every reconcile builds the reconciler anew from it (fake clients
// and listers over these objects), so the controller carries nothing between reconciles: each
// one is a restart.
type sim struct {
	tb      testing.TB
	cfg     *config.Config
	now     time.Time
	objs    map[string]runtime.Object
	queue   []happening
	seq     int
	build   time.Duration
	created map[string]string // run name -> inputs hash, for runs the controller created
	edits   int
	bases   int
	reruns  int
	renders int
	// rollouts counts changes of the pool's MachineConfig osImageURL; lastImage is the latest.
	rollouts  int
	lastImage string
	// pendingBase is the base image of the latest upgrade until the pool's image is built on it.
	pendingBase string
	upgradeAt   time.Time
	stale       time.Duration
}

func objKey(o runtime.Object) string {
	m := o.(metav1.Object)
	return fmt.Sprintf("%T/%s/%s", o, m.GetNamespace(), m.GetName())
}

func (s *sim) put(o runtime.Object) { s.objs[objKey(o)] = o }

func (s *sim) list() []runtime.Object {
	keys := make([]string, 0, len(s.objs))
	for k := range s.objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]runtime.Object, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.objs[k].DeepCopyObject())
	}
	return out
}

func (s *sim) schedule(h happening) {
	s.seq++
	h.seq = s.seq
	s.queue = append(s.queue, h)
	sort.SliceStable(s.queue, func(i, j int) bool {
		if !s.queue[i].at.Equal(s.queue[j].at) {
			return s.queue[i].at.Before(s.queue[j].at)
		}
		return s.queue[i].seq < s.queue[j].seq
	})
}

func (s *sim) poolImage() *v1alpha1.PoolImage {
	o, ok := s.objs[objKey(&v1alpha1.PoolImage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: piName}})]
	if !ok {
		return nil
	}
	return o.(*v1alpha1.PoolImage)
}

// reconcile runs one reconcile of the PoolImage at the current time and applies what it wrote.
func (s *sim) reconcile() {
	if s.poolImage() == nil {
		return
	}
	env := newTestEnvAt(s.tb, s.list(), s.cfg, nil, s.now)
	if err := env.reconciler.Reconcile(withQuietLogger(context.Background()), key()); err != nil {
		s.tb.Fatalf("reconcile at %s: %v", s.now.Sub(now), err)
	}
	ctx := context.Background()
	for _, a := range env.tekton.Actions() {
		if c, ok := a.(clientgotesting.CreateAction); ok && a.GetResource().Resource == "pipelineruns" {
			pr := c.GetObject().(*tektonv1.PipelineRun)
			s.created[pr.Name] = pr.Labels[layering.InputsHashLabel]
			s.schedule(happening{at: s.now.Add(s.build), run: pr.Name})
		}
	}
	// Read back the objects the controller writes; creation times are the API server's.
	pi, err := env.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, piName, metav1.GetOptions{})
	if err != nil {
		s.tb.Fatal(err)
	}
	s.put(pi)
	runs, _ := env.tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{})
	for k, o := range s.objs {
		if _, ok := o.(*tektonv1.PipelineRun); ok {
			delete(s.objs, k)
		}
	}
	for i := range runs.Items {
		pr := runs.Items[i].DeepCopy()
		if pr.CreationTimestamp.IsZero() {
			pr.CreationTimestamp = metav1.NewTime(s.now)
		}
		s.put(pr)
	}
	mcs, _ := env.mco.MachineconfigurationV1().MachineConfigs().List(ctx, metav1.ListOptions{})
	for k, o := range s.objs {
		if _, ok := o.(*mcfgv1.MachineConfig); ok {
			delete(s.objs, k)
		}
	}
	for i := range mcs.Items {
		s.put(mcs.Items[i].DeepCopy())
		if img := mcs.Items[i].Spec.OSImageURL; img != "" && img != s.lastImage {
			s.rollouts++
			s.lastImage = img
		}
	}
	// The Pipelines the controller created (for the dashboard), as the API server keeps them.
	pls, _ := env.tekton.TektonV1().Pipelines(ns).List(ctx, metav1.ListOptions{})
	for i := range pls.Items {
		s.put(pls.Items[i].DeepCopy())
	}
	// The tag TaskRuns the controller created (the cache must see them, as the informer would).
	trs, _ := env.tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{})
	for i := range trs.Items {
		s.put(trs.Items[i].DeepCopy())
	}
	for _, d := range *env.enqueued {
		s.schedule(happening{at: s.now.Add(d)})
	}
	if s.pendingBase != "" && pi.Status.CurrentInputs != nil && pi.Status.CurrentInputs.BaseImage == s.pendingBase {
		s.stale += max(s.now.Sub(s.upgradeAt)-s.build, 0)
		s.pendingBase = ""
	}
}

// complete finishes a run as Tekton would: cancelled if it was cancelled, else succeeded with
// its results.
func (s *sim) complete(name string) {
	o, ok := s.objs[objKey(&tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})]
	if !ok {
		return // pruned
	}
	pr := o.(*tektonv1.PipelineRun).DeepCopy()
	if pr.IsDone() {
		return
	}
	pr.Status.StartTime = &metav1.Time{Time: pr.CreationTimestamp.Time}
	pr.Status.CompletionTime = &metav1.Time{Time: s.now}
	if pr.Spec.Status == tektonv1.PipelineRunSpecStatusCancelled {
		pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: "Cancelled"})
	} else {
		sum := sha256.Sum256([]byte(name))
		pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"})
		pr.Status.Results = []tektonv1.PipelineRunResult{
			{Name: contract.ResultImageURL, Value: *tektonv1.NewStructuredValues(pushRepo + ":" + pr.Labels[layering.InputsHashLabel])},
			{Name: contract.ResultImageDigest, Value: *tektonv1.NewStructuredValues("sha256:" + hex.EncodeToString(sum[:]))},
		}
	}
	s.put(pr)
	s.reconcile()
}

func digestN(n int) string {
	return "sha256:" + strings.Repeat(fmt.Sprintf("%x", n%16), 64)
}

// apply changes the cluster as the trace event says, then lets the controller react (as its
// informers and tracker would enqueue the PoolImage).
func (s *sim) apply(ev traceEvent) {
	switch ev.Kind {
	case "create":
		s.put(poolImage(func(p *v1alpha1.PoolImage) { p.Finalizers = nil; p.CreationTimestamp = metav1.NewTime(s.now) }))
	case "mc-edit", "mc-edit-extensions":
		// The MCO renders a new config for the pool: the pool object changes.
		s.renders++
		p := pool(func(p *mcfgv1.MachineConfigPool) {
			p.Spec.Configuration.Name = fmt.Sprintf("rendered-worker-%d", s.renders)
		})
		s.put(p)
	case "upgrade":
		s.bases++
		base := "quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + digestN(s.bases+2)
		ext := "quay.io/openshift-release-dev/ocp-v4.0-art-dev@" + digestN(s.bases+8)
		s.put(controllerConfig(base, ext))
		s.pendingBase, s.upgradeAt = base, s.now
	case "containerfile":
		s.edits++
		pi := s.poolImage().DeepCopy()
		pi.Spec.Containerfile[0].Content = fmt.Sprintf("FROM configs AS final\nRUN echo edit-%d > /etc/edit\n", s.edits)
		pi.Generation++
		s.put(pi)
	case "secret-rotation":
		sec := secret("push", corev1.SecretTypeDockerConfigJson)
		sec.Data[".dockerconfigjson"] = []byte(fmt.Sprintf(`{"auths":{"registry.example.com":{"auth":"rotated-%s"}}}`, s.now.Format(time.RFC3339)))
		s.put(sec)
	case "restart":
		// A full resync: the reconcile below (every reconcile starts from the API state).
	case "rerun":
		// The dashboard's re-run: a copy of the newest run, without owner references or status.
		var newest *tektonv1.PipelineRun
		for _, o := range s.objs {
			if pr, ok := o.(*tektonv1.PipelineRun); ok && (newest == nil || pr.CreationTimestamp.After(newest.CreationTimestamp.Time)) {
				newest = pr
			}
		}
		if newest == nil {
			s.tb.Fatal("re-run before any run")
		}
		s.reruns++
		cp := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-rerun-%d", newest.Name, s.reruns),
			Labels: newest.Labels, Annotations: newest.Annotations, CreationTimestamp: metav1.NewTime(s.now)}, Spec: *newest.Spec.DeepCopy()}
		cp.Spec.Status = ""
		s.put(cp)
		s.schedule(happening{at: s.now.Add(s.build), run: cp.Name})
	default:
		s.tb.Fatalf("unknown trace event %q", ev.Kind)
	}
	s.reconcile()
}

// replay runs the trace against the reconciler with the controller's default quiet period.
func replay(tb testing.TB, tr trace) traceResult {
	cfg := *testCfg
	cfg.QuietPeriod = config.DefaultQuietPeriod
	s := &sim{tb: tb, cfg: &cfg, now: now, objs: map[string]runtime.Object{}, build: tr.BuildDuration.Duration,
		created: map[string]string{}}
	for _, o := range cluster() {
		s.put(o)
	}
	for i := range tr.Events {
		s.schedule(happening{at: now.Add(tr.Events[i].At.Duration), event: &tr.Events[i]})
	}
	for len(s.queue) > 0 {
		h := s.queue[0]
		s.queue = s.queue[1:]
		s.now = h.at
		switch {
		case h.event != nil:
			s.apply(*h.event)
		case h.run != "":
			s.complete(h.run)
		default:
			s.reconcile()
		}
	}

	res := traceResult{builds: len(s.created), staleBeyond: s.stale, rollouts: s.rollouts}
	seen := map[string]bool{}
	for _, h := range s.created {
		if seen[h] {
			res.duplicateBuilds++
		}
		seen[h] = true
	}
	// The same trace under the baselines' rules.
	var last time.Duration
	var mcoStarts []time.Duration     // when the MCO starts a MachineOSBuild
	changedNights := map[int64]bool{} // nights after which the inputs had changed
	for _, ev := range tr.Events {
		night := int64(ev.At.Duration / (24 * time.Hour))
		switch ev.Kind {
		case "create":
			res.realChanges++
			changedNights[night] = true
			mcoStarts = append(mcoStarts, ev.At.Duration)
		case "upgrade":
			res.realChanges++
			res.upgrades++
			changedNights[night] = true
			mcoStarts = append(mcoStarts, ev.At.Duration)
			nextMidnight := (ev.At.Duration/(24*time.Hour) + 1) * 24 * time.Hour
			res.nightlyStale += nextMidnight - ev.At.Duration
		case "containerfile":
			if !ev.Burst || ev.At.Duration-last > time.Minute {
				res.realChanges++
			}
			changedNights[night] = true
			mcoStarts = append(mcoStarts, ev.At.Duration) // the MachineOSConfig changed: a new build each time
		case "mc-edit", "mc-edit-extensions":
			mcoStarts = append(mcoStarts, ev.At.Duration) // a new rendered config: a new build
		}
		if ev.Kind == "containerfile" {
			last = ev.At.Duration
		}
	}
	res.mcoStarted = len(mcoStarts)
	for i, at := range mcoStarts {
		// Completed unless the next build starts before it finishes (the in-flight one is deleted).
		if i+1 == len(mcoStarts) || mcoStarts[i+1]-at >= tr.BuildDuration.Duration {
			res.mcoCompleted++
		}
	}
	res.nightlyBuilds = int(tr.Duration.Duration / (24 * time.Hour))
	res.nightlyCheckedBuilds = len(changedNights)
	return res
}

// TestMonthTrace replays a month of one pool's life: the controller builds exactly once per real
// change of the image's inputs (not for MachineConfig edits, extension changes, secret rotations,
// restarts or dashboard re-runs; once per burst of edits), never builds the same inputs twice,
// and after each upgrade the pool runs an image older than its release no longer than the build
// plus the quiet period.
func TestMonthTrace(t *testing.T) {
	tr := loadTrace(t)
	res := replay(t, tr)
	if res.builds != res.realChanges || res.duplicateBuilds != 0 {
		t.Errorf("%d builds (%d of inputs already built) for %d real changes", res.builds, res.duplicateBuilds, res.realChanges)
	}
	// Defect B10 of modelTraces: the dashboard re-runs of the trace make new digests of promoted inputs; they
	// must not roll the pool out again (on 43160f7 this was 11 rollouts for 9 changes).
	if res.rollouts != res.realChanges {
		t.Errorf("%d rollouts (osImageURL changes) for %d real changes", res.rollouts, res.realChanges)
	}
	if limit := time.Duration(res.upgrades) * config.DefaultQuietPeriod; res.staleBeyond > limit {
		t.Errorf("after %d upgrades the pool ran an older image %s beyond the builds, want at most the quiet periods (%s)", res.upgrades, res.staleBeyond, limit)
	}
	if res.realChanges != 9 || res.mcoStarted <= res.builds || res.mcoCompleted > res.mcoStarted || res.nightlyBuilds != 30 || res.nightlyCheckedBuilds > res.nightlyBuilds {
		t.Errorf("trace summary: %+v; want 9 real changes (create, 2 upgrades, 6 Containerfile changes) and 30 nights", res)
	}
}

// BenchmarkMonthTrace replays the month and prints the bench lines of `make bench` (builds per real
// change and hours stale, ours and the two baselines); ns/op is one month's replay.
func BenchmarkMonthTrace(b *testing.B) {
	tr := loadTrace(b)
	var res traceResult
	for i := 0; i < b.N; i++ {
		res = replay(b, tr)
	}
	per := func(n int) float64 { return float64(n) / float64(res.realChanges) }
	b.ReportMetric(per(res.builds), "builds/real-change")
	b.ReportMetric(per(res.rollouts), "rollouts/real-change")
	if b.N == 1 {
		fmt.Printf("bench: trace.real_changes=%d\n", res.realChanges)
		fmt.Printf("bench: trace.builds_per_real_change=%.2f goal=1.00\n", per(res.builds))
		fmt.Printf("bench: trace.builds_per_real_change.mco_ocl_started=%.2f\n", per(res.mcoStarted))
		fmt.Printf("bench: trace.builds_per_real_change.mco_ocl_completed=%.2f\n", per(res.mcoCompleted))
		fmt.Printf("bench: trace.builds_per_real_change.nightly=%.2f\n", per(res.nightlyBuilds))
		fmt.Printf("bench: trace.builds_per_real_change.nightly_checked=%.2f\n", per(res.nightlyCheckedBuilds))
		fmt.Printf("bench: trace.rollouts_per_real_change=%.2f goal=1.00\n", per(res.rollouts))
		fmt.Printf("bench: trace.rollouts_per_real_change.mco_ocl=%.2f\n", per(res.mcoCompleted))
		fmt.Printf("bench: trace.rollouts_per_real_change.nightly=%.2f\n", per(res.nightlyBuilds))
		fmt.Printf("bench: trace.rollouts_per_real_change.nightly_checked=%.2f\n", per(res.nightlyCheckedBuilds))
		fmt.Printf("bench: trace.stale_hours_beyond_build=%.3f goal=0.00\n", res.staleBeyond.Hours())
		fmt.Printf("bench: trace.stale_hours_beyond_build.mco_ocl=%.3f\n", 0.0)
		fmt.Printf("bench: trace.stale_hours_beyond_build.nightly=%.2f\n", res.nightlyStale.Hours())
	}
}
