package poolimage

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgotesting "k8s.io/client-go/testing"
	. "knative.dev/pkg/reconciler/testing"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/upgrade"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/release"
)

type fakeCandidates struct {
	c   *upgrade.Candidate
	err error
}

func (f fakeCandidates) Next(context.Context) (*upgrade.Candidate, error) { return f.c, f.err }

// TestPrebuild: a release offered or targeted by ClusterVersion is built for before the
// upgrade (after the quiet period); UpgradeReady reports it; the upgrade then promotes that image
// without a second build; only a known, different candidate cancels a prebuild; a prebuild that
// left no image makes the upgrade build once; a failed prebuild is retried with a new token.
func TestPrebuild(t *testing.T) {
	pi, in := poolImage(), inputs(baseV1, extV1)
	_, mcA, promoted := promotedA(t)

	cand := &upgrade.Candidate{Version: "4.19.2", Image: "quay.io/openshift-release-dev/ocp-release@sha256:9999999999999999999999999999999999999999999999999999999999999999",
		OS: release.OSImages{Version: "4.19.2", BaseOS: baseV2, Extensions: extV2}}
	releases := settings(rowSettings{Releases: fakeCandidates{c: cand}})
	up := inputs(baseV2, extV2)
	hUp := hashOf(t, pi, up)
	nameUp := generator.PrebuildRunName(poolName, hUp)
	sumUp := summaryOf(t, pi, up, "baseImage", "extensionsImage")
	imageB := pushRepo + "@" + digestB
	prebuildRun := func(p *v1alpha1.PoolImage, in generator.Inputs) *tektonv1.PipelineRun {
		pr := wantRun(t, p, in, generator.TriggerPrebuild, "")
		pr.Name = generator.PrebuildRunName(p.Spec.MachineConfigPool.Name, hashOf(t, p, in))
		pr.Annotations[layering.ReleaseAnnotation] = cand.Version
		return pr
	}
	upgradeBuild := func(image string, f *v1alpha1.BuildFailure) *v1alpha1.UpgradeBuild {
		return &v1alpha1.UpgradeBuild{Release: cand.Version, ReleaseImage: cand.Image, BaseImage: baseV2, InputsHash: hUp,
			PipelineRun: nameUp, Image: image, Failure: f}
	}
	building := fmt.Sprintf("PipelineRun %s builds the image of MachineConfigPool worker for release 4.19.2 (base image %s)", nameUp, baseV2)

	// A run of the pool's candidate inputs that was started as a prebuild.
	asPrebuild := func(pr *tektonv1.PipelineRun) *tektonv1.PipelineRun {
		pr.Name = generator.PrebuildRunName(poolName, pr.Labels[layering.InputsHashLabel])
		pr.UID = types.UID("uid-" + pr.Name)
		pr.Annotations[layering.TriggerAnnotation] = string(generator.TriggerPrebuild)
		pr.Annotations[layering.ReleaseAnnotation] = cand.Version
		return pr
	}
	running := asPrebuild(run(t, pi, up, "", now.Add(-time.Minute), corev1.ConditionUnknown))
	prebuilding := func(st *v1alpha1.PoolImageStatus) {
		promoted(st)
		st.Upgrade = upgradeBuild("", nil)
		st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding, "%s", building)
	}
	failure := &v1alpha1.BuildFailure{Reason: "Failed", Message: "Tasks Completed: 4", LogsCommand: fmt.Sprintf("tkn pipelinerun logs %s -n %s", nameUp, ns),
		DashboardURL: fmt.Sprintf("%s/#/namespaces/%s/pipelineruns/%s", dashboard, ns, nameUp)}
	failedMsg := fmt.Sprintf("the image of MachineConfigPool worker does not build on release 4.19.2: build failed: Tasks Completed: 4 (logs: tkn pipelinerun logs %s -n %s); fix the Containerfile before upgrading, or set the annotation layering.ocl-pipelines.dev/retry to a new value to build it again", nameUp, ns)
	withRetry := func(p *v1alpha1.PoolImage) { p.Annotations = map[string]string{layering.RetryAnnotation: retryToken} }
	// upgraded: the cluster's ControllerConfig carries the candidate's images.
	upgraded := func(extra ...runtime.Object) []runtime.Object {
		return append([]runtime.Object{pool(), controllerConfig(baseV2, extV2), node("worker-0", "amd64"), secret("push", corev1.SecretTypeDockerConfigJson), mcA}, extra...)
	}

	edited := withContainerfile("FROM configs AS final\nRUN echo edited > /etc/hi\n")
	pi2 := poolImage(edited)
	h2 := hashOf(t, pi2, in)
	name2 := generator.RunName(poolName, h2)
	up2 := hashOf(t, pi2, up)

	tagA := tagRun(t, pi, in, pushRepo+"@"+digestA)
	table := TableTest{{
		Name:          "a release is offered: the pool's image is built for it, nothing is promoted",
		Key:           key(),
		Objects:       objects(status(pi, promoted), mcA, tagA),
		OtherTestData: releases,
		WantCreates:   []runtime.Object{wantPipeline(t, pi, up), prebuildRun(pi, up)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			prebuilding(st)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: prebuild, inputs %s; changed: baseImage, extensionsImage)", nameUp, hUp)},
		PostConditions: []func(*testing.T, *TableRow){
			wantMetric("ocl_pipelines_builds_started", 1, map[string]string{"poolimage": key(), "trigger": "prebuild"}),
		},
	}, {
		// B12: the quiet period applies to prebuilds too.
		Name:    "with a quiet period, the prebuild waits for it",
		Key:     key(),
		Objects: objects(status(pi, promoted), mcA, tagA),
		OtherTestData: settings(rowSettings{Releases: fakeCandidates{c: cand},
			Config: &config.Config{Generator: testCfg.Generator, DashboardURL: dashboard, DefaultPullSecret: "global-pull-secret", QuietPeriod: 15 * time.Second}}),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.Upgrade = &v1alpha1.UpgradeBuild{Release: cand.Version, ReleaseImage: cand.Image, BaseImage: baseV2, InputsHash: hUp, PendingSince: &metav1.Time{Time: now}}
			st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding,
				"the build of MachineConfigPool worker's image for release 4.19.2 (base image %s) starts at %s unless the inputs change again", baseV2, now.Add(15*time.Second).UTC().Format(time.RFC3339))
		}))},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(15 * time.Second)},
	}, {
		Name:          "the prebuild succeeded: UpgradeReady, still nothing promoted",
		Key:           key(),
		Objects:       objects(status(pi, prebuilding), mcA, tagA, asPrebuild(succeededRun(t, pi, up, now.Add(-10*time.Minute), digestB))),
		OtherTestData: releases,
		WantPatches:   []clientgotesting.PatchActionImpl{reportPatch(nameUp, "succeeded")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.Upgrade = upgradeBuild(imageB, nil)
			st.MarkUpgradeReady(corev1.ConditionTrue, v1alpha1.ReasonPrebuildSucceeded,
				"the image of MachineConfigPool worker for release 4.19.2 is built and verified (%s): the upgrade promotes it at once", imageB)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "PrebuildSucceeded", "PipelineRun %s built and verified %s for release 4.19.2", nameUp, imageB)},
		PostConditions: []func(*testing.T, *TableRow){
			wantMetric("ocl_pipelines_builds", 1, map[string]string{"poolimage": key(), "result": "succeeded"}),
		},
	}, {
		Name:          "the prebuild failed: UpgradeReady=False says what failed before anyone upgrades",
		Key:           key(),
		Objects:       objects(status(pi, prebuilding), mcA, tagA, asPrebuild(run(t, pi, up, "", now.Add(-10*time.Minute), corev1.ConditionFalse))),
		OtherTestData: releases,
		WantPatches:   []clientgotesting.PatchActionImpl{reportPatch(nameUp, "failed")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.Upgrade = upgradeBuild("", failure)
			st.MarkUpgradeReady(corev1.ConditionFalse, v1alpha1.ReasonPrebuildFailed, "%s", failedMsg)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "PrebuildFailed", "%s", failedMsg)},
	}, {
		// B12: a failed prebuild can be retried.
		Name: "a new retry token retries the failed prebuild (the current image is fine)",
		Key:  key(),
		Objects: objects(status(poolImage(withRetry), func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.Upgrade = upgradeBuild("", failure)
		}), mcA, tagA, reportedRun(asPrebuild(run(t, pi, up, "", now.Add(-10*time.Minute), corev1.ConditionFalse)), "failed")),
		OtherTestData: releases,
		WantCreates: []runtime.Object{wantPipeline(t, poolImage(withRetry), up), func() runtime.Object {
			pr := prebuildRun(poolImage(withRetry), up)
			pr.Name = generator.RetryRunName(poolName, hUp, retryToken)
			pr.Annotations[layering.RetryAnnotation] = retryToken
			return pr
		}()},
		WantPatches: []clientgotesting.PatchActionImpl{retryRecordPatch(retryToken)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(withRetry), func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			n := generator.RetryRunName(poolName, hUp, retryToken)
			st.Retry = &v1alpha1.RetryStatus{Token: retryToken, PipelineRun: n}
			st.Upgrade = upgradeBuild("", nil)
			st.Upgrade.PipelineRun = n
			st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding,
				"PipelineRun %s builds the image of MachineConfigPool worker for release 4.19.2 (base image %s)", n, baseV2)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: prebuild, inputs %s; changed: baseImage, extensionsImage)",
			generator.RetryRunName(poolName, hUp, retryToken), hUp)},
	}, {
		Name: "the upgrade arrives: the prebuilt image is promoted at once, no second build, no hold, counted once",
		Key:  key(),
		Objects: upgraded(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.Upgrade = upgradeBuild(imageB, nil)
			st.MarkUpgradeReady(corev1.ConditionTrue, v1alpha1.ReasonPrebuildSucceeded, "ready")
		}), reportedRun(asPrebuild(succeededRun(t, pi, up, now.Add(-10*time.Minute), digestB)), "succeeded")),
		// ClusterVersion still names the release whose images the cluster now runs.
		OtherTestData: releases,
		WantUpdates: []clientgotesting.UpdateActionImpl{{
			ActionImpl: clientgotesting.ActionImpl{Verb: "update", Resource: mcfgv1.GroupVersion.WithResource("machineconfigs")},
			Object:     machineConfig(t, pi, imageB, extV2, hUp)}},
		WantCreates:             []runtime.Object{tagRun(t, pi, up, imageB)},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: nameUp, InputsHash: hUp, Inputs: sumUp, Image: imageB,
				StartTime: &metav1.Time{Time: now.Add(-10 * time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(-5 * time.Minute)}}
			st.MarkBuildSucceeded(imageB)
			st.MarkPromoted(imageB)
			st.MarkUpToDate(baseV2)
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", imageB),
		},
		PostConditions: []func(*testing.T, *TableRow){wantMetric("ocl_pipelines_builds", -1, nil)},
	}, {
		// B1: a prebuild that left no image (cancelled here) is "no result": the upgrade builds
		// once, under the build's own name, instead of following the cancelled run.
		Name: "the prebuild was cancelled: the upgrade builds once",
		Key:  key(),
		Objects: upgraded(status(pi, prebuilding), func() *tektonv1.PipelineRun {
			pr := asPrebuild(run(t, pi, up, "", now.Add(-10*time.Minute), corev1.ConditionFalse))
			pr.Spec.Status = tektonv1.PipelineRunSpecStatusCancelled
			pr.Status.GetCondition("Succeeded").Reason = tektonv1.PipelineRunReasonCancelled.String()
			return pr
		}()),
		OtherTestData:           releases,
		WantCreates:             []runtime.Object{wantPipeline(t, pi, up), wantRun(t, pi, up, generator.TriggerUpgrade, "")},
		WantPatches:             []clientgotesting.PatchActionImpl{poolPatch(true, baseV2)},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			n := generator.RunName(poolName, hUp)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: n, InputsHash: hUp, Inputs: sumUp}
			st.MarkAwaitingBuild()
			st.MarkBuilding(n)
			st.MarkUpToDate(baseV2)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(now), BaseImage: baseV2, Pools: []string{poolName}}
			st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild, "MachineConfigPool worker is paused since %s while the image is being rebuilt on the new base image %s; unpaused once the new image is promoted, at the latest at %s (the hold timeout). To roll out the new configuration on the current image now, set spec.promotion.upgradeStrategy to Follow",
				now.UTC().Format(time.RFC3339), baseV2, now.Add(config.DefaultHoldTimeout).UTC().Format(time.RFC3339))
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: upgrade, inputs %s; changed: baseImage, extensionsImage)", generator.RunName(poolName, hUp), hUp),
			eventf(corev1.EventTypeNormal, "PoolHeld", "paused MachineConfigPool worker while its image is rebuilt on the new base image %s: its nodes will take the release's new configuration and the new image in one reboot", baseV2),
		},
	}, {
		// B1: while the next release is unknown (being read, unreadable, ClusterVersion not
		// synced), the current inputs' reconcile leaves the running prebuild alone.
		Name:          "the next release is being read: the running prebuild is not cancelled",
		Key:           key(),
		Objects:       objects(status(pi, prebuilding), mcA, tagA, running),
		OtherTestData: settings(rowSettings{Releases: fakeCandidates{err: fmt.Errorf("release 4.19.2: %w", upgrade.ErrReading)}}),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			prebuilding(st)
			st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonReleaseUnknown,
				"cannot tell whether the image builds on the next release: release 4.19.2: reading the release image")
		}))},
	}, {
		// B1: after the CVO accepted the upgrade, the candidate is the current release
		// (Next returns none) while the ControllerConfig still has the old base.
		Name:          "the upgrade is accepted but not in the ControllerConfig yet: the running prebuild is not cancelled",
		Key:           key(),
		Objects:       objects(status(pi, prebuilding), mcA, tagA, running),
		OtherTestData: settings(rowSettings{Releases: fakeCandidates{}}),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
		}))},
	}, {
		Name:          "a spec edit builds the current inputs and starts the prebuild of the new ones; the old prebuild is replaced",
		Key:           key(),
		Objects:       objects(status(pi2, promoted), mcA, tagA, running),
		OtherTestData: releases,
		WantCreates: []runtime.Object{wantPipeline(t, pi2, in), withChanged(wantRun(t, pi2, in, generator.TriggerSpec, ""), "containerfile"),
			withChanged(prebuildRun(pi2, up), "baseImage", "extensionsImage", "containerfile")},
		WantPatches: []clientgotesting.PatchActionImpl{cancelPatch(nameUp)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi2, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name2, InputsHash: h2, Inputs: summaryOf(t, pi2, in, "containerfile")}
			st.MarkAwaitingBuild()
			st.MarkBuilding(name2)
			st.Upgrade = &v1alpha1.UpgradeBuild{Release: cand.Version, ReleaseImage: cand.Image, BaseImage: baseV2, InputsHash: up2,
				PipelineRun: generator.PrebuildRunName(poolName, up2)}
			st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding,
				"PipelineRun %s builds the image of MachineConfigPool worker for release 4.19.2 (base image %s)", generator.PrebuildRunName(poolName, up2), baseV2)
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: spec, inputs %s; changed: containerfile)", name2, h2),
			eventf(corev1.EventTypeNormal, "Superseded", "cancelled PipelineRun %s: it builds for an older candidate; release 4.19.2 (inputs %s) replaces it", nameUp, up2),
			eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: prebuild, inputs %s; changed: baseImage, extensionsImage, containerfile)", generator.PrebuildRunName(poolName, up2), up2),
		},
	}, {
		Name:          "the release cannot be read: UpgradeReady=Unknown says why, the pool is unaffected",
		Key:           key(),
		Objects:       objects(status(pi, promoted), mcA, tagA),
		OtherTestData: settings(rowSettings{Releases: fakeCandidates{err: errors.New("release 4.19.2 (quay.io/x): read the pull secret openshift-config/pull-secret: forbidden")}}),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonReleaseUnknown,
				"cannot tell whether the image builds on the next release: release 4.19.2 (quay.io/x): read the pull secret openshift-config/pull-secret: forbidden")
		}))},
	}, {
		Name: "no release offered any more: status.upgrade and UpgradeReady are cleared",
		Key:  key(),
		Objects: objects(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.Upgrade = upgradeBuild("", nil)
			st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding, "old")
		}), mcA, tagA),
		OtherTestData:     settings(rowSettings{Releases: fakeCandidates{}}),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, promoted))},
	}}
	table.Test(t, factory)
}

// A base image pinned in the spec does not follow releases: no prebuild.
func TestNoPrebuildForAPinnedBase(t *testing.T) {
	r := &Reconciler{Releases: fakeCandidates{c: &upgrade.Candidate{Version: "4.19.2", OS: release.OSImages{BaseOS: baseV2}}}}
	pinned := poolImage(func(p *v1alpha1.PoolImage) { p.Spec.BaseImage = baseV1 })
	next, _, err := r.candidateInputs(context.Background(), pinned, &resolved{inputs: inputs(baseV1, extV1)})
	if next != nil || err != nil {
		t.Errorf("candidateInputs of a pinned base = %+v, %v; want none", next, err)
	}
	next, _, err = r.candidateInputs(context.Background(), poolImage(), &resolved{inputs: inputs(baseV1, extV1)})
	if next == nil || err != nil || next.inputs.BaseImage != baseV2 {
		t.Errorf("candidateInputs of a release-following pool = %+v, %v; want the candidate's base", next, err)
	}
}
