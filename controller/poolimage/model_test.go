package poolimage

// A model-based test of the PoolImage reconciler: random, seeded histories of the simulated
// world (model_world_test.go), with the invariants below checked after every step; a failing
// history is shrunk and printed as a modelTrace literal that TestModelTraces replays
// (model_trace_test.go).
//
//	go test -run '^TestModel$' -v ./controller/poolimage/          # MODEL_SEEDS=200 MODEL_STEPS=60
//	MODEL_SEEDS=2000 MODEL_STEPS=500 go test -run '^TestModel$' -v -timeout 2h ./controller/poolimage/
//	MODEL_SEED0=17 MODEL_SEEDS=1 ...                                # one seed
//	MODEL_SKIP=effective-image-verified/arch,one-active-build ...   # look past invariants (or invariant/code; all)
//	MODEL_DEBUG=1 ...                                               # print every step and write
//	MODEL_SHRINK=3 MODEL_SHRINK_BUDGET=120s ...                     # shrink up to 3 per invariant/code (default 1, 30s)

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// modelEvent is one step of a history: the world clock advances by Dt, then Kind happens. N,
// Flag and On choose among the objects and variants the kind offers (see modelEventKinds); an
// event that no longer applies (no run to re-run, a pool that does not exist) does nothing, so
// a history stays replayable when events are removed from it.
type modelEvent struct {
	Kind string
	N    int
	Flag bool
	// On names the PoolImage (or, for pool events, the pool) the event acts on; "" is worker.
	On string
	Dt time.Duration
}

// modelEventKinds is the vocabulary, with the weight randomHistory gives each kind.
var modelEventKinds = []struct {
	Kind   string
	Weight float64
	Doc    string
}{
	// the controller and its informers
	{"reconcile", 30, "the controller reconciles the next due key"},
	{"deliver", 14, "the N-th kind with pending changes delivers its oldest change to its cache and handlers"},
	{"deliver-all", 6, "every pending change is delivered, in write order"},
	{"settle", 5, "deliver and reconcile until the controller has caught up"},
	{"drop", 2, "a pending change of the N-th kind that a later one supersedes is never delivered"},
	{"resync", 1, "the informers' resync: an update of every cached object"},
	{"restart", 1.5, "the controller restarts: new caches listed from the API server, new reconciler and tracker, every PoolImage enqueued, release reads forgotten"},
	// Tekton and the registry
	{"tekton", 12, "the N-th unfinished run moves one stage (start, push, finish); Flag fails it"},
	{"gc", 1, "the registry deletes every manifest no tag points to"},
	// the MCO
	{"mco-render", 3, "the render controller renders pools whose MachineConfigs changed"},
	{"mco-node", 3, "in each unpaused pool one node moves to the pool's configuration"},
	{"mco-template", 2, "the template MachineConfigs follow the ControllerConfig's base"},
	{"mco-operator", 3, "the ControllerConfig takes the images of the release the CVO moved to"},
	// the CVO
	{"cvo-offer", 2, "a new release is offered"},
	{"cvo-accept", 1, "an admin targets the newest offered release (spec.desiredUpdate)"},
	{"cvo-progress", 1, "the CVO moves status.desired to the targeted release"},
	{"cvo-upgrade", 2.5, "offer (when nothing is offered), accept and progress at once"},
	{"release-read", 3, "the oldest requested read of a release image completes; Flag fails it"},
	// admins
	{"pi-create", 1.5, "an admin creates PoolImage On (worker; worker-b claims pool worker too; infra)"},
	{"edit", 3, "an admin sets On's Containerfile to content N"},
	{"edit-burst", 0.8, "three Containerfile edits two seconds apart, ending on content N"},
	{"pause", 0.6, "an admin pauses pool On"},
	{"unpause", 0.8, "an admin unpauses pool On"},
	{"retry", 0.8, "an admin sets On's retry annotation to a new value"},
	{"revert", 0.4, "an admin sets On's spec.revert to Flag"},
	{"strategy", 0.5, "an admin sets On's upgradeStrategy: Follow (Flag) or HoldPool"},
	{"hold-timeout", 0.3, "an admin sets On's spec.promotion.holdTimeout to N*15m (0: unset)"},
	{"promotion-paused", 0.2, "an admin sets On's spec.promotion.paused to Flag"},
	{"rename", 0.2, "an admin moves On to the other pool (refused when the CRD says the field is immutable)"},
	{"delete-pi", 0.3, "an admin deletes PoolImage On"},
	{"admin-mc", 0.6, "an admin writes MachineConfig 50-<On>-admin (kernel argument N)"},
	{"proxy", 0.3, "the cluster proxy (ControllerConfig spec.proxy) changes to variant N"},
	{"trusted-ca", 0.5, "the trusted-ca ConfigMap: N%4 = 0 deleted, 1 and 2 two bundles, 3 empty"},
	{"infra", 0.3, "pool infra (selects role in [worker, infra]) with node infra-0, which keeps the worker label; Flag: arm64"},
	{"node-arm64", 0.2, "an arm64 node joins with the worker label (Flag: and the infra label)"},
	{"os-image-stream", 0.15, "an admin sets pool On's spec.osImageStream (Flag) or clears it"},
	// the dashboard and people on runs
	{"rerun", 0.8, "the dashboard re-runs the N-th run (labels, annotations, spec; generateName)"},
	{"edit-run", 0.4, "the dashboard's edit-and-run of the N-th run: without the verify task, or (Flag) pushing to another repository"},
	{"delete-run", 0.4, "someone deletes the N-th run"},
	{"edit-pipeline", 0.2, "an admin edits the N-th Pipeline in place, without the verify task (Flag: deletes it)"},
	{"foreign-run", 0.2, "someone creates a run with our labels from scratch (Flag: of the promoted inputs)"},
	// no-op
	{"wait", 0, "nothing but the clock"},
}

// The invariants; each violation names one and a code saying how it failed.
const (
	invOneActiveBuild   = "one-active-build"
	invNoRebuild        = "no-rebuild-of-promoted"
	invHoldTimeout      = "hold-timeout-reported"
	invHoldReleased     = "hold-released-with-owner"
	invAdminPause       = "admin-pause-respected"
	invEffectiveImage   = "effective-image-verified"
	invPrebuildCancel   = "prebuild-cancel-justified"
	invTransitionsOnce  = "transitions-counted-once"
	invRerunKeepsImage  = "rerun-keeps-image"
	invReconcileNoPanic = "reconcile-no-panic"
	invMasterNotPaused  = "master-never-paused"
	invDeletesOwnRuns   = "deletes-own-runs-only"
	invPromotedRendered = "promoted-is-rendered"
	invPauseGuarded     = "pause-under-guard"
)

// modelInvariants documents the invariants (in the order of the brief).
var modelInvariants = []struct{ Name, Doc string }{
	{invOneActiveBuild, "at most one active run the controller created per pool, besides at most one prebuild"},
	{invNoRebuild, "the controller creates no run of already-promoted inputs (status.currentInputsHash, the MachineConfig's inputs-hash) without a retry token never used before"},
	{invHoldTimeout, "a pause the controller made ends within the hold timeout (+ slack); one it ends at the timeout without the image raises a Warning HoldReleased and counts in ocl_pipelines_holds_released_early_total, what the alert fires on"},
	{invHoldReleased, "once caught up, no pause the controller made outlives its PoolImage, a revert, a rename, Follow or promotion.paused"},
	{invAdminPause, "the controller never unpauses a pool an admin paused, nor pauses again a pool an admin released for the same base image"},
	{invEffectiveImage, "a pool's merged and rendered osImageURL is a release's base image or a digest a controller-created run pushed to the PoolImage's repository, verified and still tagged; once caught up, of the pool's nodes' architecture"},
	{invPrebuildCancel, "a prebuild is cancelled only when a known, different candidate (release or inputs) exists"},
	{invTransitionsOnce, "per run at most one BuildStarted, BuildSucceeded, BuildFailed, Superseded event; the counters equal the runs with those transitions"},
	{invRerunKeepsImage, "a pool's osImageURL never moves from an image of inputs H to a dashboard re-run of H (a rollout for no change)"},
	{invReconcileNoPanic, "a reconcile never panics"},
	{invMasterNotPaused, "the controller never pauses pool master (a paused master stops the cluster upgrade)"},
	{invDeletesOwnRuns, "the controller deletes only runs of the PoolImage it reconciles"},
	{invPromotedRendered, "once caught up, a PoolImage whose Promoted condition is True has its image in the pool's rendered configuration (when the MCO has rendered the pool at all)"},
	{invPauseGuarded, "the controller pauses a pool only while the uninstall guard holds (its rights cannot be deleted before it ends the hold); once caught up, the guard holds only while a pool is held"},
}

