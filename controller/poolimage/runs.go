package poolimage

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
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

// runImage returns the verified image of a successful run as repository@sha256:digest, from the
// pipeline results IMAGE_URL and IMAGE_DIGEST.
func runImage(pr *tektonv1.PipelineRun) (string, error) {
	var url, digest string
	for _, res := range pr.Status.Results {
		switch res.Name {
		case generator.ResultImageURL:
			url = res.Value.StringVal
		case generator.ResultImageDigest:
			digest = res.Value.StringVal
		}
	}
	if url == "" || !strings.HasPrefix(digest, "sha256:") {
		return "", fmt.Errorf("PipelineRun %s/%s succeeded without the results IMAGE_URL and IMAGE_DIGEST (got %q, %q)", pr.Namespace, pr.Name, url, digest)
	}
	repo := url
	if i := strings.LastIndex(url, ":"); i > strings.LastIndex(url, "/") {
		repo = url[:i]
	}
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	return repo + "@" + digest, nil
}

// createRun renders and creates the run of res's inputs (a retry of them when token is set). An
// existing run of the same name (a restart, or a stale lister) is followed instead of duplicated.
// Following it then cancels the runs it supersedes.
func (r *Reconciler) createRun(ctx context.Context, pi *v1alpha1.PoolImage, res *resolved, trigger, token string) (*tektonv1.PipelineRun, error) {
	in := res.inputs
	in.Trigger = trigger
	pr, err := generator.Render(pi, in)
	if err != nil {
		return nil, inputErrorf("cannot render the PipelineRun: %v", err)
	}
	pr.Name = generator.RetryRunName(pi.Spec.MachineConfigPool.Name, res.hash, token)
	if token != "" {
		pr.Annotations[layering.RetryAnnotation] = token
	}
	for k, v := range res.annotations {
		pr.Annotations[k] = v
	}
	created, err := r.PipelineClient.TektonV1().PipelineRuns(pi.Namespace).Create(ctx, pr, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := r.PipelineClient.TektonV1().PipelineRuns(pi.Namespace).Get(ctx, pr.Name, metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("get PipelineRun %s/%s: %w", pi.Namespace, pr.Name, gerr)
		}
		if runHash(existing) != res.hash {
			return nil, inputErrorf("PipelineRun %s/%s exists but builds other inputs (%s): delete it", pi.Namespace, pr.Name, runHash(existing))
		}
		return existing, nil
	} else if err != nil {
		return nil, fmt.Errorf("create PipelineRun %s/%s: %w", pi.Namespace, pr.Name, err)
	}
	r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonBuildStarted, "PipelineRun %s builds the image of MachineConfigPool %s (trigger: %s, inputs %s; changed: %s)",
		created.Name, pi.Spec.MachineConfigPool.Name, trigger, res.hash, changedList(res.sum))
	r.Metrics.BuildStarted(ctx, pi, trigger)
	return created, nil
}

// supersede cancels the pool's active runs other than keep: at most one run per pool is active.
// hash is the inputs hash of the current inputs, which replace theirs.
func (r *Reconciler) supersede(ctx context.Context, pi *v1alpha1.PoolImage, runs []*tektonv1.PipelineRun, keep, hash string) error {
	patch := []byte(`{"spec":{"status":"` + tektonv1.PipelineRunSpecStatusCancelled + `"}}`)
	for _, pr := range runs {
		if pr.Name == keep || pr.IsDone() || pr.IsCancelled() {
			continue
		}
		_, err := r.PipelineClient.TektonV1().PipelineRuns(pr.Namespace).Patch(ctx, pr.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("cancel superseded PipelineRun %s/%s: %w", pr.Namespace, pr.Name, err)
		}
		r.event(ctx, pi, corev1.EventTypeNormal, v1alpha1.ReasonSuperseded, "cancelled PipelineRun %s: its inputs are out of date (inputs %s replace them)", pr.Name, hash)
		r.Metrics.Superseded(ctx, pi)
	}
	return nil
}

// prune deletes the pool's finished runs beyond the newest keep, always keeping the newest
// successful run of the promoted inputs, the build for the candidate release and every run
// still active.
func (r *Reconciler) prune(ctx context.Context, pi *v1alpha1.PoolImage, runs []*tektonv1.PipelineRun, keep int) error {
	promoted := ""
	for _, pr := range runs {
		if pi.Status.CurrentInputsHash != "" && runHash(pr) == pi.Status.CurrentInputsHash && succeeded(pr) {
			promoted = pr.Name
			break
		}
	}
	candidate := ""
	if u := pi.Status.Upgrade; u != nil {
		candidate = u.PipelineRun
	}
	kept := 0
	for _, pr := range runs {
		if kept < keep || pr.Name == promoted || pr.Name == candidate || !pr.IsDone() {
			kept++
			continue
		}
		err := r.PipelineClient.TektonV1().PipelineRuns(pr.Namespace).Delete(ctx, pr.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete PipelineRun %s/%s beyond retention: %w", pr.Namespace, pr.Name, err)
		}
	}
	return nil
}

// TrimForCache is the transform of the PipelineRun and TaskRun informers: it keeps what the
// reconciler reads (metadata but managed fields, spec.status, conditions, times, results, child
// references, step states) and drops the embedded pipeline and task specs, parameters and
// workspaces, which make a run ~50 KB (twice that once Tekton copies the spec into its status).
// At 1,000 pools the cache would otherwise hold most of the controller's memory.
func TrimForCache(obj interface{}) (interface{}, error) {
	switch o := obj.(type) {
	case *tektonv1.PipelineRun:
		out := &tektonv1.PipelineRun{TypeMeta: o.TypeMeta, ObjectMeta: o.ObjectMeta}
		out.ManagedFields = nil
		out.Spec.Status = o.Spec.Status
		out.Status.Status = o.Status.Status
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
