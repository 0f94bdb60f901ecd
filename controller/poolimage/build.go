package poolimage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/logging"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/metrics"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// AutoRetryDelay is how long after a rebuild on a new base image failed its one automatic retry
// starts: the build task itself is never retried by Tekton, and an upgrade is when a transient
// failure (a registry or a repository that blinked) would otherwise keep the pool on its old
// image until someone acts.
const AutoRetryDelay = time.Minute

// newRetryToken returns the value of the retry annotation when the controller has not honoured it
// yet; "" otherwise. A value is honoured once, ever: status.retry records it, and nothing else
// rewrites that field.
func newRetryToken(pi *v1alpha1.PoolImage) string {
	t := pi.Annotations[layering.RetryAnnotation]
	st := &pi.Status
	switch {
	case t == "" || pi.Annotations[layering.RetryHonouredAnnotation] == t:
		return ""
	case st.Retry != nil:
		if st.Retry.Token == t {
			return ""
		}
	case st.LatestBuild != nil && st.LatestBuild.Retry == t:
		// Honoured by a controller that recorded it in latestBuild only (before status.retry).
		return ""
	}
	return t
}

// honourRetry reports whether token may be honoured now: the API server's PoolImage (not the
// cache's, which may predate the controller's own record) does not record it as honoured.
func (r *Reconciler) honourRetry(ctx context.Context, pi *v1alpha1.PoolImage, token string) (bool, error) {
	if r.PoolImageClient == nil {
		return true, nil
	}
	live, err := r.PoolImageClient.LayeringV1alpha1().PoolImages(pi.Namespace).Get(ctx, pi.Name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("get PoolImage %s/%s: %w", pi.Namespace, pi.Name, err)
	}
	if live.Annotations[layering.RetryHonouredAnnotation] == token || (live.Status.Retry != nil && live.Status.Retry.Token == token) {
		return false, nil
	}
	return true, nil
}

// recordRetry records on the PoolImage's metadata that token was honoured. Metadata, not status:
// a reconcile that computed its status from an outdated cache overwrites the status (the
// generated reconciler re-reads the object and writes its own status over it), never this
// annotation. The patch carries the resourceVersion read just before; a conflict retries the
// reconcile, which finds the retry's run by its name and records it then.
func (r *Reconciler) recordRetry(ctx context.Context, pi *v1alpha1.PoolImage, token string) error {
	if r.PoolImageClient == nil {
		return nil
	}
	live, err := r.PoolImageClient.LayeringV1alpha1().PoolImages(pi.Namespace).Get(ctx, pi.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get PoolImage %s/%s: %w", pi.Namespace, pi.Name, err)
	}
	if live.Annotations[layering.RetryHonouredAnnotation] == token {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": live.ResourceVersion,
		"annotations": map[string]string{layering.RetryHonouredAnnotation: token}}})
	if err != nil {
		return fmt.Errorf("record retry of PoolImage %s/%s: %w", pi.Namespace, pi.Name, err)
	}
	if _, err := r.PoolImageClient.LayeringV1alpha1().PoolImages(pi.Namespace).Patch(ctx, pi.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("record retry of PoolImage %s/%s: %w", pi.Namespace, pi.Name, err)
	}
	return nil
}

// retryForPrebuild reports whether a new retry token is meant for the failed prebuild: it
// failed, and the build of the current inputs did not (a new token first retries a failed build
// of the current inputs, and rebuilds promoted inputs only when nothing failed).
func retryForPrebuild(pi *v1alpha1.PoolImage, res *resolved) bool {
	st := &pi.Status
	if st.Upgrade == nil || st.Upgrade.Failure == nil {
		return false
	}
	b := st.LatestBuild
	return b == nil || b.InputsHash != res.hash || b.Failure == nil
}

