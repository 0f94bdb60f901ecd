package poolimage

import (
	"errors"
	"slices"
	"testing"
	"time"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgotesting "k8s.io/client-go/testing"
	. "knative.dev/pkg/reconciler/testing"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// withoutVerify is pl edited in place: its verify task dropped.
func withoutVerify(pl *tektonv1.Pipeline) *tektonv1.Pipeline {
	out := pl.DeepCopy()
	out.Spec.Tasks = withoutVerifyTasks(pl.Spec.Tasks)
	return out
}

// withoutVerifyTasks is a pipeline's tasks with verify dropped, as an edit would drop it.
func withoutVerifyTasks(tasks []tektonv1.PipelineTask) []tektonv1.PipelineTask {
	var out []tektonv1.PipelineTask
	for _, pt := range tasks {
		if pt.Name == contract.TaskVerify {
			continue
		}
		pt := *pt.DeepCopy()
		pt.RunAfter = slices.DeleteFunc(pt.RunAfter, func(a string) bool { return a == contract.TaskVerify })
		out = append(out, pt)
	}
	return out
}

// pipelineAt is a Pipeline the controller made, created and last used at t.
func pipelineAt(pl *tektonv1.Pipeline, name string, t time.Time) *tektonv1.Pipeline {
	out := pl.DeepCopy()
	out.Name = name
	out.CreationTimestamp = metav1.NewTime(t)
	out.Annotations[layering.PipelineUsedAnnotation] = t.UTC().Format(time.RFC3339)
	return out
}

// TestPipelines: runs embed their pipeline and carry the name of the Pipeline of that spec,
// which the controller creates for the dashboard, never updates, and deletes once no run is
// labelled with it; neither a missing nor an edited Pipeline changes what runs execute, and a
// run that references a Pipeline instead of embedding it is never trusted.
func TestPipelines(t *testing.T) {
	pi := poolImage()
	in := inputs(baseV1, extV1)
	h := hashOf(t, pi, in)
	name := generator.RunName(poolName, h)
	pl := wantPipeline(t, pi, in)
	edited := withoutVerify(pl)
	image := pushRepo + "@" + digestA
	mcA := machineConfig(t, pi, image, extV1, h)

	building := func(st *v1alpha1.PoolImageStatus) {
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in)}
		st.MarkAwaitingBuild()
		st.MarkBuilding(name)
	}
	// referencing is the run of pi's inputs done, but referencing the Pipeline (as resolved by
	// Tekton: its spec substituted into the status) instead of embedding it.
	referencing := func() *tektonv1.PipelineRun {
		pr := succeededRun(t, pi, in, now.Add(-10*time.Minute), digestA)
		pr.Spec.PipelineSpec, pr.Spec.PipelineRef = nil, &tektonv1.PipelineRef{Name: pl.Name}
		return pr
	}
	old := now.Add(-2 * time.Hour)
	retained := func(keep int32) *v1alpha1.PoolImage {
		p := poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Retention = &v1alpha1.Retention{Keep: &keep} })
		return status(p, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), Image: image,
				StartTime: &metav1.Time{Time: now.Add(-2 * time.Hour)}, CompletionTime: &metav1.Time{Time: now.Add(-2*time.Hour + 5*time.Minute)}}
			st.MarkBuildSucceeded(image)
			st.MarkPromoted(image)
		})
	}
	// runOf is a failed run of other inputs, labelled with an older Pipeline.
	runOf := func(runName, pipeline string, created time.Time) *tektonv1.PipelineRun {
		pr := run(t, pi, in, runName, created, corev1.ConditionFalse)
		pr.Labels[layering.InputsHashLabel] = "0000000000000000000000000000000000000000"
		pr.Labels[pipelineLabel] = pipeline
		return pr
	}
	applied := pipelineAt(pl, "ocl-build-000000000004", old)
	applied.Annotations[lastAppliedAnnotation] = "{}"
	serverSideApplied := pipelineAt(pl, "ocl-build-000000000005", old)
	serverSideApplied.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: ControllerName}, {Manager: "argocd-controller", Operation: metav1.ManagedFieldsOperationApply}}
	editedMsg := "Pipeline ocl/" + pl.Name + " is not the pipeline its name stands for (edited after it was created, or made by someone else): delete it and the controller creates it again; runs carry their own pipeline and are not affected"

	table := TableTest{{
		Name:              "the first build creates the Pipeline its run is labelled with, then the run",
		Key:               key(),
		Objects:           objects(pi),
		WantCreates:       []runtime.Object{wantPipeline(t, pi, in), wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{firstBuildUpdate(t, pi, in)},
		WantEvents:        []string{firstBuildEvent(t, pi, in)},
	}, {
		// The Pipeline is the dashboard's; the run carries what it executes.
		Name:              "a Pipeline of the same name with another spec (edited in place): the admin is told, the build runs",
		Key:               key(),
		Objects:           objects(pi, edited),
		WantCreates:       []runtime.Object{wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{firstBuildUpdate(t, pi, in)},
		WantEvents:        []string{eventf(corev1.EventTypeWarning, "PipelineEdited", "%s", editedMsg), firstBuildEvent(t, pi, in)},
	}, {
		Name:    "the Pipeline cannot be created (RBAC of an older release): the build runs",
		Key:     key(),
		Objects: objects(pi),
		WithReactors: []clientgotesting.ReactionFunc{func(a clientgotesting.Action) (bool, runtime.Object, error) {
			if a.GetResource().Resource == "pipelines" {
				return true, nil, apierrors.NewForbidden(tektonv1.Resource("pipelines"), pl.Name, errors.New("RBAC: not granted"))
			}
			return false, nil, nil
		}},
		WantCreates:       []runtime.Object{wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{firstBuildUpdate(t, pi, in)},
		WantEvents:        []string{firstBuildEvent(t, pi, in)},
	}, {
		Name:              "the Pipeline exists (another pool's, or a restart): not created again, its use recorded",
		Key:               key(),
		Objects:           objects(pi, pipelineAt(pl, pl.Name, old)),
		WantCreates:       []runtime.Object{wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantPatches:       []clientgotesting.PatchActionImpl{pipelineUsedPatch(pl.Name)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{firstBuildUpdate(t, pi, in)},
		WantEvents:        []string{firstBuildEvent(t, pi, in)},
	}, {
		Name:              "the Pipeline exists and was used a moment ago: neither created nor written",
		Key:               key(),
		Objects:           objects(pi, pipelineAt(pl, pl.Name, now.Add(-time.Minute))),
		WantCreates:       []runtime.Object{wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{firstBuildUpdate(t, pi, in)},
		WantEvents:        []string{firstBuildEvent(t, pi, in)},
	}, {
		// What a referencing run executed is not in the run (Tekton's status copy has the
		// parameters substituted): its image is not promoted, and the name is taken.
		Name:        "a run of the inputs that references the Pipeline instead of embedding it is not promoted",
		Key:         key(),
		Objects:     objects(status(pi, building), pl, referencing()),
		WantCreates: []runtime.Object{wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantPatches: []clientgotesting.PatchActionImpl{reportPatch(name, "ignored")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h, Since: metav1.NewTime(now)}
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "PipelineRun ocl/"+name+" exists but is not the run the controller renders for inputs "+h+" (other inputs or another spec): delete it")
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeWarning, "RunIgnored", "PipelineRun %s carries the labels of MachineConfigPool worker's build of inputs %s but not the spec the controller rendered for them (edited, or made by hand): its image is not promoted", name, h),
			eventf(corev1.EventTypeWarning, "InputsUnresolved", "PipelineRun ocl/"+name+" exists but is not the run the controller renders for inputs "+h+" (other inputs or another spec): delete it"),
		},
	}, {
		// Retention deletes old-1 and old-2; the Pipeline only they were labelled with goes,
		// unless a kept run is labelled with it, it was used within the hour, or someone else
		// wrote it (kubectl apply, a GitOps tool's server-side apply).
		Name: "retention: a Pipeline no run is labelled with any more is deleted, the others stay",
		Key:  key(),
		Objects: objects(retained(2), mcA, tagRun(t, pi, in, image), pl, succeededRun(t, pi, in, now.Add(-2*time.Hour), digestA),
			pipelineAt(pl, "ocl-build-000000000001", old), runOf("old-1", "ocl-build-000000000001", now.Add(-50*time.Minute)),
			runOf("old-2", "ocl-build-000000000001", now.Add(-40*time.Minute)),
			pipelineAt(pl, "ocl-build-000000000002", old), runOf("new-1", "ocl-build-000000000002", now.Add(-30*time.Minute)),
			runOf("new-2", "ocl-build-000000000002", now.Add(-35*time.Minute)),
			pipelineAt(pl, "ocl-build-000000000003", now.Add(-30*time.Minute)), applied, serverSideApplied),
		WantDeletes: []clientgotesting.DeleteActionImpl{deleteRun("old-2"), deleteRun("old-1"), deletePipeline("ocl-build-000000000001")},
	}}
	table.Test(t, factory)
}

// pipelineUsedPatch records a use of Pipeline name at the table's now.
func pipelineUsedPatch(name string) clientgotesting.PatchActionImpl {
	return clientgotesting.PatchActionImpl{
		ActionImpl: clientgotesting.ActionImpl{Namespace: ns, Verb: "patch",
			Resource: tektonv1.SchemeGroupVersion.WithResource("pipelines")},
		Name:      name,
		PatchType: types.MergePatchType,
		Patch:     []byte(`{"metadata":{"annotations":{"` + layering.PipelineUsedAnnotation + `":"` + now.UTC().Format(time.RFC3339) + `"}}}`),
	}
}

// deletePipeline is the deletion of a Pipeline no run references.
func deletePipeline(name string) clientgotesting.DeleteActionImpl {
	return clientgotesting.DeleteActionImpl{
		ActionImpl: clientgotesting.ActionImpl{Namespace: ns, Verb: "delete",
			Resource: tektonv1.SchemeGroupVersion.WithResource("pipelines")},
		Name: name,
	}
}