// ---- ground truth and write-time invariants ----

// observe records who wrote what (runs, pauses, MachineConfig changes) and checks the
// invariants that are about a write itself (2, 5, 7).
func (w *modelWorld) observe(actor modelActor, key modelKey, old, obj runtime.Object) {
	switch key.Kind {
	case mkPipelineRun:
		switch {
		case old == nil && obj != nil:
			w.newRun(actor, obj.(*tektonv1.PipelineRun))
		case old != nil && obj != nil:
			o, n := old.(*tektonv1.PipelineRun), obj.(*tektonv1.PipelineRun)
			if o.Spec.Status == "" && n.Spec.Status != "" && !o.IsDone() {
				w.cancelled(actor, n)
			}
		case old != nil && obj == nil && actor == actorController:
			o := old.(*tektonv1.PipelineRun)
			if t := w.runs[string(o.UID)]; t != nil && w.owner != "" && t.Owner != w.owner {
				w.violate(invDeletesOwnRuns, "other-owner", "deleted PipelineRun %s of %s while reconciling %s", o.Name, t.Owner, w.owner)
			}
		}
	case mkPool:
		op, _ := old.(*mcfgv1.MachineConfigPool)
		np, _ := obj.(*mcfgv1.MachineConfigPool)
		w.poolWrite(actor, key.Name, op, np)
	case mkMachineConfig:
		if !strings.HasPrefix(key.Name, "rendered-") {
			w.lastMCWrite = w.now()
		}
	case mkControllerConfig:
		w.lastMCWrite = w.now()
	}
}

// newRun records a created run; for the controller's runs it checks invariant 2.
func (w *modelWorld) newRun(actor modelActor, pr *tektonv1.PipelineRun) {
	t := &modelRun{UID: string(pr.UID), Namespace: pr.Namespace, Name: pr.Name, Creator: actor,
		Pool: pr.Labels[layering.PoolLabel], Hash: pr.Labels[layering.InputsHashLabel],
		Trigger: pr.Annotations[layering.TriggerAnnotation], Release: pr.Annotations[layering.ReleaseAnnotation],
		Retry: pr.Annotations[layering.RetryAnnotation], Image: runParam(pr, "IMAGE"), CurrentTag: runParam(pr, "CURRENT_TAG"),
		Arch: runParam(pr, "TARGET_ARCH"), HasVerify: runHasVerify(pr), OwnTag: runPushesOwnTag(pr), CreatedAt: w.now()}
	if t.Arch == "" {
		t.Arch = "amd64"
	}
	t.Owner = pr.Namespace + "/" + pr.Annotations[layering.PoolImageLabel]
	if actor == actorController && w.owner != "" {
		t.Owner = w.owner
	}
	ns, name, _ := strings.Cut(t.Owner, "/")
	pi := w.poolImage(ns, name)
	if pi != nil {
		t.WantRepo, _ = splitImage(pi.Spec.ImagePushSpec)
		t.RerunOfPromoted = actor != actorController && t.Hash != "" && pi.Status.CurrentInputsHash == t.Hash
	}
	w.runs[t.UID] = t
	w.runByName[pr.Namespace+"/"+pr.Name] = t.UID
	if actor != actorController {
		return
	}
	w.stats.runs++
	if t.Trigger == string(generator.TriggerPrebuild) {
		w.stats.prebuilds++
	}
	// Invariant 2: no build of already-promoted inputs without a new retry token.
	if pi != nil && t.Hash != "" {
		mcHash := ""
		if mc := w.mc(facts.MachineConfigName(pi.Spec.MachineConfigPool.Name)); mc != nil &&
			mc.Annotations[layering.MachineConfigPoolImageNamespaceAnnotation] == pi.Namespace && mc.Annotations[layering.MachineConfigPoolImageNameAnnotation] == pi.Name {
			mcHash = mc.Annotations[layering.MachineConfigInputsHashAnnotation]
		}
		if t.Hash == pi.Status.CurrentInputsHash || t.Hash == mcHash {
			switch {
			case t.Retry == "":
				w.violate(invNoRebuild, "no-token", "created %s (trigger %s) of the promoted inputs %s (status.currentInputsHash %s, MachineConfig %s) without a retry token",
					pr.Name, t.Trigger, t.Hash, pi.Status.CurrentInputsHash, mcHash)
			case w.tokens[t.Owner][t.Retry]:
				w.violate(invNoRebuild, "used-token", "created %s of the promoted inputs %s with the retry token %q a run was created with before", pr.Name, t.Hash, t.Retry)
			}
		}
	}
	if t.Retry != "" {
		if w.tokens[t.Owner] == nil {
			w.tokens[t.Owner] = map[string]bool{}
		}
		w.tokens[t.Owner][t.Retry] = true
	}
}

// cancelled records a cancel request; for a prebuild cancelled by the controller it checks
// invariant 7: a known, different candidate must exist (another release whose images the
// controller has read, or other inputs for it). Without a candidate (the upgrade was accepted)
// the target is the cluster's release: another release than the prebuild's justifies the
// cancel; the prebuild's own release is known once the ControllerConfig carries its images.
// Cancelling a duplicate (another run of the same inputs goes on) loses nothing.
func (w *modelWorld) cancelled(actor modelActor, pr *tektonv1.PipelineRun) {
	t := w.runs[string(pr.UID)]
	if actor == actorController {
		w.stats.cancels++
	}
	if t == nil || actor != actorController || t.Trigger != string(generator.TriggerPrebuild) {
		return
	}
	ns, name, _ := strings.Cut(t.Owner, "/")
	pi := w.poolImage(ns, name)
	if pi == nil || pi.DeletionTimestamp != nil || pi.Spec.Revert {
		return // nothing to build for any more
	}
	for _, other := range w.pipelineRuns() {
		if o := w.runs[string(other.UID)]; o != nil && o.UID != t.UID && o.Hash == t.Hash && other.Spec.Status == "" &&
			(!other.IsDone() || other.Status.GetCondition(apis.ConditionSucceeded).IsTrue()) {
			return // a run of the same inputs goes on: nothing is lost
		}
	}
	cv := w.cv()
	var rel modelRelease
	known := false
	next, _ := modelPick(cv)
	if next != nil {
		rel, _ = w.releaseByImage(next.Image)
		known = w.ctl.cand.known(next.Image)
	} else {
		rel, _ = w.releaseByVersion(cv.Status.Desired.Version)
		known = w.cc().Spec.BaseOSContainerImage == rel.Base
		if rel.Version != t.Release {
			return // the cluster moves to another release: this one is never installed
		}
	}
	switch {
	case !known && next != nil:
		w.violate(invPrebuildCancel, "unknown-candidate", "cancelled prebuild %s (release %s, inputs %s) while the images of the candidate release %s are not read yet",
			pr.Name, t.Release, t.Hash, rel.Version)
		return
	case !known:
		w.violate(invPrebuildCancel, "upgrade-in-progress", "cancelled prebuild %s (release %s, inputs %s) while the cluster moves to %s, whose images the ControllerConfig does not carry yet",
			pr.Name, t.Release, t.Hash, rel.Version)
		return
	}
	if rel.Version == t.Release && w.worldInputsHash(pi, rel.Base, rel.Ext) == t.Hash {
		w.violate(invPrebuildCancel, "same-candidate", "cancelled prebuild %s of release %s, inputs %s: still the build for the release the cluster heads to",
			pr.Name, t.Release, t.Hash)
	}
}

