package poolimage

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// ByPoolIndex is the name of the informer indexes of PipelineRuns (by namespace and pool label)
// and PoolImages (by pool name) that let a reconcile find a pool's objects without listing all.
const ByPoolIndex = "byPool"

// RunsByPool indexes PipelineRuns by "<namespace>/<pool label>".
func RunsByPool(obj interface{}) ([]string, error) {
	o, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	v := o.GetLabels()[layering.PoolLabel]
	if v == "" {
		return nil, nil
	}
	return []string{o.GetNamespace() + "/" + v}, nil
}

// PoolImagesByPool indexes PoolImages by the name of their pool.
func PoolImagesByPool(obj interface{}) ([]string, error) {
	pi, ok := obj.(*v1alpha1.PoolImage)
	if !ok {
		return nil, nil
	}
	return []string{pi.Spec.MachineConfigPool.Name}, nil
}

// poolRuns returns the PipelineRuns of pi's pool in pi's namespace, newest first. They are found
// by label, so copies made by the dashboard's re-run (which drops owner references) count too.
func (r *Reconciler) poolRuns(pi *v1alpha1.PoolImage) ([]*tektonv1.PipelineRun, error) {
	objs, err := r.PipelineRunIndexer.ByIndex(ByPoolIndex, pi.Namespace+"/"+generator.PoolLabelValue(pi.Spec.MachineConfigPool.Name))
	if err != nil {
		return nil, fmt.Errorf("list PipelineRuns of pool %s: %w", pi.Spec.MachineConfigPool.Name, err)
	}
	runs := make([]*tektonv1.PipelineRun, 0, len(objs))
	for _, o := range objs {
		if pr, ok := o.(*tektonv1.PipelineRun); ok {
			runs = append(runs, pr)
		}
	}
	sort.Slice(runs, func(i, j int) bool {
		a, b := runs[i], runs[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return b.CreationTimestamp.Before(&a.CreationTimestamp)
		}
		return a.Name > b.Name
	})
	return runs, nil
}

