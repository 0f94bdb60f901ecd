package poolimage

import (
	"context"
	"fmt"
	"time"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

const (
	// pipelineTouchEvery is how stale a Pipeline's PipelineUsedAnnotation may be before a new
	// run of it refreshes it.
	pipelineTouchEvery = 10 * time.Minute
	// pipelineKeepUnused is how long a Pipeline no run references stays: longer than any lag
	// between creating a run and the cache seeing it, so no run is created of a Pipeline being
	// deleted (the deletion's resourceVersion precondition covers a refresh in between).
	pipelineKeepUnused = time.Hour
	// lastAppliedAnnotation marks an object someone applied with kubectl (a GitOps user running
	// the release's Pipeline): the controller never deletes it.
	lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
)

// ensurePipeline makes sure the Pipeline want (generator.RenderPipeline) exists before a run
// references it: Tekton fails a run whose Pipeline is missing. A Pipeline of that name is never
// updated: its name is its spec's digest, so one with another spec was edited or made by
// someone else, and the admin is told to delete it (runs of it would not be trusted anyway).
func (r *Reconciler) ensurePipeline(ctx context.Context, want *tektonv1.Pipeline) error {
	client := r.PipelineClient.TektonV1().Pipelines(want.Namespace)
	now := r.Clock.Now()
	have, err := client.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		pl := want.DeepCopy()
		pl.Labels["app.kubernetes.io/managed-by"] = layering.ManagedByValue
		pl.Annotations[layering.PipelineUsedAnnotation] = now.UTC().Format(time.RFC3339)
		_, err = client.Create(ctx, pl, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Pipeline %s/%s: %w", want.Namespace, want.Name, err)
		}
		have, err = client.Get(ctx, want.Name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("get Pipeline %s/%s: %w", want.Namespace, want.Name, err)
	}
	if generator.PipelineDigest(&have.Spec) != generator.PipelineDigest(&want.Spec) {
		return inputErrorf("Pipeline %s/%s is not the pipeline its name stands for (edited after it was created, or made by someone else): delete it and the controller creates it again",
			want.Namespace, want.Name)
	}
	if used, err := time.Parse(time.RFC3339, have.Annotations[layering.PipelineUsedAnnotation]); err == nil && now.Sub(used) < pipelineTouchEvery {
		return nil
	}
	// Record the use, so no cleanup deletes the Pipeline while the run is on its way to the
	// cache: a cleanup that read it before deletes with its resourceVersion and fails now.
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, layering.PipelineUsedAnnotation, now.UTC().Format(time.RFC3339))
	if _, err := client.Patch(ctx, want.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		if apierrors.IsNotFound(err) { // deleted by a cleanup a moment ago: make it again
			return r.ensurePipeline(ctx, want)
		}
		return fmt.Errorf("record the use of Pipeline %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// prunePipelines deletes the Pipelines the controller created in namespace that no PipelineRun
// the cache holds references (but those in gone, just deleted) and that no run was created of
// for pipelineKeepUnused. A Pipeline a run references stays, so `tkn pipelinerun logs` of every
// kept run still finds it; one someone applied with kubectl stays too.
func (r *Reconciler) prunePipelines(ctx context.Context, namespace string, gone map[string]bool) error {
	referenced := map[string]bool{}
	for _, obj := range r.PipelineRunIndexer.List() {
		pr, ok := obj.(*tektonv1.PipelineRun)
		if !ok || pr.Namespace != namespace || gone[pr.Name] {
			continue
		}
		if ref := pr.Status.Annotations[layering.PipelineRefAnnotation]; ref != "" {
			referenced[ref] = true
		}
	}
	sel := labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": layering.ManagedByValue,
		"app.kubernetes.io/component": generator.PipelineComponent})
	list, err := r.PipelineClient.TektonV1().Pipelines(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return fmt.Errorf("list the Pipelines of namespace %s: %w", namespace, err)
	}
	now := r.Clock.Now()
	for i := range list.Items {
		pl := &list.Items[i]
		if referenced[pl.Name] || pl.Annotations[lastAppliedAnnotation] != "" || now.Sub(lastUse(pl)) < pipelineKeepUnused {
			continue
		}
		rv := pl.ResourceVersion
		err := r.PipelineClient.TektonV1().Pipelines(namespace).Delete(ctx, pl.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete Pipeline %s/%s, which no run references: %w", namespace, pl.Name, err)
		}
	}
	return nil
}

// lastUse is when a run of pl was last created, as far as its annotation and creation tell.
func lastUse(pl *tektonv1.Pipeline) time.Time {
	t := pl.CreationTimestamp.Time
	if used, err := time.Parse(time.RFC3339, pl.Annotations[layering.PipelineUsedAnnotation]); err == nil && used.After(t) {
		t = used
	}
	return t
}
