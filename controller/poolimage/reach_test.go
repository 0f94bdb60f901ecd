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
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// TestReachedPools (defect B7 of modelTraces): the pools a MachineConfig reaches are computed as the MCO
// computes them (its merge order, its assignment of nodes to pools): a custom pool that also
// selects the worker MachineConfigs and has no image of its own runs the worker image, so it is
// checked for architecture and held with the worker pool; a node that keeps the worker label in
// a custom pool is the custom pool's; reverting a custom pool says what it will run.
func TestReachedPools(t *testing.T) {
	pi, in := poolImage(), inputs(baseV1, extV1)
	h := hashOf(t, pi, in)
	name := generator.RunName(poolName, h)
	image := pushRepo + "@" + digestA
	mcA := machineConfig(t, pi, image, extV1, h)
	_, _, promoted := promotedA(t)
	infraNode := func(arch string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "infra-0", Labels: map[string]string{
			"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/infra": "", corev1.LabelArchStable: arch}}}
	}
	succeeded := func(st *v1alpha1.PoolImageStatus) {
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), Image: image,
			StartTime: &metav1.Time{Time: now.Add(-10 * time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(-5 * time.Minute)}}
		st.MarkBuildSucceeded(image)
	}
	refused := fmt.Sprintf("MachineConfigPool infra has arm64 nodes (infra-0) and also selects MachineConfig %s, which would boot them on this amd64 image: create a PoolImage for MachineConfigPool infra (its own image, for its architecture): its MachineConfig then wins the merge for that pool, and this one can be promoted to worker", facts.MachineConfigName(poolName))

	up := inputs(baseV2, extV2)
	hUp := hashOf(t, pi, up)
	newBase := baseV2

	infraPI := poolImage(func(p *v1alpha1.PoolImage) {
		p.Name, p.Spec.MachineConfigPool.Name, p.Spec.Revert = "infra", "infra", true
	})
	infraMC := machineConfigFor(t, infraPI, infraPool(), pushRepo+"@"+digestB, extV1, "infra-hash")

	table := TableTest{{
		Name: "worker's image would reach the arm64 nodes of a custom pool without its own image: refused, nothing written",
		Key:  key(),
		Objects: []runtime.Object{status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in)}
			st.MarkBuilding(name)
		}), pool(), infraPool(), controllerConfig(baseV1, extV1), node("worker-0", "amd64"), infraNode("arm64"),
			secret("push", corev1.SecretTypeDockerConfigJson), succeededRun(t, pi, in, now.Add(-10*time.Minute), digestA)},
		WantPatches: []clientgotesting.PatchActionImpl{reportPatch(name, "succeeded")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			succeeded(st)
			st.MarkPromotionFailed("%s", refused)
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", name, image),
			eventf(corev1.EventTypeWarning, "PromotionFailed", "%s", refused),
		},
	}, {
		Name: "the custom pool has its own image: worker's MachineConfig does not reach it, and it is promoted",
		Key:  key(),
		Objects: []runtime.Object{status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in)}
			st.MarkBuilding(name)
		}), pool(), infraPool(), controllerConfig(baseV1, extV1), node("worker-0", "amd64"), infraNode("arm64"), infraMC,
			secret("push", corev1.SecretTypeDockerConfigJson), succeededRun(t, pi, in, now.Add(-10*time.Minute), digestA)},
		WantCreates:             []runtime.Object{tagRun(t, pi, in, image), mcA},
		WantPatches:             []clientgotesting.PatchActionImpl{reportPatch(name, "succeeded")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			succeeded(st)
			st.MarkPromoted(image)
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", name, image),
			eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig %s sets osImageURL of MachineConfigPool worker to %s", facts.MachineConfigName(poolName), image),
		},
	}, {
		// The arm64 node keeps the worker label but belongs to infra (the MCO's assignment):
		// worker is not a mixed-architecture pool.
		Name: "a base change holds worker and the custom pool that runs worker's image, together",
		Key:  key(),
		Objects: []runtime.Object{status(pi, promoted), pool(), infraPool(), controllerConfig(baseV2, extV2), node("worker-0", "amd64"),
			infraNode("amd64"), secret("push", corev1.SecretTypeDockerConfigJson), mcA},
		WantCreates:             []runtime.Object{wantPipeline(t, pi, up), wantRun(t, pi, up, generator.TriggerUpgrade, "")},
		WantPatches:             []clientgotesting.PatchActionImpl{namedPoolPatch(poolName, true, newBase), namedPoolPatch("infra", true, newBase)},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			n := generator.RunName(poolName, hUp)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: n, InputsHash: hUp, Inputs: summaryOf(t, pi, up, "baseImage", "extensionsImage")}
			st.MarkAwaitingBuild()
			st.MarkBuilding(n)
			st.MarkUpToDate(newBase)
			st.Hold = &v1alpha1.PoolHold{Since: metav1.NewTime(now), BaseImage: newBase, Pools: []string{poolName, "infra"}}
			st.MarkPoolHeld(v1alpha1.ReasonHeldForRebuild, "MachineConfigPools worker, infra are paused since %s while the image is being rebuilt on the new base image %s; unpaused once the new image is promoted, at the latest at %s (the hold timeout). To roll out the new configuration on the current image now, set spec.promotion.upgradeStrategy to Follow",
				now.UTC().Format(time.RFC3339), newBase, now.Add(config.DefaultHoldTimeout).UTC().Format(time.RFC3339))
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: upgrade, inputs %s; changed: baseImage, extensionsImage)", generator.RunName(poolName, hUp), hUp),
			eventf(corev1.EventTypeNormal, "PoolHeld", "paused MachineConfigPool worker while its image is rebuilt on the new base image %s: its nodes will take the release's new configuration and the new image in one reboot", newBase),
			eventf(corev1.EventTypeNormal, "PoolHeld", "paused MachineConfigPool infra while its image is rebuilt on the new base image %s: its nodes will take the release's new configuration and the new image in one reboot", newBase),
		},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(config.DefaultHoldTimeout)},
	}, {
		// The MCO's render controller, run on the stack: a custom pool whose own MachineConfig
		// goes renders the worker's layered image, not the release's.
		Name: "reverting the custom pool's PoolImage says it will run the worker's image",
		Key:  ns + "/infra",
		Objects: []runtime.Object{status(infraPI, func(st *v1alpha1.PoolImageStatus) {}), pool(), infraPool(), controllerConfig(baseV1, extV1),
			node("worker-0", "amd64"), infraNode("amd64"), secret("push", corev1.SecretTypeDockerConfigJson), mcA, infraMC},
		WantDeletes: []clientgotesting.DeleteActionImpl{{ActionImpl: clientgotesting.ActionImpl{Verb: "delete",
			Resource: mcfgv1.GroupVersion.WithResource("machineconfigs")}, Name: infraMC.Name}},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(infraPI, func(st *v1alpha1.PoolImageStatus) {
			st.MarkReverted(fmt.Sprintf("%s (from MachineConfig %s of PoolImage %s/%s, which it also selects)", image, mcA.Name, ns, piName))
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "Reverted", "removed MachineConfig %s: MachineConfigPool infra now runs %s (from MachineConfig %s of PoolImage %s/%s, which it also selects)",
			infraMC.Name, image, mcA.Name, ns, piName)},
	}}
	table.Test(t, factory)
}