// reconcileBuild decides what the resolved inputs need: nothing (already promoted), following
// their run, or starting one after the quiet period. runs are pi's own, newest first.
func (r *Reconciler) reconcileBuild(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, runs []*tektonv1.PipelineRun) error {
	cfg := config.FromContextOrDefaults(ctx)
	st := &pi.Status
	pool := pi.Spec.MachineConfigPool.Name
	token := newRetryToken(pi)
	if token != "" && retryForPrebuild(pi, res) {
		token = "" // the prebuild takes it
	}

	if err := r.restorePromoted(pi, res); err != nil {
		return err
	}
	if st.CurrentInputsHash != "" && st.CurrentInputsHash != res.hash && st.CurrentImage != "" {
		// Promoted under an earlier hash version from these same inputs: adopt the new hash,
		// do not rebuild (and reboot the pool) for a change of the hash's definition.
		if legacy, err := generator.LegacyInputsHashes(pi, res.inputs); err == nil && slices.Contains(legacy, st.CurrentInputsHash) {
			st.CurrentInputsHash = res.hash
			if b := st.LatestBuild; b != nil && slices.Contains(legacy, b.InputsHash) {
				b.InputsHash = res.hash
			}
		}
	}

	if token == "" && res.hash == st.CurrentInputsHash && st.CurrentImage != "" {
		// Built and promoted already: keep the MachineConfig as it should be, stop stale builds.
		// Other runs of these inputs (a re-run from the dashboard) make a new digest of the same
		// inputs: not promoted, or every node would reboot for no change.
		st.Pending = nil
		if err := r.supersede(ctx, pi, runs, "", res.hash); err != nil {
			return err
		}
		r.ignoreRuns(ctx, pi, res, runs, "")
		return r.promote(ctx, pi, res, st.CurrentImage)
	}

	if token != "" {
		if ok, err := r.honourRetry(ctx, pi, token); err != nil {
			return err
		} else if !ok {
			return errStale // honoured already: the cache's PoolImage is older than that
		}
		// A retry: a new run of the same inputs under a name derived from the token, at once.
		name := generator.RetryRunName(pool, res.hash, token)
		run := findRun(runs, name)
		if run == nil || !r.trusted(pi, run, res) {
			created, err := r.createRun(ctx, pi, res, name, generator.TriggerRetry, token)
			if err != nil {
				return err
			}
			run = created
		}
		if err := r.recordRetry(ctx, pi, token); err != nil {
			return err
		}
		st.Retry = &v1alpha1.RetryStatus{Token: token, PipelineRun: run.Name}
		st.Pending = nil
		st.LatestBuild = r.buildStatus(pi, res, run)
		return r.follow(ctx, pi, res, run, runs)
	}

	run := r.chooseRun(pi, res, runs)
	r.ignoreRuns(ctx, pi, res, runs, nameOf(run))
	if run == nil && st.LatestBuild != nil && st.LatestBuild.InputsHash == res.hash && st.LatestBuild.PipelineRun != "" {
		// The run of these inputs is not in the informer's cache: either the cache has not seen
		// the run this controller just created (follow it), or it was deleted by hand (do not
		// rebuild on our own). Only the API server can tell.
		live, err := r.PipelineClient.TektonV1().PipelineRuns(pi.Namespace).Get(ctx, st.LatestBuild.PipelineRun, metav1.GetOptions{})
		switch {
		case err == nil && r.trusted(pi, trimmed(live), res) && !(isPrebuild(live) && live.IsDone() && !succeeded(live)):
			return r.follow(ctx, pi, res, trimmed(live), runs)
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("get PipelineRun %s/%s: %w", pi.Namespace, st.LatestBuild.PipelineRun, err)
		case err == nil:
			// Another run of that name: not the build of these inputs.
		default:
			return r.deleted(ctx, pi, res)
		}
	}

	if run == nil {
		trigger := generator.TriggerSpec
		if st.CurrentInputs != nil && st.CurrentInputs.BaseImage != res.sum.BaseImage {
			trigger = generator.TriggerUpgrade
		}
		if !baseOnly(res.sum) && !r.quiet(ctx, pi, res.hash, cfg.QuietPeriod) {
			return nil
		}
		created, err := r.createRun(ctx, pi, res, generator.RunName(pool, res.hash), trigger, "")
		if err != nil {
			return err
		}
		run = created
		st.Pending = nil
		st.LatestBuild = r.buildStatus(pi, res, run)
	}

	if run.IsDone() && !succeeded(run) && !cancelled(run) && trigger(run) == generator.TriggerUpgrade {
		// A rebuild on a new base image failed: retry it once, after AutoRetryDelay.
		wait := timeOf(run.Status.CompletionTime).Add(AutoRetryDelay).Sub(r.Clock.Now())
		if wait > 0 {
			r.EnqueueAfter(pi, wait)
		} else {
			if err := r.reportFailed(ctx, pi, run); err != nil {
				return err
			}
			created, err := r.createRun(ctx, pi, res, generator.AutoRetryRunName(pool, res.hash), generator.TriggerAutoRetry, "")
			if err != nil {
				return err
			}
			run = created
			st.LatestBuild = r.buildStatus(pi, res, run)
		}
	}
	return r.follow(ctx, pi, res, run, runs)
}