// poolWrite tracks pauses (who last set spec.paused=true) and checks invariant 5.
func (w *modelWorld) poolWrite(actor modelActor, name string, old, pool *mcfgv1.MachineConfigPool) {
	if pool == nil {
		delete(w.pauses, name)
		return
	}
	was := old != nil && old.Spec.Paused
	switch {
	case !was && pool.Spec.Paused:
		if name == modelMasterPool && actor == actorController {
			w.violate(invMasterNotPaused, "paused", "paused pool master (for %s)", w.owner)
		}
		base := pool.Annotations[layering.PausedForAnnotation]
		if cur := w.cc().Spec.BaseOSContainerImage; actor == actorController && slices.Contains(w.adminReleased[name], cur) {
			w.violate(invAdminPause, "repaused", "paused pool %s again for base %s, which an admin had released", name, cur)
		}
		p := &modelPause{Actor: actor, Base: base, Since: w.now(), Image: w.effective[name]}
		if actor == actorController && !w.guard.set {
			w.violate(invPauseGuarded, "unguarded", "paused pool %s (for %s) while the uninstall guard does not hold", name, w.owner)
		}
		if actor == actorController {
			p.Owner = w.owner
			w.stats.pauses++
		}
		w.pauses[name] = p
	case was && !pool.Spec.Paused:
		p := w.pauses[name]
		if p != nil && actor == actorController && p.Actor != actorController {
			w.violate(invAdminPause, "unpaused-admin-pause", "unpaused pool %s, which %s paused at %s", name, p.Actor, p.Since.Format(time.TimeOnly))
		}
		if p != nil && actor != actorController && p.Actor == actorController {
			// Released for the base the pool was held for: its paused-for annotation (what the
			// admin saw), and the ControllerConfig's base as the controller last caught up with it
			// (a base the controller knew of but did not write into paused-for: defect B6 of modelTraces). A
			// base that arrived after that, which the controller had no chance to see, is not.
			w.adminReleased[name] = []string{p.Base, w.caughtUpBase}
		}
		if actor == actorController {
			w.stats.releases++
			if pi := w.poolImageByKey(p.Owner); p != nil && p.Actor == actorController && w.holdEnded(pi, pool) == "" &&
				!w.now().Before(p.Since.Add(w.holdTimeoutOf(pi))) {
				w.timedOut = append(w.timedOut, modelTimedOut{Pool: name, Owner: p.Owner, Since: p.Since, At: w.now(), Image: p.Image})
			}
		}
		delete(w.pauses, name)
	}
}

// ---- invariants after every step ----

// check runs the invariants that look at the state after a step.
func (w *modelWorld) check(reconciled bool) {
	w.checkActiveBuilds()
	w.checkImages()
	if reconciled {
		w.checkCounters()
	}
	if reconciled {
		w.checkTimedOut()
	}
	if w.caughtUp() {
		w.caughtUpBase = w.cc().Spec.BaseOSContainerImage
		w.checkHolds()
		w.checkPromoted()
	}
}

// checkPromoted is invariant promoted-is-rendered: Promoted True says the pool's rendered
// configuration carries the image (not merely that our MachineConfig does).
func (w *modelWorld) checkPromoted() {
	for _, o := range w.list(mkPoolImage) {
		pi := o.(*v1alpha1.PoolImage)
		c := pi.Status.GetCondition(v1alpha1.ConditionPromoted)
		if c == nil || c.Status != corev1.ConditionTrue || pi.DeletionTimestamp != nil || pi.Status.CurrentImage == "" {
			continue
		}
		pool := w.pool(pi.Spec.MachineConfigPool.Name)
		if pool == nil || pool.Spec.Configuration.Name == "" {
			// A pool the MCO has never rendered (a stack without the MCO; a pool created a
			// moment ago): nothing to compare with, and the controller says so in the message.
			continue
		}
		r := w.mc(pool.Spec.Configuration.Name)
		if r == nil || r.Spec.OSImageURL != pi.Status.CurrentImage {
			got := "(no rendered configuration)"
			if r != nil {
				got = r.Name + " with " + r.Spec.OSImageURL
			}
			w.violate(invPromotedRendered, "not-rendered", "PoolImage %s/%s says Promoted (%s) %s, but pool %s renders %s",
				pi.Namespace, pi.Name, c.Reason, pi.Status.CurrentImage, pool.Name, got)
		}
	}
}

// checkActiveBuilds is invariant 1.
func (w *modelWorld) checkActiveBuilds() {
	type count struct{ builds, prebuilds []string }
	per := map[string]*count{}
	for _, pr := range w.pipelineRuns() {
		t := w.runs[string(pr.UID)]
		if t == nil || t.Creator != actorController || pr.IsDone() || pr.Spec.Status != "" {
			continue
		}
		c := per["pool "+t.Pool]
		if c == nil {
			c = &count{}
			per["pool "+t.Pool] = c
		}
		run := pr.Name + " (for " + t.Owner + ")"
		if t.Trigger == string(generator.TriggerPrebuild) {
			c.prebuilds = append(c.prebuilds, run)
		} else {
			c.builds = append(c.builds, run)
		}
	}
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c := per[k]
		if len(c.builds) > 1 {
			w.violate(invOneActiveBuild, "builds", "%s: %d active builds %v", k, len(c.builds), c.builds)
		}
		if len(c.prebuilds) > 1 {
			w.violate(invOneActiveBuild, "prebuilds", "%s: %d active prebuilds %v", k, len(c.prebuilds), c.prebuilds)
		}
	}
}

// checkImages is invariants 6 and 9: every pool's merged osImageURL and the osImageURL of its
// rendered configuration.
func (w *modelWorld) checkImages() {
	for _, pool := range w.pools() {
		merged, _, _, _ := w.mergedConfig(pool)
		if prev, ok := w.effective[pool.Name]; ok && prev != merged {
			w.stats.imageChanges++
			// Invariant 9: a rollout from an image of inputs H to a dashboard re-run of H is a
			// reboot of every node for no change. (A re-run of H that comes back because the
			// admin returned to H later is a change, and one rollout either way.)
			if from, to := w.runOfImage(prev), w.runOfImage(merged); to != nil && to.RerunOfPromoted && from != nil && from.Hash == to.Hash &&
				w.focused(invRerunKeepsImage) {
				w.violate(invRerunKeepsImage, "rerun", "pool %s moved from %s (%s) to %s, pushed by %s, a %s re-run of the promoted inputs %s",
					pool.Name, prev, from.Name, merged, to.Name, to.Creator, to.Hash)
			}
		}
		w.effective[pool.Name] = merged
		w.checkImage(pool, merged, "merged MachineConfigs")
		if r := w.mc(pool.Spec.Configuration.Name); r != nil && r.Spec.OSImageURL != merged {
			w.checkImage(pool, r.Spec.OSImageURL, "rendered config "+r.Name)
		}
	}
}

// runOfImage is the run that pushed image (repository@digest), nil for a release's base or an
// unknown digest.
func (w *modelWorld) runOfImage(image string) *modelRun {
	_, digest, _ := strings.Cut(image, "@")
	if m := w.reg.manifests[digest]; m != nil {
		return w.runs[m.RunUID]
	}
	return nil
}