// runReason is Tekton's reason on a finished run's Succeeded condition.
func runReason(pr *tektonv1.PipelineRun) string {
	if c := pr.Status.GetCondition(apis.ConditionSucceeded); c != nil {
		return c.Reason
	}
	return ""
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// changedList says what changed against the promoted image, for the BuildStarted event.
func changedList(sum *v1alpha1.BuildInputs) string {
	if sum == nil || len(sum.Changed) == 0 {
		return "first build"
	}
	return strings.Join(sum.Changed, ", ")
}

// lastSuccess returns when the newest successful run of pi's pool finished (zero if none).
func (r *Reconciler) lastSuccess(pi *v1alpha1.PoolImage) time.Time {
	runs, err := r.poolRuns(pi)
	if err != nil {
		return time.Time{}
	}
	var last time.Time
	for _, pr := range runs {
		if succeeded(pr) && pr.Status.CompletionTime != nil && pr.Status.CompletionTime.After(last) {
			last = pr.Status.CompletionTime.Time
		}
	}
	return last
}

func runHash(pr *tektonv1.PipelineRun) string { return pr.Labels[layering.InputsHashLabel] }

func succeeded(pr *tektonv1.PipelineRun) bool {
	c := pr.Status.GetCondition(apis.ConditionSucceeded)
	return c != nil && c.IsTrue()
}

// runImage returns the verified image of a successful run of pi as repository@sha256:digest,
// from the pipeline results IMAGE_URL and IMAGE_DIGEST. The repository must be pi's push
// repository: a run that names any other is refused.
func runImage(pi *v1alpha1.PoolImage, pr *tektonv1.PipelineRun) (string, error) {
	var url, digest string
	for _, res := range pr.Status.Results {
		switch res.Name {
		case contract.ResultImageURL:
			url = res.Value.StringVal
		case contract.ResultImageDigest:
			digest = res.Value.StringVal
		}
	}
	if url == "" || !strings.HasPrefix(digest, "sha256:") {
		return "", fmt.Errorf("PipelineRun %s/%s succeeded without the results IMAGE_URL and IMAGE_DIGEST (got %q, %q)", pr.Namespace, pr.Name, url, digest)
	}
	ref, err := name.ParseReference(url)
	if err != nil {
		return "", fmt.Errorf("PipelineRun %s/%s: result IMAGE_URL %q: %w", pr.Namespace, pr.Name, url, err)
	}
	want, err := name.ParseReference(pi.Spec.ImagePushSpec)
	if err != nil {
		return "", fmt.Errorf("spec.imagePushSpec %q: %w", pi.Spec.ImagePushSpec, err)
	}
	if ref.Context().Name() != want.Context().Name() {
		return "", fmt.Errorf("PipelineRun %s/%s pushed to %s, not to the push repository %s of spec.imagePushSpec: its image is not promoted", pr.Namespace, pr.Name, ref.Context().Name(), want.Context().Name())
	}
	img, err := name.NewDigest(ref.Context().Name() + "@" + digest)
	if err != nil {
		return "", fmt.Errorf("PipelineRun %s/%s: result IMAGE_DIGEST %q: %w", pr.Namespace, pr.Name, digest, err)
	}
	return img.Context().Name() + "@" + img.DigestStr(), nil
}

// createRun creates the run of res's inputs (res.run, rendered by resolve) under name, with
// trigger, the retry token when set and res's annotations. An existing run of that name (a
// restart, a stale cache) is returned instead of a duplicate when it builds these inputs with
// the spec the controller renders; otherwise the name is taken and the admin is told.
func (r *Reconciler) createRun(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, name string, trigger generator.Trigger, token string) (*tektonv1.PipelineRun, error) {
	pr := res.run.DeepCopy()
	pr.Name = name
	pr.Annotations[layering.TriggerAnnotation] = string(trigger)
	var changed []string
	if res.sum != nil {
		changed = res.sum.Changed
	}
	pr.Annotations[layering.DescriptionAnnotation] = generator.RunDescription(pi.Spec.MachineConfigPool.Name, trigger, changed)
	if token != "" {
		pr.Annotations[layering.RetryAnnotation] = token
	}
	for k, v := range res.annotations {
		pr.Annotations[k] = v
	}
	if ok, err := r.current(ctx, pi); err != nil {
		return nil, err
	} else if !ok {
		return nil, errStale
	}
	// At most one build (and one prebuild) of the pool is active, also when the cache has not
	// seen a run this controller made moments ago: ask the API server for the pool's runs.
	if err := r.cancelLive(ctx, pi, name, trigger == generator.TriggerPrebuild, res.hash); err != nil {
		return nil, err
	}
	r.ensurePipeline(ctx, pi, res.pipeline)
	created, err := r.PipelineClient.TektonV1().PipelineRuns(pi.Namespace).Create(ctx, pr, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := r.PipelineClient.TektonV1().PipelineRuns(pi.Namespace).Get(ctx, pr.Name, metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("get PipelineRun %s/%s: %w", pi.Namespace, pr.Name, gerr)
		}
		existing = trimmed(existing)
		if runHash(existing) != res.hash || !r.trusted(pi, existing, res) {
			return nil, inputErrorf("PipelineRun %s/%s exists but is not the run the controller renders for inputs %s (other inputs or another spec): delete it", pi.Namespace, pr.Name, res.hash)
		}
		return existing, nil
	} else if err != nil {
		return nil, fmt.Errorf("create PipelineRun %s/%s: %w", pi.Namespace, pr.Name, err)
	}
	r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonBuildStarted, "PipelineRun %s builds the image of MachineConfigPool %s (trigger: %s, inputs %s; changed: %s)",
		created.Name, pi.Spec.MachineConfigPool.Name, trigger, res.hash, changedList(res.sum))
	r.Metrics.BuildStarted(ctx, pi, string(trigger))
	return trimmed(created), nil
}

// cancelLive cancels, before a new run named keep starts, pi's active runs the API server has
// (not only the cache): for a build, every other build; for a prebuild (prebuild), the prebuilds
// of other inputs than hash.
func (r *Reconciler) cancelLive(ctx context.Context, pi *v1alpha1.PoolImage, keep string, prebuild bool, hash string) error {
	why := fmt.Sprintf("its inputs are out of date (inputs %s replace them)", hash)
	if prebuild {
		why = fmt.Sprintf("it builds for an older candidate (inputs %s replace them)", hash)
	}
	return r.cancelLiveWhy(ctx, pi, keep, prebuild, hash, why)
}

