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
	clientgotesting "k8s.io/client-go/testing"
	. "knative.dev/pkg/reconciler/testing"

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
// upgrade; UpgradeReady reports it; the upgrade then promotes that image without a second build;
// the current inputs' builds never cancel it.
func TestPrebuild(t *testing.T) {
	pi, in := poolImage(), inputs(baseV1, extV1)
	_, mcA, promoted := promotedA(t)

	cand := &upgrade.Candidate{Version: "4.19.2", Image: "quay.io/openshift-release-dev/ocp-release@sha256:9999999999999999999999999999999999999999999999999999999999999999",
		OS: release.OSImages{Version: "4.19.2", BaseOS: baseV2, Extensions: extV2}}
	releases := map[string]interface{}{"releases": fakeCandidates{c: cand}}
	up := inputs(baseV2, extV2)
	hUp := hashOf(t, pi, up)
	nameUp := generator.RunName(poolName, hUp)
	sumUp := summaryOf(t, pi, up, "baseImage", "extensionsImage")
	imageB := pushRepo + "@" + digestB
	prebuildRun := func(p *v1alpha1.PoolImage, in generator.Inputs) *tektonv1.PipelineRun {
		pr := wantRun(t, p, in, TriggerPrebuild, "")
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
		pr.Annotations[layering.TriggerAnnotation] = TriggerPrebuild
		pr.Annotations[layering.ReleaseAnnotation] = cand.Version
		return pr
	}

	edited := withContainerfile("FROM configs AS final\nRUN echo edited > /etc/hi\n")
	pi2 := poolImage(edited)
	h2 := hashOf(t, pi2, in)
	name2 := generator.RunName(poolName, h2)
	up2 := hashOf(t, pi2, up)

	table := TableTest{{
		Name:          "a release is offered: the pool's image is built for it, nothing is promoted",
		Key:           key(),
		Objects:       objects(status(pi, promoted), mcA),
		OtherTestData: releases,
		WantCreates:   []runtime.Object{prebuildRun(pi, up)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.Upgrade = upgradeBuild("", nil)
			st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding, "%s", building)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: prebuild, inputs %s; changed: baseImage, extensionsImage)", nameUp, hUp)},
		PostConditions: []func(*testing.T, *TableRow){
			wantMetric("ocl_pipelines_builds_started", 1, map[string]string{"poolimage": key(), "trigger": "prebuild"}),
		},
	}, {
		Name:          "the prebuild succeeded: UpgradeReady, still nothing promoted",
		Key:           key(),
		Objects:       objects(status(pi, promoted), mcA, asPrebuild(succeededRun(t, pi, up, now.Add(-10*time.Minute), digestB))),
		OtherTestData: releases,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.Upgrade = upgradeBuild(imageB, nil)
			st.MarkUpgradeReady(corev1.ConditionTrue, v1alpha1.ReasonPrebuildSucceeded,
				"the image of MachineConfigPool worker for release 4.19.2 is built and verified (%s): the upgrade promotes it at once", imageB)
		}))},
	}, {
		Name:          "the prebuild failed: UpgradeReady=False says what failed before anyone upgrades",
		Key:           key(),
		Objects:       objects(status(pi, promoted), mcA, asPrebuild(run(t, pi, up, "", now.Add(-10*time.Minute), corev1.ConditionFalse))),
		OtherTestData: releases,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			f := &v1alpha1.BuildFailure{Reason: "Failed", Message: "Tasks Completed: 4", LogsCommand: fmt.Sprintf("tkn pipelinerun logs %s -n %s", nameUp, ns),
				DashboardURL: fmt.Sprintf("%s/#/namespaces/%s/pipelineruns/%s", dashboard, ns, nameUp)}
			st.Upgrade = upgradeBuild("", f)
			st.MarkUpgradeReady(corev1.ConditionFalse, v1alpha1.ReasonPrebuildFailed,
				"the image of MachineConfigPool worker does not build on release 4.19.2: build failed: Tasks Completed: 4 (logs: tkn pipelinerun logs %s -n %s); fix the Containerfile before upgrading, or the pool keeps its current image after the upgrade", nameUp, ns)
		}))},
	}, {
		Name: "the upgrade arrives: the prebuilt image is promoted at once, no second build, no hold",
		Key:  key(),
		Objects: []runtime.Object{status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.Upgrade = upgradeBuild(imageB, nil)
			st.MarkUpgradeReady(corev1.ConditionTrue, v1alpha1.ReasonPrebuildSucceeded, "ready")
		}), pool(), controllerConfig(baseV2, extV2), node("worker-0", "amd64"), secret("push", corev1.SecretTypeDockerConfigJson),
			mcA, asPrebuild(succeededRun(t, pi, up, now.Add(-10*time.Minute), digestB))},
		// ClusterVersion still names the release whose images the cluster now runs.
		OtherTestData: releases,
		WantUpdates: []clientgotesting.UpdateActionImpl{{
			ActionImpl: clientgotesting.ActionImpl{Verb: "update", Resource: mcfgv1.GroupVersion.WithResource("machineconfigs")},
			Object:     machineConfig(t, pi, imageB, extV2, hUp)}},
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
			eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", nameUp, imageB),
			eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", imageB),
		},
	}, {
		Name:          "a spec edit builds the current inputs and leaves the prebuild of the new ones running",
		Key:           key(),
		Objects:       objects(status(pi2, promoted), mcA, asPrebuild(run(t, pi2, up, "", now.Add(-time.Minute), corev1.ConditionUnknown))),
		OtherTestData: releases,
		WantCreates:   []runtime.Object{wantRun(t, pi2, in, TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi2, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name2, InputsHash: h2, Inputs: summaryOf(t, pi2, in, "containerfile")}
			st.MarkAwaitingBuild()
			st.MarkBuilding(name2)
			st.Upgrade = &v1alpha1.UpgradeBuild{Release: cand.Version, ReleaseImage: cand.Image, BaseImage: baseV2, InputsHash: up2,
				PipelineRun: generator.RunName(poolName, up2)}
			st.MarkUpgradeReady(corev1.ConditionUnknown, v1alpha1.ReasonPrebuilding,
				"PipelineRun %s builds the image of MachineConfigPool worker for release 4.19.2 (base image %s)", generator.RunName(poolName, up2), baseV2)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: spec, inputs %s; changed: containerfile)", name2, h2)},
	}, {
		Name:          "the release cannot be read: UpgradeReady=Unknown says why, the pool is unaffected",
		Key:           key(),
		Objects:       objects(status(pi, promoted), mcA),
		OtherTestData: map[string]interface{}{"releases": fakeCandidates{err: errors.New("release 4.19.2 (quay.io/x): read the pull secret openshift-config/pull-secret: forbidden")}},
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
		}), mcA),
		OtherTestData:     map[string]interface{}{"releases": fakeCandidates{}},
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