func (w *modelWorld) checkImage(pool *mcfgv1.MachineConfigPool, image, where string) {
	if w.isReleaseBase(image) {
		return
	}
	repo, digest, _ := strings.Cut(image, "@")
	m := w.reg.manifests[digest]
	if m == nil {
		w.violate(invEffectiveImage, "unknown", "pool %s (%s) runs %s, which no run pushed", pool.Name, where, image)
		return
	}
	t := w.runs[m.RunUID]
	// The PoolImage's repository: of the run's PoolImage now, else when the run was created.
	want := t.WantRepo
	if ns, name, _ := strings.Cut(t.Owner, "/"); w.poolImage(ns, name) != nil {
		want, _ = splitImage(w.poolImage(ns, name).Spec.ImagePushSpec)
	}
	switch {
	case !t.Verified:
		w.violate(invEffectiveImage, "unverified", "pool %s (%s) runs %s, pushed by %s (created by %s), whose verify task did not run and succeed (succeeded %v, cancelled %v, has verify %v)",
			pool.Name, where, image, t.Name, t.Creator, t.Succeeded, t.Cancelled, t.HasVerify)
	case (want != "" && m.Repo != want) || repo != m.Repo:
		w.violate(invEffectiveImage, "other-repository", "pool %s (%s) runs %s, pushed by %s (created by %s) to %s, not the PoolImage's repository %s",
			pool.Name, where, image, t.Name, t.Creator, m.Repo, want)
	case t.Creator != actorController && !w.copyOfController(t):
		// An unedited copy of a run the controller rendered (the dashboard's re-run) runs the
		// controller's spec: its image may be promoted (when no run of the controller's of those
		// inputs succeeded). Anything else is not the controller's.
		w.violate(invEffectiveImage, "not-controller-run", "pool %s (%s) runs %s, pushed by %s, which %s created", pool.Name, where, image, t.Name, t.Creator)
	case !w.reg.tagged(m.Repo, digest):
		gone := ""
		if m.Gone {
			gone = " and the registry's GC deleted it"
		}
		w.violate(invEffectiveImage, "untagged", "pool %s (%s) runs %s (pushed by %s), which no tag of %s points to any more%s", pool.Name, where, image, t.Name, m.Repo, gone)
	}
	// A node of another architecture joining a pool is the world's doing: the controller must
	// have seen it (caught up) before its image there is its fault. It refuses to write an image
	// that would reach such a node; one promoted before the node or pool appeared cannot be
	// taken back without a rollout of its own, so it must be reported: the PoolImage's Promoted
	// condition is False and names that pool.
	// Only the image the pool's MachineConfigs give it now: a rendered configuration that still
	// carries an image after its MachineConfig is gone is the MCO's render delay.
	if !w.caughtUp() || where != "merged MachineConfigs" {
		return
	}
	for _, n := range w.sortedNodes() {
		if w.poolOf(n) == pool.Name && n.Labels[corev1.LabelArchStable] != m.Arch && !w.archReported(t.Owner, pool.Name, digest) {
			w.violate(invEffectiveImage, "arch", "pool %s (%s) runs %s, built for %s, on node %s of architecture %s, and no PoolImage reports it", pool.Name, where, image, m.Arch, n.Name, n.Labels[corev1.LabelArchStable])
			break
		}
	}
}

// copyOfController reports whether run t is an unedited copy, at any remove, of a run the
// controller created.
func (w *modelWorld) copyOfController(t *modelRun) bool {
	for i := 0; t != nil && i < 10; i++ {
		if t.Creator == actorController {
			return true
		}
		if t.CopyOf == "" {
			return false
		}
		t = w.runs[t.CopyOf]
	}
	return false
}

// archReported reports whether the PoolImage owner (namespace/name) says, in its Promoted
// condition, that its image reaches pool's nodes of another architecture.
func (w *modelWorld) archReported(owner, pool, _ string) bool {
	ns, name, _ := strings.Cut(owner, "/")
	pi := w.poolImage(ns, name)
	if pi == nil {
		return false
	}
	c := pi.Status.GetCondition(v1alpha1.ConditionPromoted)
	return c != nil && c.IsFalse() && strings.Contains(c.Message, "MachineConfigPool "+pool+" ")
}

// checkCounters is the metrics half of invariant 8: the counters (over every lifetime of the
// controller) equal the runs with those transitions.
func (w *modelWorld) checkCounters() {
	distinct := map[string]float64{}
	for k := range w.transitions {
		distinct[k[strings.LastIndex(k, "/")+1:]]++
	}
	rm := w.ctl.collect()
	got := func(n string) float64 { return w.metricBase[n] + modelCounter(rm, n) }
	for _, c := range []struct {
		metric string
		want   float64
	}{
		{"ocl_pipelines_builds_started", distinct[v1alpha1.ReasonBuildStarted]},
		{"ocl_pipelines_builds", distinct[v1alpha1.ReasonBuildSucceeded] + distinct[v1alpha1.ReasonBuildFailed]},
		{"ocl_pipelines_builds_superseded", distinct[v1alpha1.ReasonSuperseded]},
	} {
		if g := got(c.metric); g != c.want {
			w.violate(invTransitionsOnce, "metric:"+c.metric, "%s_total = %v, but %v runs had that transition", c.metric, g, c.want)
		}
	}
}

// reaches reports whether pool selects the MachineConfig of pi's image (a custom pool that
// also selects the worker MachineConfigs): pi's image reaches its nodes, so holding it for pi's
// rebuild is legitimate.
func (w *modelWorld) reaches(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool) bool {
	sel, err := metav1.LabelSelectorAsSelector(pool.Spec.MachineConfigSelector)
	if err != nil {
		return false
	}
	if mc := w.mc(facts.MachineConfigName(pi.Spec.MachineConfigPool.Name)); mc != nil {
		return sel.Matches(labels.Set(mc.Labels))
	}
	own := w.pool(pi.Spec.MachineConfigPool.Name)
	return own != nil && own.Spec.MachineConfigSelector != nil && sel.Matches(labels.Set(own.Spec.MachineConfigSelector.MatchLabels))
}

// holdTimeoutOf is the hold timeout of a PoolImage: its spec, else the controller's default.
func (w *modelWorld) holdTimeoutOf(pi *v1alpha1.PoolImage) time.Duration {
	if pi != nil && pi.Spec.Promotion != nil && pi.Spec.Promotion.HoldTimeout != nil {
		return pi.Spec.Promotion.HoldTimeout.Duration
	}
	if w.cfg.HoldTimeout > 0 {
		return w.cfg.HoldTimeout
	}
	return config.DefaultHoldTimeout
}

// modelGuard is the uninstall guard (uninstall.Guard) as the API server would keep it: set by
// Hold, cleared by Release when no pool is held. Its state survives restarts (it is the
// finalizer on the controller's objects).
type modelGuard struct {
	w   *modelWorld
	set bool
}

func (g *modelGuard) Hold(_ context.Context, pause func() error) error {
	g.set = true
	return pause()
}

func (g *modelGuard) Release(context.Context) error {
	if !g.w.anyHeld() {
		g.set = false
	}
	return nil
}

// anyHeld reports whether the API server has a pool the controller holds (HeldPools).
func (w *modelWorld) anyHeld() bool {
	for _, p := range w.pools() {
		if p.Spec.Paused && p.Annotations[layering.PausedByAnnotation] != "" {
			if owner, known := pausedOwner(p); !known || owner == layering.HoldFieldManager {
				return true
			}
		}
	}
	return false
}