// buildStatus starts the status of a build of res's inputs by run.
func (r *Reconciler) buildStatus(pi *v1alpha1.PoolImage, res *resolved, run *tektonv1.PipelineRun) *v1alpha1.BuildStatus {
	digest := specDigest(run)
	if digest == "" {
		digest = res.digest
	}
	return &v1alpha1.BuildStatus{PipelineRun: run.Name, InputsHash: res.hash, Inputs: res.sum,
		Retry: run.Annotations[layering.RetryAnnotation], SpecSHA256: digest}
}

// chooseRun returns the run to follow as the build of res's inputs, among pi's trusted runs of
// them: the one the status follows while it runs or after it succeeded, else the newest that
// succeeded, else the newest running, else the newest finished. A prebuild that failed or was
// cancelled left no result: it is not the build of these inputs (the upgrade builds once).
func (r *Reconciler) chooseRun(pi *v1alpha1.PoolImage, res *resolved, runs []*tektonv1.PipelineRun) *tektonv1.PipelineRun {
	var candidates []*tektonv1.PipelineRun
	for _, pr := range runs {
		if runHash(pr) != res.hash || !r.trusted(pi, pr, res) {
			continue
		}
		if isPrebuild(pr) && pr.IsDone() && !succeeded(pr) {
			continue
		}
		candidates = append(candidates, pr)
	}
	followed := ""
	if b := pi.Status.LatestBuild; b != nil {
		followed = b.PipelineRun
	}
	// Of several runs that succeeded, the controller's own (named after the inputs) before a
	// copy: a re-run's digest is promoted only when no run of the controller's succeeded.
	sort.SliceStable(candidates, func(i, j int) bool {
		oi, oj := ownName(pi, candidates[i]), ownName(pi, candidates[j])
		return oi && !oj && succeeded(candidates[i]) && succeeded(candidates[j])
	})
	return preferRun(candidates, followed, false)
}

// ownName reports whether pr has one of the names the controller gives the runs of its inputs
// (a copy made by the dashboard's re-run has a generated one).
func ownName(pi *v1alpha1.PoolImage, pr *tektonv1.PipelineRun) bool {
	pool, h := pi.Spec.MachineConfigPool.Name, runHash(pr)
	switch pr.Name {
	case generator.RunName(pool, h), generator.PrebuildRunName(pool, h), generator.AutoRetryRunName(pool, h):
		return true
	}
	t := pr.Annotations[layering.RetryAnnotation]
	return t != "" && pr.Name == generator.RetryRunName(pool, h, t)
}

// preferRun picks among candidates (newest first): the run named followed (while it runs or
// after it succeeded; always when anyState), else the newest that succeeded, else the newest
// running, else the newest finished.
func preferRun(candidates []*tektonv1.PipelineRun, followed string, anyState bool) *tektonv1.PipelineRun {
	if pr := findRun(candidates, followed); pr != nil && (anyState || !pr.IsDone() || succeeded(pr)) {
		return pr
	}
	for _, want := range []func(*tektonv1.PipelineRun) bool{
		succeeded,
		func(pr *tektonv1.PipelineRun) bool { return !pr.IsDone() },
		func(*tektonv1.PipelineRun) bool { return true },
	} {
		for _, pr := range candidates {
			if want(pr) {
				return pr
			}
		}
	}
	return nil
}

