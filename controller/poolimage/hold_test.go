package poolimage

import (
	"fmt"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgotesting "k8s.io/client-go/testing"
	. "knative.dev/pkg/reconciler/testing"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// poolPatch is the merge patch that pauses (with the controller's annotations for base) or
// unpauses (base "") MachineConfigPool worker.
func poolPatch(paused bool, base string) clientgotesting.PatchActionImpl {
	ann := `{"layering.ocl-pipelines.dev/paused-by":null,"layering.ocl-pipelines.dev/paused-for":null}`
	if paused {
		ann = fmt.Sprintf(`{"layering.ocl-pipelines.dev/paused-by":"%s/%s","layering.ocl-pipelines.dev/paused-for":"%s"}`, ns, piName, base)
	}
	return clientgotesting.PatchActionImpl{
		ActionImpl: clientgotesting.ActionImpl{Verb: "patch", Resource: mcfgv1.GroupVersion.WithResource("machineconfigpools")},
		Name:       poolName, PatchType: "application/merge-patch+json",
		Patch: []byte(fmt.Sprintf(`{"metadata":{"annotations":%s},"spec":{"paused":%t}}`, ann, paused)),
	}
}

// heldPool is pool worker paused by the controller for base, rendered as config rendered.
func heldPool(base, rendered string) *mcfgv1.MachineConfigPool {
	return pool(func(p *mcfgv1.MachineConfigPool) {
		p.Spec.Paused = true
		p.Annotations = map[string]string{layering.PausedByAnnotation: ns + "/" + piName, layering.PausedForAnnotation: base}
		p.Spec.Configuration.Name = rendered
	})
}

// renderedConfig is the MCO's rendered MachineConfig name with osImageURL image.
func renderedConfig(name, image string) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: mcfgv1.MachineConfigSpec{OSImageURL: image}}
}

