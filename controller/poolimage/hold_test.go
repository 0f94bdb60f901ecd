package poolimage

import (
	"fmt"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgotesting "k8s.io/client-go/testing"
	. "knative.dev/pkg/reconciler/testing"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/mco"
)

// poolPatch is the merge patch that pauses (with the controller's annotations for base) or
// unpauses (base "") MachineConfigPool name.
func poolPatch(paused bool, base string) clientgotesting.PatchActionImpl {
	return namedPoolPatch(poolName, paused, base)
}

func namedPoolPatch(name string, paused bool, base string) clientgotesting.PatchActionImpl {
	ann := `{"layering.ocl-pipelines.dev/paused-by":null,"layering.ocl-pipelines.dev/paused-for":null,"layering.ocl-pipelines.dev/paused-since":null}`
	if paused {
		ann = fmt.Sprintf(`{"layering.ocl-pipelines.dev/paused-by":"%s/%s","layering.ocl-pipelines.dev/paused-for":"%s","layering.ocl-pipelines.dev/paused-since":"%s","layering.ocl-pipelines.dev/released-for":null}`,
			ns, piName, base, now.UTC().Format(time.RFC3339))
	}
	return poolMetaPatch(name, fmt.Sprintf(`{"metadata":{"annotations":%s},"spec":{"paused":%t}}`, ann, paused))
}

// poolMetaPatch is a merge patch of MachineConfigPool name with body.
func poolMetaPatch(name, body string) clientgotesting.PatchActionImpl {
	return clientgotesting.PatchActionImpl{
		ActionImpl: clientgotesting.ActionImpl{Verb: "patch", Resource: mcfgv1.GroupVersion.WithResource("machineconfigpools")},
		Name:       name, PatchType: "application/merge-patch+json", Patch: []byte(body),
	}
}

