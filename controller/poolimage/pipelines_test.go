package poolimage

import (
	"slices"
	"testing"
	"time"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
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

// TestPipelines: the content-addressed Pipeline a run references is created before the run,
// never updated, and deleted once no run references it; a run of a Pipeline edited in place is
// never trusted.
func TestPipelines(t *testing.T) {
	pi := poolImage()
	in := inputs(baseV1, extV1)
	h := hashOf(t, pi, in)
	name := generator.RunName(poolName, h)
	pl := wantPipeline(t, pi, in)
	edited := withoutVerify(pl)

	building := func(st *v1alpha1.PoolImageStatus) {
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in)}
		st.MarkAwaitingBuild()
		st.MarkBuilding(name)
	}
	// succeeded is the run of pi's inputs done, having run resolved (Tekton's status copy).
	succeeded := func(resolved *tektonv1.PipelineSpec) *tektonv1.PipelineRun {
		pr := succeededRun(t, pi, in, now.Add(-10*time.Minute), digestA)
		pr.Status.PipelineSpec = resolved.DeepCopy()
		return pr
	}
	// unresolved is the run as it is before Tekton has read its Pipeline.
	unresolved := func(pr *tektonv1.PipelineRun) *tektonv1.PipelineRun {
		pr.Status.PipelineSpec = nil
		return pr
	}
	old := now.Add(-2 * time.Hour)
	retained := func(keep int32) *v1alpha1.PoolImage {
		p := poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Retention = &v1alpha1.Retention{Keep: &keep} })
		return status(p, func(st *v1alpha1.PoolImageStatus) {
			image := pushRepo + "@" + digestA
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), Image: image,
				StartTime: &metav1.Time{Time: now.Add(-2 * time.Hour)}, CompletionTime: &metav1.Time{Time: now.Add(-2*time.Hour + 5*time.Minute)}}
			st.MarkBuildSucceeded(image)
			st.MarkPromoted(image)
		})
	}
	image := pushRepo + "@" + digestA
	mcA := machineConfig(t, pi, image, extV1, h)
	// A failed run of other inputs, of an older Pipeline.
	runOf := func(runName, pipeline string, created time.Time) *tektonv1.PipelineRun {
		pr := run(t, pi, in, runName, created, corev1.ConditionFalse)
		pr.Labels[layering.InputsHashLabel] = "0000000000000000000000000000000000000000"
		pr.Spec.PipelineRef = &tektonv1.PipelineRef{Name: pipeline}
		return pr
	}
	applied := pipelineAt(pl, "ocl-build-aaaaaaaaaaa1", old)
	applied.Annotations[lastAppliedAnnotation] = "{}"

	table := TableTest{{
		Name:    "a Pipeline of the same name with another spec (edited in place): no run, the admin is told to delete it",
		Key:     key(),
		Objects: objects(pi, edited),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h, Since: metav1.NewTime(now)}
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "Pipeline ocl/"+pl.Name+" is not the pipeline its name stands for (edited after it was created, or made by someone else): delete it and the controller creates it again")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", "Pipeline ocl/"+pl.Name+" is not the pipeline its name stands for (edited after it was created, or made by someone else): delete it and the controller creates it again")},
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
		// Before Tekton reads the Pipeline, the run asks for it by name: the controller follows
		// it (and does not create it again).
		Name: "a run Tekton has not resolved yet is followed",
		Key:  key(),
		Objects: objects(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.LatestBuild.StartTime = &metav1.Time{Time: now.Add(-time.Second)}
		}), pl, unresolved(run(t, pi, in, "", now.Add(-time.Second), corev1.ConditionUnknown))),
	}, {
		// What ran is the edited Pipeline, not the one the name stands for: the image is not
		// promoted, and the name of the run is taken.
		Name:        "a run that succeeded with its Pipeline edited in place (no verify) is not promoted",
		Key:         key(),
		Objects:     objects(status(pi, building), edited, succeeded(&edited.Spec)),
		WantPatches: []clientgotesting.PatchActionImpl{reportPatch(name, "ignored")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h, Since: metav1.NewTime(now)}
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "Pipeline ocl/"+pl.Name+" is not the pipeline its name stands for (edited after it was created, or made by someone else): delete it and the controller creates it again")
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeWarning, "RunIgnored", "PipelineRun %s carries the labels of MachineConfigPool worker's build of inputs %s but not the spec the controller rendered for them (edited, or made by hand): its image is not promoted", name, h),
			eventf(corev1.EventTypeWarning, "InputsUnresolved", "Pipeline ocl/"+pl.Name+" is not the pipeline its name stands for (edited after it was created, or made by someone else): delete it and the controller creates it again"),
		},
	}, {
		// A run that claims success without Tekton having resolved its Pipeline did not run it.
		Name:    "a run that succeeded without a resolved Pipeline is not promoted",
		Key:     key(),
		Objects: objects(status(pi, building), pl, unresolved(succeededRun(t, pi, in, now.Add(-10*time.Minute), digestA))),
		// Its name is the build's: the create is refused (AlreadyExists), and the admin told.
		WantCreates: []runtime.Object{wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantPatches: []clientgotesting.PatchActionImpl{reportPatch(name, "ignored")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h, Since: metav1.NewTime(now)}
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h, Since: metav1.NewTime(now)}
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "PipelineRun ocl/"+name+" exists but is not the run the controller renders for inputs "+h+" (other inputs or another spec): delete it")
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeWarning, "RunIgnored", "PipelineRun %s carries the labels of MachineConfigPool worker's build of inputs %s but not the spec the controller rendered for them (edited, or made by hand): its image is not promoted", name, h),
			eventf(corev1.EventTypeWarning, "InputsUnresolved", "PipelineRun ocl/"+name+" exists but is not the run the controller renders for inputs "+h+" (other inputs or another spec): delete it"),
		},
	}, {
		// Retention deletes old-1 and old-2; the Pipeline only they referenced goes, unless a
		// kept run references it, it was used within the hour, or someone applied it.
		Name: "retention: a Pipeline no run references any more is deleted, the others stay",
		Key:  key(),
		Objects: objects(retained(2), mcA, tagRun(t, pi, in, image), pl, succeeded(&pl.Spec),
			pipelineAt(pl, "ocl-build-000000000001", old), runOf("old-1", "ocl-build-000000000001", now.Add(-50*time.Minute)),
			runOf("old-2", "ocl-build-000000000001", now.Add(-40*time.Minute)),
			pipelineAt(pl, "ocl-build-000000000002", old), runOf("new-1", "ocl-build-000000000002", now.Add(-30*time.Minute)),
			pipelineAt(pl, "ocl-build-000000000003", now.Add(-30*time.Minute)), applied),
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