// ignoreRuns reports, once each, the finished runs of res's inputs that carry pi's labels but
// not the spec the controller renders (an "edit and run" from the dashboard, a hand-made run):
// their results are never promoted. keep is the run the controller follows.
func (r *Reconciler) ignoreRuns(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, runs []*tektonv1.PipelineRun, keep string) {
	for _, pr := range runs {
		if pr.Name == keep || runHash(pr) != res.hash || !pr.IsDone() || r.trusted(pi, pr, res) {
			continue
		}
		err := r.report(ctx, pr, outcomeIgnored, func() {
			r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonRunIgnored,
				"PipelineRun %s carries the labels of MachineConfigPool %s's build of inputs %s but not the spec the controller rendered for them (edited, or made by hand): its image is not promoted",
				pr.Name, pi.Spec.MachineConfigPool.Name, res.hash)
		})
		if err != nil {
			logging.FromContext(ctx).Warnw("report an ignored PipelineRun", "pipelinerun", pr.Name, "error", err)
		}
	}
}

// deleted handles the run of the current inputs that the status names and the API server no
// longer has: it had built and verified its image (still promotable), or it was deleted before
// it finished (reported once; no rebuild without a retry).
func (r *Reconciler) deleted(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved) error {
	st := &pi.Status
	st.Pending = nil
	if b := st.LatestBuild; b.Image != "" && st.GetCondition(v1alpha1.ConditionBuildSucceeded).IsTrue() {
		if pi.Spec.PromotionPaused() {
			st.MarkPromotionPaused(b.Image)
			return nil
		}
		return r.promote(ctx, pi, res, b.Image)
	}
	if st.LatestBuild.Failure == nil {
		f := &v1alpha1.BuildFailure{
			Reason:  "PipelineRunDeleted",
			Message: fmt.Sprintf("PipelineRun %s was deleted before it finished; set the annotation %s to a new value to build again", st.LatestBuild.PipelineRun, layering.RetryAnnotation),
		}
		st.MarkKeptAfterFailure()
		st.MarkBuildFailed(f)
		if r.firstReport(pi, st.LatestBuild.PipelineRun, outcomeFailed) {
			r.Metrics.BuildFinished(ctx, pi, metrics.ResultFailed, f.Reason, f, time.Time{}, time.Time{})
			r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonBuildFailed, "PipelineRun %s was deleted before it finished", st.LatestBuild.PipelineRun)
		}
	}
	return nil
}

// baseOnly reports whether the new inputs differ from the promoted ones only in the release's
// base and extensions images. Those build at once: the MCO's operator writes both into the
// ControllerConfig in one update per release (pkg/operator/sync.go, syncRenderConfig sets
// spec.BaseOSContainerImage and spec.BaseOSExtensionsContainerImage from the same release
// images and applies the ControllerConfig once), so waiting for more changes to come gains
// nothing and holds the upgrade back by the quiet period; `make bench` prints both latencies.
func baseOnly(sum *v1alpha1.BuildInputs) bool {
	if sum == nil || len(sum.Changed) == 0 {
		return false
	}
	for _, c := range sum.Changed {
		if c != "baseImage" && c != "extensionsImage" {
			return false
		}
	}
	return true
}

// quiet reports whether the inputs hash has stayed unchanged for the quiet period; if not, it
// records when they were first seen and re-enqueues the PoolImage for the end of the period.
func (r *Reconciler) quiet(ctx context.Context, pi *v1alpha1.PoolImage, hash string, period time.Duration) bool {
	st := &pi.Status
	now := r.Clock.Now()
	if st.Pending == nil || st.Pending.InputsHash != hash {
		st.Pending = &v1alpha1.PendingBuild{InputsHash: hash, Since: metav1.NewTime(now)}
	}
	wait := st.Pending.Since.Add(period).Sub(now)
	if wait <= 0 {
		return true
	}
	st.MarkAwaitingBuild()
	st.MarkQuietPeriod(st.Pending.Since.Add(period))
	r.EnqueueAfter(pi, wait)
	logging.FromContext(ctx).Infof("inputs %s of pool %s change; building once they stay unchanged for %s", hash, pi.Spec.MachineConfigPool.Name, period)
	return false
}