// cancelLiveWhy is cancelLive with the reason the events give.
func (r *Reconciler) cancelLiveWhy(ctx context.Context, pi *v1alpha1.PoolImage, keep string, prebuild bool, hash, why string) error {
	sel := labels.SelectorFromSet(labels.Set{layering.PoolLabel: generator.PoolLabelValue(pi.Spec.MachineConfigPool.Name)}).String()
	l, err := r.PipelineClient.TektonV1().PipelineRuns(pi.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list PipelineRuns of pool %s: %w", pi.Spec.MachineConfigPool.Name, err)
	}
	live := make([]*tektonv1.PipelineRun, 0, len(l.Items))
	for i := range l.Items {
		live = append(live, trimmed(&l.Items[i]))
	}
	for _, pr := range ownRuns(pi, live) {
		if pr.Name == keep || isPrebuild(pr) != prebuild || (prebuild && hash != "" && runHash(pr) == hash) {
			continue
		}
		if err := r.cancel(ctx, pi, pr, why); err != nil {
			return err
		}
	}
	return nil
}

// specTrimmed reports whether spec is what TrimForCache leaves of one: nothing a run executes.
func specTrimmed(spec *tektonv1.PipelineRunSpec) bool {
	return spec.PipelineRef == nil && spec.PipelineSpec == nil && len(spec.Params) == 0 && len(spec.Workspaces) == 0 &&
		len(spec.TaskRunSpecs) == 0
}

// specDigest is the digest of pr's spec that TrimForCache recorded ("" for a run that did not
// come through it).
func specDigest(pr *tektonv1.PipelineRun) string {
	return pr.Status.Annotations[layering.SpecDigestAnnotation]
}

// trimmed is a run as the informer caches it (TrimForCache): with the digest of its spec.
func trimmed(pr *tektonv1.PipelineRun) *tektonv1.PipelineRun {
	out, _ := TrimForCache(pr)
	return out.(*tektonv1.PipelineRun)
}

// ownRuns keeps the runs of pi: the pool's runs in pi's namespace that name pi in their
// annotations (a second PoolImage claiming the same pool has runs of its own).
func ownRuns(pi *v1alpha1.PoolImage, runs []*tektonv1.PipelineRun) []*tektonv1.PipelineRun {
	out := runs[:0:0]
	for _, pr := range runs {
		if pr.Annotations[layering.PoolImageLabel] == pi.Name {
			out = append(out, pr)
		}
	}
	return out
}

// isPrebuild reports whether a run builds for the release the cluster is about to upgrade to.
func isPrebuild(pr *tektonv1.PipelineRun) bool {
	return trigger(pr) == generator.TriggerPrebuild
}

// trigger is why a run was started.
func trigger(pr *tektonv1.PipelineRun) generator.Trigger {
	return generator.Trigger(pr.Annotations[layering.TriggerAnnotation])
}

// cancelled reports whether a finished run ended because it was cancelled.
func cancelled(pr *tektonv1.PipelineRun) bool {
	return pr.IsDone() && (pr.IsCancelled() || runReason(pr) == tektonv1.PipelineRunReasonCancelled.String())
}

// trusted reports whether the controller may act on pr's results as the build of res's inputs:
// its spec (as the API server stores it, digested by the informer's transform) is the one the
// controller renders for these inputs now, or the one it created for them (recorded in status
// when it created the run, which covers a change of the controller's config since). A copy by
// the dashboard's re-run is trusted; an "edit and run", a run that references a Pipeline
// instead of embedding it, or any run made from scratch with the labels, is not.
func (r *Reconciler) trusted(pi *v1alpha1.PoolImage, pr *tektonv1.PipelineRun, res *resolved) bool {
	d := specDigest(pr)
	if d == "" || runHash(pr) != res.hash {
		return false
	}
	if d == res.digest {
		return true
	}
	st := &pi.Status
	if b := st.LatestBuild; b != nil && b.InputsHash == res.hash && b.SpecSHA256 == d {
		return true
	}
	if u := st.Upgrade; u != nil && u.InputsHash == res.hash && u.SpecSHA256 == d {
		return true
	}
	return false
}

// Outcomes of a run the controller reports once (ReportedAnnotation).
const (
	outcomeSucceeded = "succeeded"
	outcomeFailed    = "failed"
	outcomeIgnored   = "ignored"
)

// reported reports whether the outcome of pr was reported already.
func reported(pr *tektonv1.PipelineRun, outcome string) bool {
	return pr.Annotations[layering.ReportedAnnotation] == string(pr.UID)+"/"+outcome
}