// checkHolds is invariants 3 and 4, once the controller has caught up.
func (w *modelWorld) checkHolds() {
	if w.guard.set && !w.anyHeld() {
		w.violate(invPauseGuarded, "outlives-holds", "the uninstall guard still holds, though no pool is held")
	}
	names := make([]string, 0, len(w.pauses))
	for n := range w.pauses {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, poolName := range names {
		p := w.pauses[poolName]
		pool := w.pool(poolName)
		if p.Actor != actorController || pool == nil || !pool.Spec.Paused {
			continue
		}
		pi := w.poolImageByKey(p.Owner)
		if code := w.holdEnded(pi, pool); code != "" {
			w.violate(invHoldReleased, code, "pool %s is still paused by the controller (for %s, since %s) though its PoolImage is %s",
				poolName, p.Owner, p.Since.Format(time.TimeOnly), code)
			continue
		}
		limit := w.holdTimeoutOf(pi)
		if held := w.now().Sub(p.Since); held > limit+modelReconcileSlack {
			w.violate(invHoldTimeout, "outlived-bound", "pool %s held by %s for %s, past its bound (hold timeout %s + %s)",
				poolName, p.Owner, held, limit, modelReconcileSlack)
		}
	}
}

// modelNamesPool reports whether an event message names MachineConfigPool pool.
func modelNamesPool(msg, pool string) bool {
	for _, end := range []string{" ", ":", ",", ";", ")"} {
		if strings.Contains(msg, "MachineConfigPool "+pool+end) || strings.HasSuffix(msg, "MachineConfigPool "+pool) {
			return true
		}
	}
	return false
}

// holdEnded says why a hold of pool for pi must have ended ("" when it may go on).
func (w *modelWorld) holdEnded(pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool) string {
	switch {
	case pi == nil:
		return "deleted"
	case pi.DeletionTimestamp != nil:
		return "deleting"
	case pi.Spec.Revert:
		return "reverted"
	case pi.Spec.MachineConfigPool.Name != pool.Name && !w.reaches(pi, pool):
		return "renamed"
	case pi.Spec.Strategy() == v1alpha1.UpgradeFollow:
		return "follow"
	case pi.Spec.PromotionPaused():
		return "promotion-paused"
	}
	return ""
}

// poolImageByKey is the PoolImage namespace/name, or nil.
func (w *modelWorld) poolImageByKey(key string) *v1alpha1.PoolImage {
	ns, name, _ := strings.Cut(key, "/")
	return w.poolImage(ns, name)
}

// checkTimedOut is the second half of invariant 3: a pause the controller ended at its bound,
// without the rebuilt image, raised a Warning HoldReleased naming the pool and counted it in
// ocl_pipelines_holds_released_early_total (what the alert OCLPoolHoldEndedWithoutImage fires
// on) in the same reconcile.
func (w *modelWorld) checkTimedOut() {
	for _, t := range w.timedOut {
		if w.effective[t.Pool] != t.Image {
			continue // the rebuilt image arrived with the release: the hold ended by its purpose
		}
		warned := false
		for _, e := range w.events {
			if e.Key == t.Owner && e.Type == corev1.EventTypeWarning && e.Reason == v1alpha1.ReasonHoldReleased &&
				!e.At.Before(t.At) && modelNamesPool(e.Message, t.Pool) {
				warned = true
			}
		}
		if !warned {
			w.violate(invHoldTimeout, "no-warning", "unpaused pool %s (held by %s since %s) at its hold timeout without a Warning HoldReleased event",
				t.Pool, t.Owner, t.Since.Format(time.TimeOnly))
			continue
		}
		// The reason may be another one that ended the hold in the same reconcile (RebuildFailed).
		if modelCounterWhere(w.ctl.collect(), "ocl_pipelines_holds_released_early", map[string]string{"pool": t.Pool}) < 1 {
			w.violate(invHoldTimeout, "no-count", "unpaused pool %s (held by %s) at its hold timeout: ocl_pipelines_holds_released_early has no count for it",
				t.Pool, t.Owner)
		}
	}
	w.timedOut = w.timedOut[:0]
}

// ---- the events ----

// do applies one event to the world (after the clock advanced by its Dt).
func (w *modelWorld) do(ev modelEvent) {
	on := ev.On
	if on == "" {
		on = "worker"
	}
	switch ev.Kind {
	case "init", "wait":
	case "reconcile":
		w.ctl.reconcileOne()
	case "deliver":
		if ks := w.pendingKinds(); len(ks) > 0 {
			w.deliver(ks[ev.N%len(ks)])
		}
	case "deliver-all":
		w.deliverAll()
	case "settle":
		w.settle()
	case "drop":
		if ks := w.pendingKinds(); len(ks) > 0 {
			w.drop(ks[ev.N%len(ks)])
		}
	case "resync":
		w.resync()
	case "restart":
		w.restart()
	case "tekton":
		w.tekton(ev.N, ev.Flag)
	case "gc":
		w.reg.gc()
	case "mco-render":
		w.renderAll(false)
	case "mco-node":
		w.nodeStep(false)
	case "mco-template":
		w.templates()
	case "mco-operator":
		w.operator()
	case "cvo-offer":
		w.offer()
	case "cvo-accept":
		w.accept()
	case "cvo-progress":
		w.progress()
	case "cvo-upgrade":
		if next, _ := modelPick(&configv1.ClusterVersion{Status: w.cv().Status}); next == nil {
			w.offer()
		}
		w.accept()
		w.progress()
	case "release-read":
		w.readRelease(ev.Flag)
	case "pi-create":
		w.createPoolImage(on)
	case "edit":
		before := w.containerfile(on)
		w.editContainerfile(on, ev.N)
		if w.containerfile(on) != before {
			w.stats.inputChanges++
		}
	case "edit-burst":
		before := w.containerfile(on)
		for i := 2; i >= 0; i-- {
			w.editContainerfile(on, ev.N+i)
			if i > 0 {
				time.Sleep(2 * time.Second)
			}
		}
		if w.containerfile(on) != before {
			w.stats.inputChanges++ // a burst is one change
		}
	case "pause", "unpause":
		if p := w.pool(on); p != nil && p.Spec.Paused != (ev.Kind == "pause") {
			next := p.DeepCopy()
			next.Spec.Paused = ev.Kind == "pause"
			w.mustUpdate(actorAdmin, next)
		}
	case "retry":
		w.retries++
		token := fmt.Sprintf("retry-%d", w.retries)
		w.editPoolImage(on, func(pi *v1alpha1.PoolImage) {
			if pi.Annotations == nil {
				pi.Annotations = map[string]string{}
			}
			pi.Annotations[layering.RetryAnnotation] = token
		})
	case "revert":
		w.editPoolImage(on, func(pi *v1alpha1.PoolImage) { pi.Spec.Revert = ev.Flag })
	case "strategy":
		w.editPoolImage(on, func(pi *v1alpha1.PoolImage) {
			if pi.Spec.Promotion == nil {
				pi.Spec.Promotion = &v1alpha1.Promotion{}
			}
			pi.Spec.Promotion.UpgradeStrategy = v1alpha1.UpgradeHoldPool
			if ev.Flag {
				pi.Spec.Promotion.UpgradeStrategy = v1alpha1.UpgradeFollow
			}
		})
	case "hold-timeout":
		w.editPoolImage(on, func(pi *v1alpha1.PoolImage) {
			if pi.Spec.Promotion == nil {
				pi.Spec.Promotion = &v1alpha1.Promotion{}
			}
			pi.Spec.Promotion.HoldTimeout = nil
			if n := ev.N % 5; n > 0 {
				pi.Spec.Promotion.HoldTimeout = &metav1.Duration{Duration: time.Duration(n) * 15 * time.Minute}
			}
		})
	case "promotion-paused":
		w.editPoolImage(on, func(pi *v1alpha1.PoolImage) {
			if pi.Spec.Promotion == nil {
				pi.Spec.Promotion = &v1alpha1.Promotion{}
			}
			pi.Spec.Promotion.Paused = ev.Flag
		})
	case "rename":
		w.editPoolImage(on, func(pi *v1alpha1.PoolImage) {
			to := "infra"
			if pi.Spec.MachineConfigPool.Name == "infra" {
				to = "worker"
			}
			if w.pool(to) != nil {
				pi.Spec.MachineConfigPool.Name = to
			}
		})
	case "delete-pi":
		_ = w.remove(actorAdmin, mkPoolImage, modelNS, on)
	case "admin-mc":
		w.adminMC(on, ev.N)
	case "proxy":
		cc := w.cc().DeepCopy()
		cc.Spec.Proxy = &configv1.ProxyStatus{}
		if n := ev.N % 3; n > 0 {
			cc.Spec.Proxy.HTTPProxy = fmt.Sprintf("http://proxy-%d.example.com:3128", n)
			cc.Spec.Proxy.NoProxy = ".cluster.local,.svc"
		}
		w.mustUpdate(actorAdmin, cc)
	case "trusted-ca":
		w.trustedCA(ev.N % 4)
	case "infra":
		w.addInfra(ev.Flag)
	case "node-arm64":
		name := fmt.Sprintf("arm-%d", len(w.nodes))
		w.addNode(name, "arm64", ev.Flag && w.pool("infra") != nil)
	case "os-image-stream":
		if p := w.pool(on); p != nil {
			next := p.DeepCopy()
			next.Spec.OSImageStream.Name = ""
			if ev.Flag {
				next.Spec.OSImageStream.Name = "rhel-10"
			}
			w.mustUpdate(actorAdmin, next)
		}
	case "rerun", "edit-run":
		w.rerun(ev.N, ev.Kind == "edit-run", ev.Flag)
	case "edit-pipeline":
		w.editPipeline(ev.N, ev.Flag)
	case "delete-run":
		if runs := w.pipelineRuns(); len(runs) > 0 {
			pr := runs[ev.N%len(runs)]
			_ = w.remove(actorDashboard, mkPipelineRun, pr.Namespace, pr.Name)
		}
	case "foreign-run":
		w.foreignRun(ev.Flag)
	case "sabotage":
		w.sabotage(ev.N, on)
	default:
		panic("model: unknown event kind " + ev.Kind)
	}
}

// sabotage makes the controller break invariant n on purpose (TestModelInvariantsFire shows
// that each invariant can fail): writes as the controller that the reconciler never makes.
func (w *modelWorld) sabotage(n int, on string) {
	w.writer, w.owner = actorController, modelNS+"/"+on
	defer func() { w.writer, w.owner = "", "" }()
	pi := w.poolImage(modelNS, on)
	runs := w.pipelineRuns()
	copyRun := func(hash string, trigger generator.Trigger) {
		if len(runs) == 0 {
			return
		}
		src := runs[len(runs)-1]
		cp := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{GenerateName: "sabotage-", Namespace: src.Namespace,
			Labels: copyMap(src.Labels), Annotations: copyMap(src.Annotations)}, Spec: *src.Spec.DeepCopy()}
		cp.Spec.Status = ""
		cp.Labels[layering.InputsHashLabel] = hash
		cp.Annotations[layering.TriggerAnnotation] = string(trigger)
		_, _ = w.create(actorController, cp, src.Namespace)
	}
	pausePool := func(owner string) {
		w.guard.set = true // as the reconciler pauses: under the guard
		if p := w.pool("worker"); p != nil && !p.Spec.Paused {
			next := p.DeepCopy()
			next.Spec.Paused = true
			next.Annotations = map[string]string{layering.PausedByAnnotation: owner, layering.PausedForAnnotation: w.cc().Spec.BaseOSContainerImage}
			w.owner = owner
			w.mustUpdate(actorController, next)
		}
	}
	switch n {
	case 1: // two active builds
		copyRun("0000000000000000000000000000000000000001", generator.TriggerSpec)
		copyRun("0000000000000000000000000000000000000002", generator.TriggerSpec)
	case 2: // a rebuild of the promoted inputs
		if pi != nil && pi.Status.CurrentInputsHash != "" {
			copyRun(pi.Status.CurrentInputsHash, generator.TriggerSpec)
		}
	case 3: // a pause nobody ever reports: its paused-by names nobody
		pausePool(modelNS + "/" + on)
		p := w.pool("worker").DeepCopy()
		p.Annotations[layering.PausedByAnnotation] = modelNS + "/nobody"
		w.mustUpdate(actorCVO, p)
	case 4: // a pause on behalf of a PoolImage that does not exist
		pausePool(modelNS + "/ghost")
	case 5: // unpausing an admin's pause
		if p := w.pool("worker"); p != nil && p.Spec.Paused {
			next := p.DeepCopy()
			next.Spec.Paused = false
			w.mustUpdate(actorController, next)
		}
	case 6: // an image nobody built
		if pi != nil {
			if mc := w.mc(facts.MachineConfigName(pi.Spec.MachineConfigPool.Name)); mc != nil {
				next := mc.DeepCopy()
				next.Spec.OSImageURL = modelPushRepos["worker"] + "@sha256:" + strings.Repeat("f", 64)
				w.mustUpdate(actorController, next)
			}
		}
	case 7: // cancelling the prebuild of the known candidate
		if pi == nil || len(runs) == 0 {
			return
		}
		w.offer()
		rel := w.releases[len(w.releases)-1]
		w.ctl.cand.reads[rel.Image] = &modelRead{Done: true, At: w.now()}
		copyRun(w.worldInputsHash(pi, rel.Base, rel.Ext), generator.TriggerPrebuild)
		if runs = w.pipelineRuns(); len(runs) > 0 {
			last := runs[len(runs)-1]
			w.runs[string(last.UID)].Release = rel.Version
			_, _ = w.patch(actorController, mkPipelineRun, runs[len(runs)-1].Namespace, runs[len(runs)-1].Name,
				types.MergePatchType, []byte(`{"spec":{"status":"Cancelled"}}`))
		}
	case 8: // a second BuildStarted event for the same run
		for _, pr := range runs {
			if t := w.runs[string(pr.UID)]; t.Creator == actorController {
				w.recordEvent(modelEventRecord{At: w.now(), Key: t.Owner, Type: corev1.EventTypeNormal, Reason: v1alpha1.ReasonBuildStarted,
					Message: "PipelineRun " + pr.Name + " builds the image again"})
				w.recordEvent(modelEventRecord{At: w.now(), Key: t.Owner, Type: corev1.EventTypeNormal, Reason: v1alpha1.ReasonBuildStarted,
					Message: "PipelineRun " + pr.Name + " builds the image again"})
				break
			}
		}
	case 9: // promoting the image of a dashboard re-run of the promoted inputs
		for i := len(runs) - 1; i >= 0; i-- {
			if t := w.runs[string(runs[i].UID)]; t.RerunOfPromoted && t.Digest != "" && pi != nil {
				if mc := w.mc(facts.MachineConfigName(pi.Spec.MachineConfigPool.Name)); mc != nil {
					next := mc.DeepCopy()
					repo, _ := splitImage(t.Image)
					next.Spec.OSImageURL = repo + "@" + t.Digest
					w.mustUpdate(actorController, next)
				}
				break
			}
		}
	case 10: // pausing pool master
		w.addMaster()
		if p := w.pool(modelMasterPool); p != nil && !p.Spec.Paused {
			next := p.DeepCopy()
			next.Spec.Paused = true
			w.mustUpdate(actorController, next)
		}
	case 11: // deleting another PoolImage's run
		w.owner = modelNS + "/nobody"
		if len(runs) > 0 {
			_ = w.remove(actorController, mkPipelineRun, runs[0].Namespace, runs[0].Name)
		}
	case 13: // a pause written without the uninstall guard
		pausePool(modelNS + "/" + on)
		w.guard.set = false
		if p := w.pool("worker"); p != nil && p.Spec.Paused {
			next := p.DeepCopy()
			next.Spec.Paused = false
			w.mustUpdate(actorController, next)
			next = w.pool("worker").DeepCopy()
			next.Spec.Paused = true
			w.mustUpdate(actorController, next)
		}
	case 12: // a status that says Promoted for an image the pool does not render (a write whose
		// change the informers never deliver, so that the controller has caught up at once)
		if pi != nil {
			next := pi.DeepCopy()
			next.Status.MarkPromoted(modelPushRepos["worker"] + "@sha256:" + strings.Repeat("e", 64))
			w.objs[modelKey{mkPoolImage, pi.Namespace, pi.Name}] = next
		}
	}
}