// follow reflects the state of the run of the current inputs in the status and, once it has
// succeeded, promotes its image. run is trusted (its spec is the one the controller renders).
func (r *Reconciler) follow(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, run *tektonv1.PipelineRun, runs []*tektonv1.PipelineRun) error {
	st := &pi.Status
	if st.LatestBuild == nil || st.LatestBuild.PipelineRun != run.Name {
		st.LatestBuild = r.buildStatus(pi, res, run)
	}
	// The inputs (and what changed in them) are recorded when the build starts and kept: they
	// say why this build happened, also after it is promoted.
	b := st.LatestBuild
	b.StartTime = run.Status.StartTime
	b.CompletionTime = run.Status.CompletionTime
	st.Pending = nil
	// Whatever state it is in, this run is the one of the current inputs: any other active run
	// of the pool builds stale inputs.
	if err := r.supersede(ctx, pi, runs, run.Name, res.hash); err != nil {
		return err
	}

	if !run.IsDone() {
		// Promoted first, so that Ready reports the more telling condition: Building.
		st.MarkAwaitingBuild()
		st.MarkBuilding(run.Name)
		return nil
	}
	if !succeeded(run) {
		return r.reportFailed(ctx, pi, run)
	}

	image, err := runImage(pi, run)
	if err != nil {
		f := &v1alpha1.BuildFailure{Reason: "MissingResults", Message: err.Error(),
			LogsCommand: fmt.Sprintf("tkn pipelinerun logs %s -n %s", run.Name, run.Namespace)}
		st.MarkKeptAfterFailure() // first: Ready shows the more telling build failure
		st.MarkBuildFailed(f)
		return r.report(ctx, run, outcomeFailed, func() {
			r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonBuildFailed, "%s; the pool keeps its current image", err)
			r.Metrics.BuildFinished(ctx, pi, metrics.ResultFailed, f.Reason, f, timeOf(run.Status.StartTime), timeOf(run.Status.CompletionTime))
		})
	}
	st.MarkBuildSucceeded(image)
	if err := r.report(ctx, run, outcomeSucceeded, func() {
		r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonBuildSucceeded, "PipelineRun %s built and verified %s", run.Name, image)
		r.Metrics.BuildFinished(ctx, pi, metrics.ResultSucceeded, runReason(run), nil, timeOf(run.Status.StartTime), timeOf(run.Status.CompletionTime))
	}); err != nil {
		return err
	}
	if pi.Spec.PromotionPaused() {
		st.MarkPromotionPaused(image)
		return nil
	}
	return r.promote(ctx, pi, res, image)
}

// reportFailed records a failed run of the current inputs in the status and reports it once.
func (r *Reconciler) reportFailed(ctx context.Context, pi *v1alpha1.PoolImage, run *tektonv1.PipelineRun) error {
	st := &pi.Status
	f := r.failureOf(run, pi, config.FromContextOrDefaults(ctx).DashboardURL)
	if st.LatestBuild != nil && st.LatestBuild.PipelineRun == run.Name {
		st.MarkKeptAfterFailure() // first: Ready shows the more telling build failure
		st.MarkBuildFailed(f)
	}
	note := ""
	if trigger(run) == generator.TriggerUpgrade && !cancelled(run) {
		note = fmt.Sprintf("; it is retried once, %s after it failed", AutoRetryDelay)
	}
	return r.report(ctx, run, outcomeFailed, func() {
		r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonBuildFailed, "%s; the pool keeps its current image%s",
			flatten(f.Summary("; logs: ", "")), note)
		r.Metrics.BuildFinished(ctx, pi, metrics.ResultFailed, runReason(run), f, timeOf(run.Status.StartTime), timeOf(run.Status.CompletionTime))
	})
}

// firstReport reports whether the outcome of a run that no longer exists (so cannot carry
// ReportedAnnotation) is seen for the first time by this process; the status written after it
// carries the failure, so a later process does not report it again.
func (r *Reconciler) firstReport(pi *v1alpha1.PoolImage, run, outcome string) bool {
	r.reportedMu.Lock()
	defer r.reportedMu.Unlock()
	if r.reported == nil {
		r.reported = map[string]bool{}
	}
	key := string(pi.UID) + "/" + run + "/" + outcome
	if r.reported[key] {
		return false
	}
	r.reported[key] = true
	return true
}

func findRun(runs []*tektonv1.PipelineRun, name string) *tektonv1.PipelineRun {
	for _, pr := range runs {
		if pr.Name == name {
			return pr
		}
	}
	return nil
}

func nameOf(pr *tektonv1.PipelineRun) string {
	if pr == nil {
		return ""
	}
	return pr.Name
}