// pausedFields is a managedFields entry of manager owning spec.paused.
func pausedFields(manager string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "machineconfiguration.openshift.io/v1",
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{}},"f:spec":{"f:paused":{}}}`)}
}

// heldPool is pool worker paused by the controller for base, rendered as config rendered.
func heldPool(base, rendered string) *mcfgv1.MachineConfigPool {
	return pool(func(p *mcfgv1.MachineConfigPool) {
		p.Spec.Paused = true
		p.Annotations = map[string]string{layering.PausedByAnnotation: ns + "/" + piName, layering.PausedForAnnotation: base,
			layering.PausedSinceAnnotation: now.Add(-20 * time.Minute).UTC().Format(time.RFC3339)}
		p.ManagedFields = []metav1.ManagedFieldsEntry{pausedFields(layering.HoldFieldManager)}
		p.Spec.Configuration.Name = rendered
	})
}

// renderedConfig is the MCO's rendered MachineConfig name with osImageURL image.
func renderedConfig(name, image string) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: mcfgv1.MachineConfigSpec{OSImageURL: image}}
}

// TestHold covers every transition of upgradeStrategy HoldPool: a base change pauses the pool
// and builds; promotion waits for the MCO's rendering, then unpauses; a pool paused by an admin
// is left alone; a failed rebuild is retried once, then the pool is released; every hold ends at
// the hold timeout; Follow, a revert, an admin's unpause each end the hold; the master pool is
// never paused.
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
	end := func(from time.Time, limit time.Duration) string { return from.Add(limit).UTC().Format(time.RFC3339) }

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
		st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: newBase, Pools: []string{poolName}}
	}
	heldMsg := func(build string, at time.Time) string {
		return fmt.Sprintf("MachineConfigPool worker is paused since %s while %s on the new base image %s; unpaused once the new image is promoted, at the latest at %s (the hold timeout). To roll out the new configuration on the current image now, set spec.promotion.upgradeStrategy to Follow",
			at.UTC().Format(time.RFC3339), build, newBase, end(at, config.DefaultHoldTimeout))
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
	upgradeRun := func(name string, created time.Time, state corev1.ConditionStatus, results ...string) *tektonv1.PipelineRun {
		pr := run(t, pi, up, name, created, state, results...)
		pr.Annotations[layering.TriggerAnnotation] = string(generator.TriggerUpgrade)
		return pr
	}
	autoName := generator.AutoRetryRunName(poolName, hUp)
	failedUp := &v1alpha1.BuildFailure{Reason: "Failed", Message: "Tasks Completed: 4", LogsCommand: fmt.Sprintf("tkn pipelinerun logs %s -n %s", nameUp, ns),
		DashboardURL: fmt.Sprintf("%s/#/namespaces/%s/pipelineruns/%s", dashboard, ns, nameUp)}
	master := func(p *mcfgv1.MachineConfigPool) {
		p.Name = mco.MasterPool
		p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchLabels: map[string]string{mco.RoleLabel: mco.MasterPool}}
		p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/master": ""}}
	}
	masterPI := poolImage(func(p *v1alpha1.PoolImage) { p.Name = mco.MasterPool; p.Spec.MachineConfigPool.Name = mco.MasterPool })

	table := TableTest{{
		Name:                    "base change: the pool is paused and the image rebuilt on the new base",
		Key:                     key(),
		Objects:                 upgraded(pool(), status(pi, promoted), mcA),
		WantCreates:             []runtime.Object{wantPipeline(t, pi, up), wantRun(t, pi, up, generator.TriggerUpgrade, "")},
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(true, newBase)},
		SkipNamespaceValidation: true, // pools are cluster-scoped
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp}
			st.MarkAwaitingBuild()
			st.MarkBuilding(nameUp)
			st.MarkUpToDate(newBase)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(now), BaseImage: newBase, Pools: []string{poolName}}
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
		WantCreates:             []runtime.Object{tagRun(t, pi, up, imageB)},
		WantPatches:             []clientgotesting.PatchActionImpl{reportPatch(nameUp, "succeeded")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promotedB(st)
			st.MarkAwaitingRender(poolName, "rendered-worker-1", imageA)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: newBase, Pools: []string{poolName}}
			st.MarkPoolHeld(v1alpha1.ReasonAwaitingRender, "%s is promoted; MachineConfigPool worker stays paused until the MCO renders a configuration with it, at the latest until %s (the hold timeout)", imageB, end(since, config.DefaultHoldTimeout))
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", nameUp, imageB),
			eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", imageB),
		},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(config.DefaultHoldTimeout - 20*time.Minute)},
	}, {
		Name: "the MCO rendered the new image: the pool is unpaused (one rollout: new templates and new image)",
		Key:  key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-2"), status(pi, func(st *v1alpha1.PoolImageStatus) {
			promotedB(st)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: newBase}
			st.MarkPoolHeld(v1alpha1.ReasonAwaitingRender, "waiting")
		}), mcB, tagRun(t, pi, up, imageB), renderedConfig("rendered-worker-2", imageB), reportedRun(succeededRun(t, pi, up, since, digestB), "succeeded")),
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
		}), mcB, tagRun(t, pi, up, imageB), reportedRun(succeededRun(t, pi, up, since, digestB), "succeeded")),
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(false, "")},
		SkipNamespaceValidation: true,
		WantStatusUpdates:       []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, promotedB))},
		WantEvents:              []string{released("its new image is promoted and rendered")},
	}, {
		// B5: waiting for the render is bounded too; a pool the MCO cannot render is released.
		Name: "the MCO cannot render the pool (RenderDegraded): released with a warning, Promoted says why",
		Key:  key(),
		Objects: upgraded(pool(func(p *mcfgv1.MachineConfigPool) {
			*p = *heldPool(newBase, "rendered-worker-1")
			p.Status.Conditions = []mcfgv1.MachineConfigPoolCondition{{Type: mcfgv1.MachineConfigPoolRenderDegraded, Status: corev1.ConditionTrue, Message: "boom"}}
		}), status(pi, func(st *v1alpha1.PoolImageStatus) {
			promotedB(st)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(since), BaseImage: newBase}
			st.MarkPoolHeld(v1alpha1.ReasonAwaitingRender, "waiting")
		}), mcB, tagRun(t, pi, up, imageB), renderedConfig("rendered-worker-1", imageA), reportedRun(succeededRun(t, pi, up, since, digestB), "succeeded")),
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(false, "")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promotedB(st)
			st.MarkRenderDegraded(poolName, "boom")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "HoldReleased", "unpaused MachineConfigPool worker: the MCO cannot render MachineConfigPool worker (boom), so waiting for its rendering would never end")},
	}, {
		Name:        "a pool an admin paused is left alone: no annotation, no patch, the build runs",
		Key:         key(),
		Objects:     upgraded(pool(func(p *mcfgv1.MachineConfigPool) { p.Spec.Paused = true }), status(pi, promoted), mcA),
		WantCreates: []runtime.Object{wantPipeline(t, pi, up), wantRun(t, pi, up, generator.TriggerUpgrade, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp}
			st.MarkAwaitingBuild()
			st.MarkBuilding(nameUp)
			st.MarkUpToDate(newBase)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(now), BaseImage: newBase}
			st.MarkPausedByAdmin(poolName)
		}))},
		WantEvents:     []string{startedEvent},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(config.DefaultHoldTimeout)},
	}, {
		// B5: a failed rebuild (transient ones included) does not hold until a person acts.
		Name:    "the rebuild fails while held: retried once automatically, the pool stays held meanwhile",
		Key:     key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-1"), status(pi, building), mcA, upgradeRun("", since, corev1.ConditionFalse)),
		WantCreates: []runtime.Object{wantPipeline(t, pi, up), func() runtime.Object {
			pr := wantRun(t, pi, up, generator.TriggerAutoRetry, "")
			pr.Name = autoName
			return pr
		}()},
		WantPatches: []clientgotesting.PatchActionImpl{reportPatch(nameUp, "failed")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: autoName, InputsHash: hUp, Inputs: sumUp}
			st.MarkAwaitingBuild()
			st.MarkBuilding(autoName)
			st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild, "%s", heldMsg("the image is being rebuilt", since))
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeWarning, "BuildFailed", "build failed: Tasks Completed: 4; logs: tkn pipelinerun logs %s -n %s; the pool keeps its current image; it is retried once, %s after it failed", nameUp, ns, AutoRetryDelay),
			eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: auto-retry, inputs %s; changed: baseImage, extensionsImage)", autoName, hUp),
		},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(config.DefaultHoldTimeout - 20*time.Minute)},
	}, {
		Name: "the automatic retry failed too: the pool is released with a warning, not held until someone acts",
		Key:  key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-1"), status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: autoName, InputsHash: hUp, Inputs: sumUp}
		}), mcA, reportedRun(upgradeRun("", since, corev1.ConditionFalse), "failed"), func() *tektonv1.PipelineRun {
			pr := run(t, pi, up, autoName, since.Add(5*time.Minute), corev1.ConditionFalse)
			pr.Annotations[layering.TriggerAnnotation] = string(generator.TriggerAutoRetry)
			return pr
		}()),
		WantPatches:             []clientgotesting.PatchActionImpl{reportPatch(autoName, "failed"), poolPatch(false, "")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			f := failureFor(failedUp, autoName)
			f.LogsCommand = fmt.Sprintf("tkn pipelinerun logs %s -n %s", autoName, ns)
			f.DashboardURL = fmt.Sprintf("%s/#/namespaces/%s/pipelineruns/%s", dashboard, ns, autoName)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: autoName, InputsHash: hUp, Inputs: sumUp, Failure: f,
				StartTime: &metav1.Time{Time: since.Add(5 * time.Minute)}, CompletionTime: &metav1.Time{Time: since.Add(6 * time.Minute)}}
			st.MarkKeptAfterFailure()
			st.MarkBuildFailed(f)
			st.ClearPoolHeld()
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeWarning, "BuildFailed", "build failed: Tasks Completed: 4; logs: tkn pipelinerun logs %s -n %s; the pool keeps its current image", autoName, ns),
			eventf(corev1.EventTypeWarning, "HoldReleased", "unpaused MachineConfigPool worker: the rebuild on the new base image failed (see BuildSucceeded): the pool takes the release's configuration on its current image now, and the rebuilt image once it is fixed and promoted"),
		},
	}, {
		// B5: every hold is bounded: at the timeout the pool is released, with a warning.
		Name: "held longer than the hold timeout: released with a warning",
		Key:  key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-1"), status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.Promotion = &v1alpha1.Promotion{HoldTimeout: &metav1.Duration{Duration: 10 * time.Minute}}
		}), building), mcA, upgradeRun("", since, corev1.ConditionUnknown)),
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(false, "")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.Promotion = &v1alpha1.Promotion{HoldTimeout: &metav1.Duration{Duration: 10 * time.Minute}}
		}), func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.ClearPoolHeld()
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "HoldReleased", "unpaused MachineConfigPool worker: it was held for 10m0s, the hold timeout (spec.promotion.holdTimeout or the controller's hold-timeout); it takes the release's configuration on its current image now, and the rebuilt image once promoted")},
	}, {
		// B5: an invalid spec returns before the build is evaluated; the hold is still bounded.
		Name: "an invalid spec while held: the hold continues within its bound, then ends",
		Key:  key(),
		Objects: upgraded(heldPool(newBase, "rendered-worker-1"), status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.ImagePushSpec = "registry.example.com/os/worker"
			p.Spec.Promotion = &v1alpha1.Promotion{HoldTimeout: &metav1.Duration{Duration: 10 * time.Minute}}
		}), building), mcA),
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(false, "")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.ImagePushSpec = "registry.example.com/os/worker"
			p.Spec.Promotion = &v1alpha1.Promotion{HoldTimeout: &metav1.Duration{Duration: 10 * time.Minute}}
		}), func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.MarkInvalid(v1alpha1.ReasonInvalidSpec, "invalid value: \"registry.example.com/os/worker\": no tag: spec.imagePushSpec; add the tag that will name the pool's current image; use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest")
			st.ClearPoolHeld()
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeWarning, "HoldReleased", "unpaused MachineConfigPool worker after the hold timeout 10m0s: the spec is invalid (see BuildSucceeded)"),
			eventf(corev1.EventTypeWarning, "InvalidSpec", "invalid value: \"registry.example.com/os/worker\": no tag: spec.imagePushSpec; add the tag that will name the pool's current image; use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest"),
		},
	}, {
		Name: "unresolved inputs while held, within the bound: still held, the condition says why and until when",
		Key:  key(),
		Objects: []runtime.Object{heldPool(newBase, "rendered-worker-1"), controllerConfig(baseV2, extV2), node("worker-0", "amd64"),
			status(pi, building), mcA},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "Secret ocl/push (spec.pushSecret) not found: create it in the PoolImage's namespace, or fix spec.pushSecret")
			st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild, "MachineConfigPool worker is paused since %s for a rebuild, but the inputs cannot be resolved (see BuildSucceeded); unpaused at %s (the hold timeout) unless that is fixed first",
				since.UTC().Format(time.RFC3339), end(since, config.DefaultHoldTimeout))
		}))},
		WantEvents:     []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", "Secret ocl/push (spec.pushSecret) not found: create it in the PoolImage's namespace, or fix spec.pushSecret")},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(config.DefaultHoldTimeout - 20*time.Minute)},
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
		// D: the MCO's operator writes both base images in one ControllerConfig update: a
		// change of them alone does not wait for the quiet period (a Containerfile edit does).
		Name:          "with a quiet period, a change of the release's base images alone builds at once",
		Key:           key(),
		Objects:       upgraded(pool(), status(poolImage(follow), promoted), mcA),
		OtherTestData: settings(rowSettings{Config: &config.Config{Generator: testCfg.Generator, DashboardURL: dashboard, DefaultPullSecret: "global-pull-secret", QuietPeriod: 15 * time.Second}}),
		WantCreates:   []runtime.Object{wantPipeline(t, poolImage(follow), up), wantRun(t, poolImage(follow), up, generator.TriggerUpgrade, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(follow), func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp}
			st.MarkAwaitingBuild()
			st.MarkBuilding(nameUp)
			st.MarkUpToDate(newBase)
		}))},
		WantEvents: []string{startedEvent},
	}, {
		Name:        "Follow: a base change never pauses the pool",
		Key:         key(),
		Objects:     upgraded(pool(), status(poolImage(follow), promoted), mcA),
		WantCreates: []runtime.Object{wantPipeline(t, poolImage(follow), up), wantRun(t, poolImage(follow), up, generator.TriggerUpgrade, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(follow), func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp}
			st.MarkAwaitingBuild()
			st.MarkBuilding(nameUp)
			st.MarkUpToDate(newBase)
		}))},
		WantEvents: []string{startedEvent},
	}, {
		// B6: the admin's unpause ends our claim on the pool: the annotations go, released-for
		// remembers the base, and the pool is not paused again for it.
		Name: "an admin unpaused the held pool: the controller's claim ends, it is not paused again for the same base",
		Key:  key(),
		Objects: upgraded(pool(func(p *mcfgv1.MachineConfigPool) {
			p.Annotations = map[string]string{layering.PausedByAnnotation: ns + "/" + piName, layering.PausedForAnnotation: newBase}
			p.ManagedFields = []metav1.ManagedFieldsEntry{pausedFields("kubectl-patch")}
		}), status(pi, building), mcA, run(t, pi, up, "", since, corev1.ConditionUnknown)),
		WantPatches:             []clientgotesting.PatchActionImpl{poolMetaPatch(poolName, fmt.Sprintf(`{"metadata":{"annotations":{"layering.ocl-pipelines.dev/paused-by":null,"layering.ocl-pipelines.dev/paused-for":null,"layering.ocl-pipelines.dev/paused-since":null,"layering.ocl-pipelines.dev/released-for":"%s"}}}`, newBase))},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.Hold = nil
			st.MarkPoolReleasedByAdmin(poolName)
		}))},
	}, {
		Name: "released by an admin for this base: not paused again",
		Key:  key(),
		Objects: upgraded(pool(func(p *mcfgv1.MachineConfigPool) {
			p.Annotations = map[string]string{layering.ReleasedForAnnotation: newBase}
		}), status(pi, func(st *v1alpha1.PoolImageStatus) { building(st); st.Hold = nil }), mcA, run(t, pi, up, "", since, corev1.ConditionUnknown)),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.Hold = nil
			st.MarkPoolReleasedByAdmin(poolName)
		}))},
	}, {
		// B6: an admin who unpaused and paused again owns spec.paused (managedFields): their
		// pause is never undone, whatever the stale annotation says.
		Name: "an admin paused the pool again after unpausing it: their pause is left alone, our annotations go",
		Key:  key(),
		Objects: upgraded(pool(func(p *mcfgv1.MachineConfigPool) {
			*p = *heldPool(newBase, "rendered-worker-1")
			p.ManagedFields = []metav1.ManagedFieldsEntry{pausedFields("kubectl-edit")}
		}), status(poolImage(follow), building), mcA, run(t, poolImage(follow), up, "", since, corev1.ConditionUnknown)),
		WantPatches:             []clientgotesting.PatchActionImpl{poolMetaPatch(poolName, `{"metadata":{"annotations":{"layering.ocl-pipelines.dev/paused-by":null,"layering.ocl-pipelines.dev/paused-for":null,"layering.ocl-pipelines.dev/paused-since":null}}}`)},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(follow), func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.Hold = nil
			st.MarkPausedByAdmin(poolName)
		}))},
	}, {
		// B6: the base moved again during the hold: the pool now waits for the newer base.
		Name: "the base moves again during a hold: paused-for follows it",
		Key:  key(),
		Objects: upgraded(heldPool(baseV1, "rendered-worker-1"), status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.Hold.BaseImage = baseV1
		}), mcA, run(t, pi, up, "", since, corev1.ConditionUnknown)),
		WantPatches:             []clientgotesting.PatchActionImpl{poolMetaPatch(poolName, fmt.Sprintf(`{"metadata":{"annotations":{"layering.ocl-pipelines.dev/paused-for":"%s"}}}`, newBase))},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			building(st)
			st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild, "%s", heldMsg("the image is being rebuilt", since))
		}))},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(config.DefaultHoldTimeout - 20*time.Minute)},
	}, {
		// B5: a paused master stops the cluster upgrade (the MCO's operator does not sync it).
		Name: "master is never paused",
		Key:  ns + "/" + mco.MasterPool,
		Objects: []runtime.Object{pool(master), controllerConfig(baseV2, extV2), secret("push", corev1.SecretTypeDockerConfigJson),
			status(masterPI, promotedFor(t, masterPI)), machineConfigFor(t, masterPI, pool(master), imageA, extV1, hashOf(t, masterPI, inputs(baseV1, extV1)))},
		WantCreates: []runtime.Object{wantPipeline(t, masterPI, up), func() runtime.Object {
			pr := wantRun(t, masterPI, up, generator.TriggerUpgrade, "")
			pr.Name = generator.RunName(mco.MasterPool, hashOf(t, masterPI, up))
			return pr
		}()},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(masterPI, func(st *v1alpha1.PoolImageStatus) {
			promotedFor(t, masterPI)(st)
			n := generator.RunName(mco.MasterPool, hashOf(t, masterPI, up))
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: n, InputsHash: hashOf(t, masterPI, up), Inputs: summaryOf(t, masterPI, up, "baseImage", "extensionsImage")}
			st.MarkAwaitingBuild()
			st.MarkBuilding(n)
			st.MarkUpToDate(newBase)
			st.MarkMasterNotHeld()
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool master (trigger: upgrade, inputs %s; changed: baseImage, extensionsImage)",
			generator.RunName(mco.MasterPool, hashOf(t, masterPI, up)), hashOf(t, masterPI, up))},
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
			st.MarkReverted("the release's image")
		}))},
		WantEvents: []string{
			released("its PoolImage is reverted or deleted"),
			eventf(corev1.EventTypeNormal, "Reverted", "removed MachineConfig %s: MachineConfigPool worker now runs the release's image", mcA.Name),
		},
	}}
	table.Test(t, factory)
}

// promotedFor is promotedA's status for another PoolImage (pool pi's).
func promotedFor(t *testing.T, pi *v1alpha1.PoolImage) func(*v1alpha1.PoolImageStatus) {
	in := inputs(baseV1, extV1)
	h := hashOf(t, pi, in)
	name, sum := generator.RunName(pi.Spec.MachineConfigPool.Name, h), summaryOf(t, pi, in)
	imageA := pushRepo + "@" + digestA
	return func(st *v1alpha1.PoolImageStatus) {
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum, Image: imageA,
			StartTime: &metav1.Time{Time: now.Add(-2 * time.Hour)}, CompletionTime: &metav1.Time{Time: now.Add(-2*time.Hour + 5*time.Minute)}}
		st.MarkBuildSucceeded(imageA)
		st.MarkPromoted(imageA)
	}
}

// machineConfigFor is the MachineConfig of pi promoting image to pool.
func machineConfigFor(t *testing.T, pi *v1alpha1.PoolImage, pool *mcfgv1.MachineConfigPool, image, ext, hash string) *mcfgv1.MachineConfig {
	t.Helper()
	mc, err := facts.DesiredMachineConfig(pi, pool, testPromotion(image, ext, hash))
	if err != nil {
		t.Fatal(err)
	}
	return mc
}