// modelPromotedPrelude turns the empty world into one whose pool worker runs a promoted image:
// PoolImage worker created, built, verified, promoted, rendered and rolled out.
var modelPromotedPrelude = []modelEvent{
	{Kind: "pi-create"},
	{Kind: "settle", Dt: time.Second},
	{Kind: "settle", Dt: config.DefaultQuietPeriod + time.Second},
	{Kind: "tekton", Dt: 3 * time.Second},
	{Kind: "tekton", Dt: 5 * time.Minute},
	{Kind: "tekton", Dt: 2 * time.Minute},
	{Kind: "settle", Dt: time.Second},
	{Kind: "mco-render", Dt: 10 * time.Second},
	{Kind: "mco-node", Dt: time.Minute},
	{Kind: "mco-node", Dt: 5 * time.Minute},
	{Kind: "settle", Dt: time.Second},
}

// ---- the driver ----

// modelResult is what a replay found: the violations of the step that broke an invariant
// first (none: every step kept them), the steps run and the world's counters.
type modelResult struct {
	violations []modelViolation
	steps      int
	stats      modelStats
}

var (
	modelOnce            sync.Once
	modelRenameImmutable bool
	modelCRDErr          error
	modelSkip            = map[string]bool{}
	// modelShrinking silences MODEL_DEBUG while a history is shrunk.
	modelShrinking bool
)