// report records on pr that its outcome is reported, with pr's resourceVersion as a
// precondition, and only then calls emit (the event and the metric): a second reconcile that
// sees the same finished run from a cache that lags fails the precondition and emits nothing.
// A run gone meanwhile is not reported.
func (r *Reconciler) report(ctx context.Context, pr *tektonv1.PipelineRun, outcome string, emit func()) error {
	if reported(pr, outcome) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": pr.ResourceVersion,
		"annotations":     map[string]string{layering.ReportedAnnotation: string(pr.UID) + "/" + outcome},
	}})
	if err != nil {
		return fmt.Errorf("report PipelineRun %s/%s: %w", pr.Namespace, pr.Name, err)
	}
	_, err = r.PipelineClient.TektonV1().PipelineRuns(pr.Namespace).Patch(ctx, pr.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	switch {
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		return nil // another reconcile reported it, or will
	case err != nil:
		return fmt.Errorf("report PipelineRun %s/%s: %w", pr.Namespace, pr.Name, err)
	}
	emit()
	return nil
}

// supersede cancels pi's active runs other than keep and other than prebuilds (which only a
// newer candidate replaces): at most one build per pool is active. hash is the inputs hash of
// the current inputs, which replace theirs. The cancellation carries the run's resourceVersion,
// so it is counted once.
func (r *Reconciler) supersede(ctx context.Context, pi *v1alpha1.PoolImage, runs []*tektonv1.PipelineRun, keep, hash string) error {
	for _, pr := range runs {
		if pr.Name == keep || isPrebuild(pr) {
			continue
		}
		if err := r.cancel(ctx, pi, pr, fmt.Sprintf("its inputs are out of date (inputs %s replace them)", hash)); err != nil {
			return err
		}
	}
	return nil
}

// cancel cancels an active run, conditional on its resourceVersion, and reports it once.
func (r *Reconciler) cancel(ctx context.Context, pi *v1alpha1.PoolImage, pr *tektonv1.PipelineRun, why string) error {
	s := scratchOf(ctx)
	if pr.IsDone() || pr.IsCancelled() || s.cancelled[pr.Name] {
		return nil
	}
	if ok, err := r.current(ctx, pi); err != nil || !ok {
		return err // a stale spec cancels nothing; the newer one is reconciled next
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": pr.ResourceVersion},
		"spec":     map[string]any{"status": tektonv1.PipelineRunSpecStatusCancelled},
	})
	if err != nil {
		return fmt.Errorf("cancel PipelineRun %s/%s: %w", pr.Namespace, pr.Name, err)
	}
	_, err = r.PipelineClient.TektonV1().PipelineRuns(pr.Namespace).Patch(ctx, pr.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	switch {
	case apierrors.IsConflict(err):
		// Changed since the cache saw it (perhaps finished or cancelled already): the change
		// re-enqueues the PoolImage, and the next reconcile decides again.
		return nil
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("cancel superseded PipelineRun %s/%s: %w", pr.Namespace, pr.Name, err)
	}
	s.cancelled[pr.Name] = true
	r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonSuperseded, "cancelled PipelineRun %s: %s", pr.Name, why)
	r.Metrics.Superseded(ctx, pi)
	return nil
}

// prune deletes pi's finished runs beyond the newest keep, always keeping the newest
// successful run of the promoted inputs, the latest build, the build for the candidate release
// and every run still active. runs are pi's own (ownRuns): a PoolImage that lost its claim on
// the pool never prunes the runs of the one that holds it.
func (r *Reconciler) prune(ctx context.Context, pi *v1alpha1.PoolImage, runs []*tektonv1.PipelineRun, keep int) error {
	promoted := ""
	for _, pr := range runs {
		if pi.Status.CurrentInputsHash != "" && runHash(pr) == pi.Status.CurrentInputsHash && succeeded(pr) {
			promoted = pr.Name
			break
		}
	}
	candidate, latest := "", ""
	if u := pi.Status.Upgrade; u != nil {
		candidate = u.PipelineRun
	}
	if b := pi.Status.LatestBuild; b != nil {
		latest = b.PipelineRun
	}
	kept := 0
	gone := map[string]bool{}
	for _, pr := range runs {
		if kept < keep || pr.Name == promoted || pr.Name == candidate || pr.Name == latest || !pr.IsDone() {
			kept++
			continue
		}
		err := r.PipelineClient.TektonV1().PipelineRuns(pr.Namespace).Delete(ctx, pr.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete PipelineRun %s/%s beyond retention: %w", pr.Namespace, pr.Name, err)
		}
		gone[pr.Name] = true
	}
	if len(gone) > 0 {
		// A Pipeline can only have lost its last run now.
		if err := r.prunePipelines(ctx, pi.Namespace, gone); err != nil {
			return err
		}
	}
	return r.pruneTags(ctx, pi, keep)
}

