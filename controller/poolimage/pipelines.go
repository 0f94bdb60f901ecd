package poolimage

import (
	"context"
	"errors"
	"fmt"
	"time"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/logging"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

const (
	// pipelineTouchEvery is how long the controller takes a Pipeline it checked for granted:
	// a new run within it costs no API call, and a run after it refreshes the Pipeline's
	// PipelineUsedAnnotation.
	pipelineTouchEvery = 10 * time.Minute
	// pipelineKeepUnused is how long a Pipeline no run is labelled with stays: far longer than
	// any lag between creating a run and the cache seeing it (the deletion's resourceVersion
	// precondition covers a use recorded in between).
	pipelineKeepUnused = time.Hour
	// lastAppliedAnnotation marks an object someone applied with kubectl (a GitOps user running
	// the release's Pipeline): the controller never deletes it.
	lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
	// pipelineLabel is Tekton's label of a run's pipeline, which the dashboard lists runs by.
	pipelineLabel = "tekton.dev/pipeline"
)

// ensurePipeline makes sure the Pipeline a run of res is labelled with (generator.RenderPipeline)
// exists, so the dashboard lists the run under it. It never fails the build: the run embeds its
// spec and does not need the Pipeline, so a refusal (RBAC not updated yet, a quota) is a warning.
// A Pipeline of that name is never updated: its name is its spec's digest, so one with another
// spec was edited or made by someone else, and the admin is told to delete it. A Pipeline checked
// within pipelineTouchEvery, with whatever outcome, costs no API call.
func (r *Reconciler) ensurePipeline(ctx context.Context, pi *v1alpha1.PoolImage, want *tektonv1.Pipeline) {
	key := want.Namespace + "/" + want.Name
	now := r.Clock.Now()
	if at, ok := r.checkedPipelines.Load(key); ok && now.Sub(at.(time.Time)) < pipelineTouchEvery {
		return
	}
	err := r.putPipeline(ctx, want, now)
	// A refusal is not asked again (nor reported again) for as long as a success is trusted.
	r.checkedPipelines.Store(key, now)
	switch {
	case err == nil:
	case errors.As(err, new(*inputError)):
		r.event(ctx, pi, corev1.EventTypeWarning, v1alpha1.ReasonPipelineEdited, "%v", err)
	default:
		logging.FromContext(ctx).Warnw("the dashboard's Pipeline of a build is missing: runs carry their pipeline and build regardless",
			"pipeline", key, "error", err)
	}
}

// putPipeline creates want, or records a use of the existing Pipeline of its name (refreshing
// PipelineUsedAnnotation) once it has checked that its spec is want's.
func (r *Reconciler) putPipeline(ctx context.Context, want *tektonv1.Pipeline, now time.Time) error {
	client := r.PipelineClient.TektonV1().Pipelines(want.Namespace)
	stamp := now.UTC().Format(time.RFC3339)
	var err error
	// A cleanup may delete the Pipeline between the reads and the writes below; a few rounds
	// make it again.
	for attempt := 0; attempt < 3; attempt++ {
		var have *tektonv1.Pipeline
		have, err = client.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			pl := want.DeepCopy()
			pl.Labels["app.kubernetes.io/managed-by"] = layering.ManagedByValue
			pl.Annotations[layering.PipelineUsedAnnotation] = stamp
			if _, err = client.Create(ctx, pl, metav1.CreateOptions{FieldManager: ControllerName}); apierrors.IsAlreadyExists(err) {
				continue
			} else if err != nil {
				return fmt.Errorf("create Pipeline %s/%s: %w", want.Namespace, want.Name, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("get Pipeline %s/%s: %w", want.Namespace, want.Name, err)
		}
		if generator.PipelineDigest(&have.Spec) != generator.PipelineDigest(&want.Spec) {
			return inputErrorf("Pipeline %s/%s is not the pipeline its name stands for (edited after it was created, or made by someone else): delete it and the controller creates it again; runs carry their own pipeline and are not affected",
				want.Namespace, want.Name)
		}
		if used, perr := time.Parse(time.RFC3339, have.Annotations[layering.PipelineUsedAnnotation]); perr == nil && now.Sub(used) < pipelineTouchEvery {
			return nil
		}
		// Record the use, so no cleanup deletes the Pipeline while the run is on its way to
		// the cache: a cleanup that read it before deletes with its resourceVersion and fails.
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, layering.PipelineUsedAnnotation, stamp)
		_, err = client.Patch(ctx, want.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: ControllerName})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("record the use of Pipeline %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	}
	return fmt.Errorf("pipeline %s/%s was deleted while it was being made: %w", want.Namespace, want.Name, err)
}

// prunePipelines deletes the Pipelines the controller created in namespace that no PipelineRun
// the cache holds is labelled with (but those in gone, just deleted) and that no run was created
// of for pipelineKeepUnused, so the dashboard lists no Pipeline without runs. One someone else
// wrote to (kubectl apply, a GitOps tool's server-side apply, an edit) stays.
func (r *Reconciler) prunePipelines(ctx context.Context, namespace string, gone map[string]bool) error {
	objs, err := r.PipelineRunIndexer.ByIndex(cache.NamespaceIndex, namespace)
	if err != nil {
		return fmt.Errorf("list the PipelineRuns of namespace %s: %w", namespace, err)
	}
	referenced := map[string]bool{}
	for _, obj := range objs {
		if pr, ok := obj.(*tektonv1.PipelineRun); ok && !gone[pr.Name] {
			referenced[pr.Labels[pipelineLabel]] = true
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
		if referenced[pl.Name] || !onlyOurs(pl) || now.Sub(lastUse(pl)) < pipelineKeepUnused {
			continue
		}
		rv := pl.ResourceVersion
		err := r.PipelineClient.TektonV1().Pipelines(namespace).Delete(ctx, pl.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete Pipeline %s/%s, which no run is labelled with: %w", namespace, pl.Name, err)
		}
		r.checkedPipelines.Delete(namespace + "/" + pl.Name)
	}
	return nil
}

// onlyOurs reports whether no one but the controller wrote pl: no kubectl apply annotation, and
// no field manager but the controller's.
func onlyOurs(pl *tektonv1.Pipeline) bool {
	if pl.Annotations[lastAppliedAnnotation] != "" {
		return false
	}
	for _, m := range pl.ManagedFields {
		if m.Manager != ControllerName {
			return false
		}
	}
	return true
}

// lastUse is when a run of pl was last created, as far as its annotation and creation tell.
func lastUse(pl *tektonv1.Pipeline) time.Time {
	t := pl.CreationTimestamp.Time
	if used, err := time.Parse(time.RFC3339, pl.Annotations[layering.PipelineUsedAnnotation]); err == nil && used.After(t) {
		t = used
	}
	return t
}