func modelSetup(t testing.TB) {
	modelOnce.Do(func() {
		modelRenameImmutable, modelCRDErr = modelCRDRenameImmutable()
		for _, s := range strings.Split(os.Getenv("MODEL_SKIP"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				modelSkip[s] = true
			}
		}
	})
	if modelCRDErr != nil {
		t.Fatalf("read the PoolImage CRD: %v", modelCRDErr)
	}
}

// runHistory replays events in a new world (a synctest bubble: the world clock is time.Now)
// and checks every invariant after every step, stopping at the first violation.
func runHistory(t *testing.T, events []modelEvent, focus ...string) modelResult {
	modelSetup(t)
	var res modelResult
	synctest.Test(t, func(*testing.T) {
		w := newModelWorld(modelRenameImmutable)
		if len(focus) > 0 {
			w.focus = map[string]bool{}
			for _, f := range focus {
				w.focus[f] = true
			}
		}
		w.debug = os.Getenv("MODEL_DEBUG") != "" && !modelShrinking
		// Events happen at fixed times (the sum of their Dt): a conflict retry of the generated
		// reconciler sleeps ~10ms with a random jitter, which must not shift the next events.
		at := time.Now()
		run := func(ev modelEvent) bool {
			at = at.Add(ev.Dt)
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
			defer func() {
				if n := time.Now().Truncate(time.Second); n.After(at) {
					at = n
				}
			}()
			w.step++
			if w.debug {
				fmt.Printf("\tstep %d at +%s: %s\n", w.step, time.Since(modelEpoch), ev.literal())
			}
			w.do(ev)
			w.check(ev.Kind == "reconcile" || ev.Kind == "settle" || ev.Kind == "restart" || ev.Kind == "sabotage")
			return len(w.violations) == 0
		}
		for i, ev := range events {
			if i == 0 && ev.Kind == "init" && ev.N == 1 {
				ok := true
				for _, p := range modelPromotedPrelude {
					if ok = run(p); !ok {
						break
					}
				}
				if !ok {
					break
				}
				continue
			}
			if !run(ev) {
				break
			}
		}
		res = modelResult{violations: w.violations, steps: w.step, stats: w.stats}
		res.stats.steps = w.step
		_ = w.ctl.r.Metrics.Close()
	})
	return res
}

// modelEpoch is when every world starts: the synctest bubble's clock.
var modelEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// randomDt is the time before an event: mostly seconds, sometimes minutes, rarely hours.
func randomDt(rng *rand.Rand) time.Duration {
	switch p := rng.IntN(1000); {
	case p < 600:
		return time.Duration(1+rng.IntN(5)) * time.Second
	case p < 850:
		return time.Duration(5+rng.IntN(55)) * time.Second
	case p < 950:
		return time.Duration(1+rng.IntN(10)) * time.Minute
	case p < 990:
		return time.Duration(10+rng.IntN(50)) * time.Minute
	default:
		return time.Duration(60+rng.IntN(120)) * time.Minute
	}
}

// randomHistory is a seeded random history of n events after an init event (a quarter of the
// seeds start empty, the others with a promoted image).
func randomHistory(seed int64, n int) []modelEvent {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6f636c))
	init := modelEvent{Kind: "init", N: 1}
	if rng.IntN(4) == 0 {
		init.N = 0
	}
	// One history in three is about upgrades: the CVO, release reads, the MCO's operator and
	// Tekton come three times as often, so prebuilds, holds and their timeouts are exercised.
	upgrades := rng.IntN(3) == 0
	weight := func(kind string, w float64) float64 {
		if upgrades && (strings.HasPrefix(kind, "cvo-") || kind == "release-read" || kind == "mco-operator" || kind == "tekton") {
			return 3 * w
		}
		return w
	}
	total := 0.0
	for _, k := range modelEventKinds {
		total += weight(k.Kind, k.Weight)
	}
	events := []modelEvent{init}
	for len(events) <= n {
		x := rng.Float64() * total
		kind := modelEventKinds[0].Kind
		for _, k := range modelEventKinds {
			if x < weight(k.Kind, k.Weight) {
				kind = k.Kind
				break
			}
			x -= weight(k.Kind, k.Weight)
		}
		ev := modelEvent{Kind: kind, N: rng.IntN(8), Dt: randomDt(rng)}
		switch kind {
		case "tekton", "release-read":
			ev.Flag = rng.IntN(4) == 0
		default:
			ev.Flag = rng.IntN(2) == 0
		}
		switch kind {
		case "pi-create":
			ev.On = []string{"", "", "infra", "worker-b", "master"}[rng.IntN(5)]
		case "edit", "edit-burst", "retry", "revert", "strategy", "hold-timeout", "promotion-paused", "rename", "delete-pi":
			switch rng.IntN(10) {
			case 0, 1:
				ev.On = "infra"
			case 2:
				ev.On = "master"
			}
		case "pause", "unpause", "admin-mc", "os-image-stream":
			if rng.IntN(4) == 0 {
				ev.On = "infra"
			}
		}
		if kind == "revert" && rng.IntN(3) > 0 {
			ev.Flag = !lastFlag(events, "revert", ev.On)
		}
		events = append(events, ev)
	}
	return events
}

// lastFlag is the Flag of the last event of kind on On (so reverts mostly toggle).
func lastFlag(events []modelEvent, kind, on string) bool {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Kind == kind && events[i].On == on {
			return events[i].Flag
		}
	}
	return false
}