// pruneTags deletes pi's finished tag TaskRuns (generator.RenderTag) beyond the newest keep,
// keeping the one of the current image.
func (r *Reconciler) pruneTags(ctx context.Context, pi *v1alpha1.PoolImage, keep int) error {
	sel := labels.SelectorFromSet(labels.Set{"app.kubernetes.io/component": generator.TagComponent,
		layering.PoolLabel: generator.PoolLabelValue(pi.Spec.MachineConfigPool.Name)})
	trs, err := r.TaskRunLister.TaskRuns(pi.Namespace).List(sel)
	if err != nil {
		return fmt.Errorf("list tag TaskRuns of pool %s: %w", pi.Spec.MachineConfigPool.Name, err)
	}
	current := ""
	if i := strings.Index(pi.Status.CurrentImage, "@"); i >= 0 {
		current = generator.TagRunName(pi.Spec.MachineConfigPool.Name, pi.Status.CurrentImage[i+1:])
	}
	sort.Slice(trs, func(i, j int) bool { return trs[j].CreationTimestamp.Before(&trs[i].CreationTimestamp) })
	for i, tr := range trs {
		if i < keep || tr.Name == current || tr.Annotations[layering.PoolImageLabel] != pi.Name || !tr.IsDone() {
			continue
		}
		err := r.PipelineClient.TektonV1().TaskRuns(tr.Namespace).Delete(ctx, tr.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete TaskRun %s/%s beyond retention: %w", tr.Namespace, tr.Name, err)
		}
	}
	return nil
}

// TrimForCache is the transform of the PipelineRun and TaskRun informers: it keeps what the
// reconciler reads (metadata but managed fields, spec.status, conditions, times, results, child
// references, step states), records the digest of a run's spec (generator.SpecDigest) under
// layering.SpecDigestAnnotation in the status annotations of the cached copy, and drops the
// embedded pipeline and task specs, parameters and
// workspaces, which make a run ~50 KB (twice that once Tekton copies the spec into its status).
// At 1,000 pools the cache would otherwise hold most of the controller's memory.
func TrimForCache(obj interface{}) (interface{}, error) {
	switch o := obj.(type) {
	case *tektonv1.PipelineRun:
		out := &tektonv1.PipelineRun{TypeMeta: o.TypeMeta, ObjectMeta: *o.ObjectMeta.DeepCopy()}
		out.ManagedFields = nil
		out.Spec.Status = o.Spec.Status
		out.Status.Status = *o.Status.Status.DeepCopy()
		// What the run executes, digested before the spec is dropped. A copy trimmed already
		// (its spec gone, the digest in its status) keeps its digest: the transform must be
		// idempotent.
		if d := o.Status.Annotations[layering.SpecDigestAnnotation]; d == "" || !specTrimmed(&o.Spec) {
			d = generator.SpecDigest(&o.Spec)
			if out.Status.Annotations == nil {
				out.Status.Annotations = map[string]string{}
			}
			out.Status.Annotations[layering.SpecDigestAnnotation] = d
		}
		out.Status.StartTime = o.Status.StartTime
		out.Status.CompletionTime = o.Status.CompletionTime
		out.Status.Results = o.Status.Results
		out.Status.ChildReferences = o.Status.ChildReferences
		return out, nil
	case *tektonv1.TaskRun:
		out := &tektonv1.TaskRun{TypeMeta: o.TypeMeta, ObjectMeta: o.ObjectMeta}
		out.ManagedFields = nil
		out.Status.Status = o.Status.Status
		out.Status.StartTime = o.Status.StartTime
		out.Status.CompletionTime = o.Status.CompletionTime
		out.Status.Steps = o.Status.Steps
		out.Status.Results = o.Status.Results
		return out, nil
	}
	return obj, nil
}