// TestHold covers every transition of upgradeStrategy HoldPool: a base change pauses the pool
// and builds; promotion waits for the MCO's rendering, then unpauses; a pool paused by an admin
// is left alone; a failed build keeps the hold and says what to do; a hold past its limit says so
// once; Follow, a revert, an admin's unpause each end the hold.
func TestHold(t *testing.T) {
	pi := poolImage()
	imageA, mcA, promoted := promotedA(t)

	up := inputs(baseV2, extV2)
	hUp := hashOf(t, pi, up)
	nameUp := generator.RunName(poolName, hUp)
	sumUp := summaryOf(t, pi, up, "baseImage", "extensionsImage")
	imageB := pushRepo + "@" + digestB
	mcB := machineConfig(t, pi, imageB, extV2, hUp)
	newBase := sumUp.BaseImage
	since := now.Add(-20 * time.Minute)

	// upgraded: the cluster's base is baseV2; the pool is as given.
	upgraded := func(p *mcfgv1.MachineConfigPool, extra ...runtime.Object) []runtime.Object {
		return append([]runtime.Object{p, controllerConfig(baseV2, extV2), node("worker-0", "amd64"),
			secret("push", corev1.SecretTypeDockerConfigJson)}, extra...)
	}
	// building: promoted A, building B on the new base, held since `since`.
	building := func(st *v1alpha1.PoolImageStatus) {
		promoted(st)
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp, StartTime: &metav1.Time{Time: since}}
		st.MarkAwaitingBuild()
		st.MarkBuilding(nameUp)
		st.MarkUpToDate(newBase)
		st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: newBase}
	}
	heldMsg := func(build string, at time.Time) string {
		return fmt.Sprintf("MachineConfigPool worker is paused since %s while %s on the new base image %s; it is unpaused once the new image is promoted. To roll out the new configuration on the current image now, set spec.promotion.upgradeStrategy to Follow",
			at.UTC().Format(time.RFC3339), build, newBase)
	}
	// promotedB: image B (built on the new base) is promoted.
	promotedB := func(st *v1alpha1.PoolImageStatus) {
		promoted(st)
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp, Image: imageB,
			StartTime: &metav1.Time{Time: since}, CompletionTime: &metav1.Time{Time: since.Add(5 * time.Minute)}}
		st.MarkBuildSucceeded(imageB)
		st.MarkPromoted(imageB)
		st.MarkUpToDate(newBase)
	}
	follow := func(p *v1alpha1.PoolImage) {
		p.Spec.Promotion = &v1alpha1.Promotion{UpgradeStrategy: v1alpha1.UpgradeFollow}
	}
	startedEvent := eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: upgrade, inputs %s; changed: baseImage, extensionsImage)", nameUp, hUp)
	released := func(why string) string {
		return eventf(corev1.EventTypeNormal, "PoolReleased", "unpaused MachineConfigPool worker: %s", why)
	}

	table := TableTest{{
		Name:                    "base change: the pool is paused and the image rebuilt on the new base",
		Key:                     key(),
		Objects:                 upgraded(pool(), status(pi, promoted), mcA),
		WantCreates:             []runtime.Object{wantRun(t, pi, up, TriggerUpgrade, "")},
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(true, newBase)},
		SkipNamespaceValidation: true, // pools are cluster-scoped
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp}
			st.MarkAwaitingBuild()
			st.MarkBuilding(nameUp)
			st.MarkUpToDate(newBase)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(now), BaseImage: newBase}
			st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild, "%s", heldMsg("the image is being rebuilt", now))
		}))},
		WantEvents: []string{startedEvent,
			eventf(corev1.EventTypeNormal, "PoolHeld", "paused MachineConfigPool worker while its image is rebuilt on the new base image %s: its nodes will take the release's new configuration and the new image in one reboot", newBase)},
		PostConditions: []func(*testing.T, *TableRow){
			wantEnqueued(config.DefaultHoldTimeout),
			wantMetric("ocl_pipelines_builds_started", 1, map[string]string{"poolimage": key(), "trigger": "upgrade"}),
		},
	}, {
		Name:    "the rebuilt image is promoted: the pool stays paused until the MCO renders it",
		Key:     key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-1"), status(pi, building), mcA, renderedConfig("rendered-worker-1", imageA), succeededRun(t, pi, up, since, digestB)),
		WantUpdates: []clientgotesting.UpdateActionImpl{{
			ActionImpl: clientgotesting.ActionImpl{Verb: "update", Resource: mcfgv1.GroupVersion.WithResource("machineconfigs")}, Object: mcB}},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promotedB(st)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: newBase}
			st.MarkPoolHeld(v1alpha1.ReasonAwaitingRender, "%s is promoted; MachineConfigPool worker stays paused until the MCO renders a configuration with it (its configuration rendered-worker-1 still has %s)", imageB, imageA)
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", nameUp, imageB),
			eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", imageB),
		},
	}, {
		Name: "the MCO rendered the new image: the pool is unpaused (one rollout: new templates and new image)",
		Key:  key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-2"), status(pi, func(st *v1alpha1.PoolImageStatus) {
			promotedB(st)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: newBase}
			st.MarkPoolHeld(v1alpha1.ReasonAwaitingRender, "waiting")
		}), mcB, renderedConfig("rendered-worker-2", imageB), succeededRun(t, pi, up, since, digestB)),
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(false, "")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promotedB(st)
		}))},
		WantEvents: []string{released("its new image is promoted and rendered")},
	}, {
		Name: "no MCO rendering the pool (no configuration recorded): unpaused right after the promotion",
		Key:  key(),
		Objects: upgraded(heldPool(newBase, ""), status(pi, func(st *v1alpha1.PoolImageStatus) {
			promotedB(st)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: newBase}
		}), mcB, succeededRun(t, pi, up, since, digestB)),
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(false, "")},
		SkipNamespaceValidation: true,
		WantStatusUpdates:       []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, promotedB))},
		WantEvents:              []string{released("its new image is promoted and rendered")},
	}, {
		Name:        "a pool an admin paused is left alone: no annotation, no patch, the build runs",
		Key:         key(),
		Objects:     upgraded(pool(func(p *mcfgv1.MachineConfigPool) { p.Spec.Paused = true }), status(pi, promoted), mcA),
		WantCreates: []runtime.Object{wantRun(t, pi, up, TriggerUpgrade, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp}
			st.MarkAwaitingBuild()
			st.MarkBuilding(nameUp)
			st.MarkUpToDate(newBase)
			st.MarkPausedByAdmin(poolName)
		}))},
		WantEvents: []string{startedEvent},
	}, {
		Name:    "the rebuild fails while held: the pool stays paused and the status says what to do",
		Key:     key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-1"), status(pi, building), mcA, run(t, pi, up, "", since, corev1.ConditionFalse)),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			f := &v1alpha1.BuildFailure{Reason: "Failed", Message: "Tasks Completed: 4", LogsCommand: fmt.Sprintf("tkn pipelinerun logs %s -n %s", nameUp, ns),
				DashboardURL: fmt.Sprintf("%s/#/namespaces/%s/pipelineruns/%s", dashboard, ns, nameUp)}
			st.LatestBuild.Failure = f
			st.LatestBuild.CompletionTime = &metav1.Time{Time: since.Add(time.Minute)}
			st.MarkBuildFailed(f)
			st.MarkAwaitingBuild()
			st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild, "%s", heldMsg("the rebuild failed (see BuildSucceeded): fix it and retry", since))
		}))},
		WantEvents:     []string{eventf(corev1.EventTypeWarning, "BuildFailed", "build failed: Tasks Completed: 4; logs: tkn pipelinerun logs %s -n %s; the pool keeps its current image", nameUp, ns)},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(config.DefaultHoldTimeout - 20*time.Minute)},
	}, {
		Name: "held longer than the hold timeout: a warning once, the pool stays held",
		Key:  key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-1"), status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.Promotion = &v1alpha1.Promotion{HoldTimeout: &metav1.Duration{Duration: 10 * time.Minute}}
		}), building), mcA, run(t, pi, up, "", since, corev1.ConditionUnknown)),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.Promotion = &v1alpha1.Promotion{HoldTimeout: &metav1.Duration{Duration: 10 * time.Minute}}
		}), func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.MarkPoolHeld(v1alpha1.ReasonHoldTimeout, "MachineConfigPool worker has been paused since %s (longer than the hold timeout 10m0s) and the image is being rebuilt on the new base image %s. Either get the image built (fix the Containerfile, or set the annotation %s to retry), or set spec.promotion.upgradeStrategy to Follow to unpause the pool onto its current image now",
				since.UTC().Format(time.RFC3339), newBase, layering.RetryAnnotation)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "HoldTimeout", "MachineConfigPool worker has been paused for 20m0s, longer than the hold timeout 10m0s, waiting for its image on the new base image %s", newBase)},
	}, {
		Name: "Follow while held: the pool is released onto its current image at once",
		Key:  key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-1"), status(poolImage(follow), building), mcA,
			run(t, poolImage(follow), up, "", since, corev1.ConditionUnknown)),
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(false, "")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(follow), func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.ClearPoolHeld()
		}))},
		WantEvents: []string{released("spec.promotion.upgradeStrategy is Follow: it takes the release's configuration on its current image")},
	}, {
		Name:        "Follow: a base change never pauses the pool",
		Key:         key(),
		Objects:     upgraded(pool(), status(poolImage(follow), promoted), mcA),
		WantCreates: []runtime.Object{wantRun(t, poolImage(follow), up, TriggerUpgrade, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(follow), func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp}
			st.MarkAwaitingBuild()
			st.MarkBuilding(nameUp)
			st.MarkUpToDate(newBase)
		}))},
		WantEvents: []string{startedEvent},
	}, {
		Name: "an admin unpaused the held pool: it is not paused again for the same base",
		Key:  key(),
		Objects: upgraded(pool(func(p *mcfgv1.MachineConfigPool) {
			p.Annotations = map[string]string{layering.PausedByAnnotation: ns + "/" + piName, layering.PausedForAnnotation: newBase}
		}), status(pi, building), mcA, run(t, pi, up, "", since, corev1.ConditionUnknown)),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.Hold = nil
			st.MarkPoolReleasedByAdmin(poolName)
		}))},
	}, {
		Name:    "revert while held: the MachineConfig is removed and the pool unpaused",
		Key:     key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-1"), status(poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Revert = true }), building), mcA),
		WantDeletes: []clientgotesting.DeleteActionImpl{{
			ActionImpl: clientgotesting.ActionImpl{Verb: "delete", Resource: mcfgv1.GroupVersion.WithResource("machineconfigs")}, Name: mcA.Name}},
		SkipNamespaceValidation: true,
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(false, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Revert = true }), func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.ClearPoolHeld()
			st.MarkReverted()
		}))},
		WantEvents: []string{
			released("its PoolImage is reverted or deleted"),
			eventf(corev1.EventTypeNormal, "Reverted", "removed MachineConfig %s: MachineConfigPool worker returns to the release's image", mcA.Name),
		},
	}}
	table.Test(t, factory)
}