// shrink is delta debugging of a failing history: drop chunks, then single events, then
// simplify what is left, keeping it failing on the same invariant and code.
func shrink(t *testing.T, events []modelEvent, target modelViolation, deadline time.Time) []modelEvent {
	modelShrinking = true
	defer func() { modelShrinking = false }()
	fails := func(evs []modelEvent) bool {
		for _, v := range runHistory(t, evs, target.Invariant).violations {
			if v.Invariant == target.Invariant && v.Code == target.Code {
				return true
			}
		}
		return false
	}
	head, body := events[:0:0], events
	if len(events) > 0 && events[0].Kind == "init" {
		head, body = events[:1:1], events[1:]
	}
	join := func(b []modelEvent) []modelEvent { return append(append([]modelEvent{}, head...), b...) }
	// The violation is at step target.Step (the prelude's steps count too): nothing after it matters.
	prelude := 0
	if len(head) == 1 && head[0].N == 1 {
		prelude = len(modelPromotedPrelude)
	}
	if cut := target.Step - prelude; cut >= 0 && cut < len(body) && fails(join(body[:cut])) {
		body = body[:cut]
	}
	for n := 2; len(body) > 0 && time.Now().Before(deadline); {
		chunk := (len(body) + n - 1) / n
		removed := false
		for start := 0; start < len(body); start += chunk {
			cand := append(append([]modelEvent{}, body[:start]...), body[min(start+chunk, len(body)):]...)
			if fails(join(cand)) {
				body, removed = cand, true
				n = max(n-1, 2)
				break
			}
		}
		if !removed {
			if chunk == 1 {
				break
			}
			n = min(2*n, len(body))
		}
	}
	// Simplify: an event that only lets time pass becomes a wait; shorter waits, N 0, no Flag.
	for i := 0; i < len(body) && time.Now().Before(deadline); i++ {
		for _, f := range []func(e *modelEvent){
			func(e *modelEvent) { *e = modelEvent{Kind: "wait", Dt: e.Dt} },
			func(e *modelEvent) { e.N = 0 },
			func(e *modelEvent) { e.Flag = false },
			func(e *modelEvent) { e.Dt = time.Second },
		} {
			if body[i].Kind == "wait" {
				break
			}
			cand := append([]modelEvent{}, body...)
			f(&cand[i])
			if cand[i] != body[i] && fails(join(cand)) {
				body = cand
			}
		}
	}
	// Merge consecutive waits into the next event's Dt.
	var merged []modelEvent
	var wait time.Duration
	for _, e := range body {
		if e.Kind == "wait" {
			wait += e.Dt
			continue
		}
		e.Dt += wait
		wait = 0
		merged = append(merged, e)
	}
	if wait > 0 {
		merged = append(merged, modelEvent{Kind: "wait", Dt: wait})
	}
	if fails(join(merged)) {
		body = merged
	}
	return join(body)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestModel runs MODEL_SEEDS random histories of MODEL_STEPS events and checks every invariant
// after every step. It prints one line "model: seeds=S steps=N violations=V" (N: the steps run
// in total; a history stops at its first violation), a line of rollout counts, and for each
// violation its invariant, seed and (for the first MODEL_SHRINK of each invariant and code) the
// shrunk history as a modelTrace literal for TestModelTraces.
func TestModel(t *testing.T) {
	seeds, steps, seed0 := envInt("MODEL_SEEDS", 200), envInt("MODEL_STEPS", 60), envInt("MODEL_SEED0", 1)
	if testing.Short() {
		seeds, steps = min(seeds, 3), min(steps, 30)
	}
	shrinkN := envInt("MODEL_SHRINK", 1)
	budget := 30 * time.Second
	if d, err := time.ParseDuration(os.Getenv("MODEL_SHRINK_BUDGET")); err == nil {
		budget = d
	}
	type failure struct {
		seed   int
		v      modelViolation
		events []modelEvent
	}
	var fails []failure
	var total modelStats
	start := time.Now()
	for s := seed0; s < seed0+seeds; s++ {
		events := randomHistory(int64(s), steps)
		res := runHistory(t, events)
		st := res.stats
		total.steps += st.steps
		total.reconciles += st.reconciles
		total.conflicts += st.conflicts
		total.imageChanges += st.imageChanges
		total.inputChanges += st.inputChanges
		total.reboots += st.reboots
		total.nodeImageChanges += st.nodeImageChanges
		total.renameRefused += st.renameRefused
		total.renderRefusals += st.renderRefusals
		total.runs += st.runs
		total.prebuilds += st.prebuilds
		total.cancels += st.cancels
		total.pauses += st.pauses
		total.releases += st.releases
		total.holdWarns += st.holdWarns
		if len(res.violations) > 0 {
			fails = append(fails, failure{seed: s, v: res.violations[0], events: events})
		}
	}
	elapsed := time.Since(start)
	fmt.Printf("model: seeds=%d steps=%d violations=%d\n", seeds, total.steps, len(fails))
	fmt.Printf("model-rollouts: pool-image-changes=%d input-changes=%d node-reboots=%d node-image-changes=%d\n",
		total.imageChanges, total.inputChanges, total.reboots, total.nodeImageChanges)
	fmt.Printf("model-coverage: reconciles=%d conflicts=%d runs=%d prebuilds=%d cancels=%d pauses=%d releases=%d hold-timeouts=%d renames-refused=%d render-refusals=%d time=%s\n",
		total.reconciles, total.conflicts, total.runs, total.prebuilds, total.cancels, total.pauses, total.releases, total.holdWarns,
		total.renameRefused, total.renderRefusals, elapsed.Round(time.Millisecond))
	shrunk := map[string]int{}
	deadline := time.Now().Add(budget)
	for i, f := range fails {
		id := f.v.Invariant + "/" + f.v.Code
		fmt.Printf("violation %d: invariant=%s code=%s seed=%d step=%d: %s\n", i+1, f.v.Invariant, f.v.Code, f.seed, f.v.Step, f.v.Detail)
		if shrunk[id] >= shrinkN || time.Now().After(deadline) {
			fmt.Printf("\t(not shrunk: MODEL_SEED0=%d MODEL_SEEDS=1 MODEL_STEPS=%d replays it)\n", f.seed, steps)
			continue
		}
		shrunk[id]++
		small := shrink(t, f.events, f.v, deadline)
		tr := modelTrace{Name: fmt.Sprintf("seed %d: %s", f.seed, f.v.Code), Invariant: f.v.Invariant, Events: small}
		fmt.Println(tr.literal("\t"))
	}
	if len(fails) > 0 {
		t.Errorf("%d of %d histories broke an invariant", len(fails), seeds)
	}
}

// TestModelDeterministic replays the same seeds twice: the same world, the same verdict and
// the same counters (a map iterated in random order, or real time, would break replays).
func TestModelDeterministic(t *testing.T) {
	for seed := int64(1); seed <= 10; seed++ {
		events := randomHistory(seed, 60)
		a, b := runHistory(t, events), runHistory(t, events)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("seed %d replays differently:\n%+v\n%+v", seed, a, b)
		}
	}
}

// TestModelInvariantsFire shows that every invariant can fail: each trace makes the
// "controller" write what the reconciler must not (event sabotage), and the model must say so.
func TestModelInvariantsFire(t *testing.T) {
	promoted := []modelEvent{{Kind: "init", N: 1}}
	cases := []struct {
		inv    string
		events []modelEvent
	}{
		{invOneActiveBuild, append(promoted, modelEvent{Kind: "sabotage", N: 1})},
		{invNoRebuild, append(promoted, modelEvent{Kind: "sabotage", N: 2})},
		{invHoldTimeout, append(promoted, modelEvent{Kind: "sabotage", N: 3}, modelEvent{Kind: "settle", Dt: 3 * time.Hour})},
		{invHoldReleased, append(promoted, modelEvent{Kind: "sabotage", N: 4}, modelEvent{Kind: "settle", Dt: time.Second})},
		{invAdminPause, append(promoted, modelEvent{Kind: "pause"}, modelEvent{Kind: "sabotage", N: 5})},
		{invEffectiveImage, append(promoted, modelEvent{Kind: "sabotage", N: 6})},
		{invPrebuildCancel, append(promoted, modelEvent{Kind: "sabotage", N: 7})},
		{invTransitionsOnce, append(promoted, modelEvent{Kind: "sabotage", N: 8})},
		{invRerunKeepsImage, append(promoted, modelEvent{Kind: "rerun"}, modelEvent{Kind: "tekton", N: 0, Dt: 3 * time.Second},
			modelEvent{Kind: "tekton", N: 0, Dt: time.Minute}, modelEvent{Kind: "sabotage", N: 9})},
		{invMasterNotPaused, append(promoted, modelEvent{Kind: "sabotage", N: 10})},
		{invDeletesOwnRuns, append(promoted, modelEvent{Kind: "sabotage", N: 11})},
		{invPromotedRendered, append(promoted, modelEvent{Kind: "settle", Dt: time.Second}, modelEvent{Kind: "sabotage", N: 12})},
		{invPauseGuarded, append(promoted, modelEvent{Kind: "sabotage", N: 13})},
	}
	covered := map[string]bool{invReconcileNoPanic: true}
	for _, c := range cases {
		covered[c.inv] = true
	}
	for _, inv := range modelInvariants {
		if !covered[inv.Name] {
			t.Errorf("no case shows that %s can fail", inv.Name)
		}
	}
	for _, c := range cases {
		t.Run(c.inv, func(t *testing.T) {
			res := runHistory(t, c.events)
			for _, v := range res.violations {
				if v.Invariant == c.inv {
					return
				}
			}
			t.Errorf("want a violation of %s, got %+v", c.inv, res.violations)
		})
	}
}
