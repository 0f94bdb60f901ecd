package poolimage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonlisters "github.com/tektoncd/pipeline/pkg/client/listers/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgotesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/apis"
	logtesting "knative.dev/pkg/logging/testing"
	. "knative.dev/pkg/reconciler/testing"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

func infraPool() *mcfgv1.MachineConfigPool {
	return pool(func(p *mcfgv1.MachineConfigPool) {
		p.Name = "infra"
		p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "machineconfiguration.openshift.io/role", Operator: metav1.LabelSelectorOpIn, Values: []string{"worker", "infra"}}}}
		p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/infra": ""}}
	})
}

// TestReconcileMore covers the inputs the default cluster does not have: every entitlement
// object, the cluster's defaults, custom pools, races and API errors.
func TestReconcileMore(t *testing.T) {
	ent := poolImage(func(p *v1alpha1.PoolImage) {
		p.Spec.BaseImagePullSecret = &v1alpha1.SecretReference{Name: "pull"}
		p.Spec.Entitlements = &v1alpha1.Entitlements{ActivationKey: &v1alpha1.SecretReference{Name: "key"},
			YumRepos: &v1alpha1.ConfigMapReference{Name: "repos"}, RPMGPG: &v1alpha1.SecretReference{Name: "gpg"}}
	})
	repos := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "repos", Namespace: ns}, Data: map[string]string{"a.repo": "[a]"},
		BinaryData: map[string][]byte{"b.bin": {1}}}
	ca := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: facts.TrustedCAConfigMapName, Namespace: ns}, Data: map[string]string{"ca-bundle.crt": "PEM"}}
	entIn := inputs(baseV1, extV1)
	entIn.DefaultEntitlementSecret = true
	entIn.YumReposSHA256 = facts.ConfigMapSHA256(repos)
	entIn.TrustedCA = &generator.TrustedCA{ConfigMapName: facts.TrustedCAConfigMapName, Key: "ca-bundle.crt", SHA256: generator.ContentSHA256(map[string]string{"ca-bundle.crt": "PEM"})}
	entHash := hashOf(t, ent, entIn)

	defaults := poolImage()
	defIn := inputs(baseV1, extV1)
	defIn.DefaultPullSecret = "global-pull-secret"
	defHash := hashOf(t, defaults, defIn)

	infra := poolImage(func(p *v1alpha1.PoolImage) { p.Name, p.Spec.MachineConfigPool.Name = "infra", "infra" })
	infraIn := inputs(baseV1, extV1)
	infraIn.Arch = v1alpha1.ArchARM64
	infraHash := hashOf(t, infra, infraIn)
	infraRun := succeededRun(t, infra, infraIn, now.Add(-time.Minute), digestA)
	infraRun.Name = generator.RunName("infra", infraHash)
	infraRun.UID = types.UID("uid-" + infraRun.Name)
	infraImage := pushRepo + "@" + digestA
	infraMC, err := facts.DesiredMachineConfig(infra, infraPool(), facts.Promotion{Image: infraImage, Extensions: extV1, Hash: infraHash, Base: baseV1, Arch: "arm64"})
	if err != nil {
		t.Fatal(err)
	}

	pi := poolImage()
	in := inputs(baseV1, extV1)
	h := hashOf(t, pi, in)
	name := generator.RunName(poolName, h)

	table := TableTest{{
		Name: "every entitlement object and cluster default is wired into the run",
		Key:  key(),
		Objects: objects(ent, secret("pull", corev1.SecretTypeDockerConfigJson), secret("key", corev1.SecretTypeOpaque),
			secret("gpg", corev1.SecretTypeOpaque), secret("etc-pki-entitlement", corev1.SecretTypeOpaque), repos, ca),
		WantCreates: []runtime.Object{wantRun(t, ent, entIn, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(ent, func(st *v1alpha1.PoolImageStatus) {
			n := generator.RunName(poolName, entHash)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: n, InputsHash: entHash, Inputs: summaryOf(t, ent, entIn)}
			st.MarkAwaitingBuild()
			st.MarkBuilding(n)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: spec, inputs %s; changed: first build)",
			generator.RunName(poolName, entHash), entHash)},
	}, {
		Name:        "the default pull secret of the controller's config is used when it exists",
		Key:         key(),
		Objects:     objects(defaults, secret("global-pull-secret", corev1.SecretTypeDockerConfigJson)),
		WantCreates: []runtime.Object{wantRun(t, defaults, defIn, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(defaults, func(st *v1alpha1.PoolImageStatus) {
			n := generator.RunName(poolName, defHash)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: n, InputsHash: defHash, Inputs: summaryOf(t, defaults, defIn)}
			st.MarkAwaitingBuild()
			st.MarkBuilding(n)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: spec, inputs %s; changed: first build)",
			generator.RunName(poolName, defHash), defHash)},
	}, {
		Name:    "a default pull secret of the wrong type is reported",
		Key:     key(),
		Objects: objects(defaults, secret("global-pull-secret", corev1.SecretTypeOpaque)),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(defaults, func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "Secret ocl/global-pull-secret (the default pull secret of config-ocl-pipelines) is of type Opaque: it must be of type kubernetes.io/dockerconfigjson; recreate it with `oc create secret docker-registry` or `--from-file=.dockerconfigjson=...`")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", "Secret ocl/global-pull-secret (the default pull secret of config-ocl-pipelines) is of type Opaque: it must be of type kubernetes.io/dockerconfigjson; recreate it with `oc create secret docker-registry` or `--from-file=.dockerconfigjson=...`")},
	}, {
		Name: "a custom pool: arm64 nodes, an In selector, a MachineConfig that sorts after the worker one",
		Key:  ns + "/infra",
		Objects: []runtime.Object{infra, infraPool(), controllerConfig(baseV1, extV1), secret("push", corev1.SecretTypeDockerConfigJson),
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "infra-0", Labels: map[string]string{"node-role.kubernetes.io/infra": "", corev1.LabelArchStable: "arm64"}}},
			infraRun},
		WantCreates:             []runtime.Object{tagRun(t, infra, infraIn, infraImage), infraMC},
		WantPatches:             []clientgotesting.PatchActionImpl{reportPatch(infraRun.Name, "succeeded")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(infra, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: infraRun.Name, InputsHash: infraHash, Inputs: summaryOf(t, infra, infraIn), Image: infraImage,
				StartTime: &metav1.Time{Time: now.Add(-time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(4 * time.Minute)}}
			st.MarkBuildSucceeded(infraImage)
			st.MarkPromoted(infraImage)
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", infraRun.Name, infraImage),
			eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-1-infra-os-image sets osImageURL of MachineConfigPool infra to %s", infraImage),
		},
	}, {
		Name: "a pool without machineConfigSelector cannot be promoted to",
		Key:  key(),
		Objects: []runtime.Object{pi, pool(func(p *mcfgv1.MachineConfigPool) { p.Spec.MachineConfigSelector = nil }), controllerConfig(baseV1, extV1),
			node("worker-0", "amd64"), secret("push", corev1.SecretTypeDockerConfigJson), succeededRun(t, pi, in, now.Add(-time.Minute), digestA)},
		WantPatches: []clientgotesting.PatchActionImpl{reportPatch(name, "succeeded")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), Image: pushRepo + "@" + digestA,
				StartTime: &metav1.Time{Time: now.Add(-time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(4 * time.Minute)}}
			st.MarkBuildSucceeded(pushRepo + "@" + digestA)
			st.MarkPromotionFailed("MachineConfigPool worker has no spec.machineConfigSelector, so no MachineConfig can target it")
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", name, pushRepo+"@"+digestA),
			eventf(corev1.EventTypeWarning, "PromotionFailed", "MachineConfigPool worker has no spec.machineConfigSelector, so no MachineConfig can target it"),
		},
	}, {
		Name:    "a run created meanwhile (stale lister) is followed, not duplicated",
		Key:     key(),
		Objects: objects(pi),
		WithReactors: []clientgotesting.ReactionFunc{func(a clientgotesting.Action) (bool, runtime.Object, error) {
			if a.GetVerb() == "create" && a.GetResource().Resource == "pipelineruns" {
				return true, nil, apierrors.NewAlreadyExists(tektonv1.Resource("pipelineruns"), name)
			}
			if a.GetVerb() == "get" && a.GetResource().Resource == "pipelineruns" {
				return true, run(t, pi, in, "", now, corev1.ConditionUnknown), nil
			}
			return false, nil, nil
		}},
		WantCreates: []runtime.Object{wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), StartTime: &metav1.Time{Time: now}}
			st.MarkAwaitingBuild()
			st.MarkBuilding(name)
		}))},
	}, {
		Name:    "an API error creating the run is retried",
		Key:     key(),
		Objects: objects(pi),
		WithReactors: []clientgotesting.ReactionFunc{func(a clientgotesting.Action) (bool, runtime.Object, error) {
			if a.GetVerb() == "create" && a.GetResource().Resource == "pipelineruns" {
				return true, nil, apierrors.NewServiceUnavailable("etcd is busy")
			}
			return false, nil, nil
		}},
		WantErr:     true,
		WantCreates: []runtime.Object{wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			// The inputs were seen; the create is retried with the next reconcile.
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h, Since: metav1.NewTime(now)}
			(&v1alpha1.PoolImage{}).GetConditionSet().Manage(st).MarkUnknown(v1alpha1.ConditionReady, "NewObservedGenFailure", "unsuccessfully observed a new generation")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InternalError", "create PipelineRun ocl/%s: etcd is busy", name)},
	}, {
		Name: "deleting a PoolImage that does not own its pool leaves the MachineConfig",
		Key:  key(),
		Objects: objects(poolImage(func(p *v1alpha1.PoolImage) {
			p.Namespace, p.Name, p.UID = "team-a", "older", "older-uid"
			p.CreationTimestamp = metav1.NewTime(now.Add(-48 * time.Hour))
		}), machineConfig(t, poolImage(func(p *v1alpha1.PoolImage) { p.Namespace, p.Name = "team-a", "older" }), pushRepo+"@"+digestA, extV1, h)),
	}, {
		// Defect B12 of modelTraces: a claimant that lost the pool, deleted, prunes none of the winner's runs
		// (same namespace, same pool label).
		Name: "deleting the losing claimant leaves the winner's runs alone",
		Key:  ns + "/loser",
		Objects: objects(pi, run(t, pi, in, "winner-1", now.Add(-3*time.Hour), corev1.ConditionFalse),
			run(t, pi, in, "winner-2", now.Add(-2*time.Hour), corev1.ConditionFalse),
			run(t, pi, in, "winner-3", now.Add(-1*time.Hour), corev1.ConditionFalse)),
	}, {
		// Defect B12 of modelTraces: an old run found again (the status that recorded it was lost) was
		// reported when it finished: adopting it emits no second BuildSucceeded, counts nothing.
		Name:                    "an adopted old run already reported: promoted, no second event or count",
		Key:                     key(),
		Objects:                 objects(pi, reportedRun(succeededRun(t, pi, in, now.Add(-2*time.Hour), digestA), "succeeded")),
		WantCreates:             []runtime.Object{tagRun(t, pi, in, pushRepo+"@"+digestA), machineConfig(t, pi, pushRepo+"@"+digestA, extV1, h)},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), Image: pushRepo + "@" + digestA,
				StartTime: &metav1.Time{Time: now.Add(-2 * time.Hour)}, CompletionTime: &metav1.Time{Time: now.Add(-2*time.Hour + 5*time.Minute)}}
			st.MarkBuildSucceeded(pushRepo + "@" + digestA)
			st.MarkPromoted(pushRepo + "@" + digestA)
		}))},
		WantEvents:     []string{eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", pushRepo+"@"+digestA)},
		PostConditions: []func(*testing.T, *TableRow){wantMetric("ocl_pipelines_builds", -1, nil)},
	}, {
		// Defect B12 of modelTraces: two reconciles see the run finish (the cache lags behind the first's
		// write): the second's report fails its resourceVersion precondition and emits nothing.
		Name: "a finish another reconcile reported meanwhile is not reported again",
		Key:  key(),
		Objects: objects(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in)}
			st.MarkBuilding(name)
		}), succeededRun(t, pi, in, now.Add(-10*time.Minute), digestA)),
		WithReactors: []clientgotesting.ReactionFunc{func(a clientgotesting.Action) (bool, runtime.Object, error) {
			if a.GetVerb() == "patch" && a.GetResource().Resource == "pipelineruns" {
				return true, nil, apierrors.NewConflict(tektonv1.Resource("pipelineruns"), name, errors.New("the object has been modified"))
			}
			return false, nil, nil
		}},
		WantCreates:             []runtime.Object{tagRun(t, pi, in, pushRepo+"@"+digestA), machineConfig(t, pi, pushRepo+"@"+digestA, extV1, h)},
		WantPatches:             []clientgotesting.PatchActionImpl{reportPatch(name, "succeeded")},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), Image: pushRepo + "@" + digestA,
				StartTime: &metav1.Time{Time: now.Add(-10 * time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(-5 * time.Minute)}}
			st.MarkBuildSucceeded(pushRepo + "@" + digestA)
			st.MarkPromoted(pushRepo + "@" + digestA)
		}))},
		WantEvents:     []string{eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", pushRepo+"@"+digestA)},
		PostConditions: []func(*testing.T, *TableRow){wantMetric("ocl_pipelines_builds", -1, nil)},
	}, {
		Name: "inputs changed back to the promoted ones: the build of the abandoned inputs is cancelled",
		Key:  key(),
		Objects: objects(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), Image: pushRepo + "@" + digestA,
				StartTime: &metav1.Time{Time: now.Add(-2 * time.Hour)}, CompletionTime: &metav1.Time{Time: now.Add(-2*time.Hour + 5*time.Minute)}}
			st.MarkBuildSucceeded(pushRepo + "@" + digestA)
			st.MarkPromoted(pushRepo + "@" + digestA)
		}), machineConfig(t, pi, pushRepo+"@"+digestA, extV1, h), tagRun(t, pi, in, pushRepo+"@"+digestA), succeededRun(t, pi, in, now.Add(-2*time.Hour), digestA),
			run(t, poolImage(withContainerfile("FROM configs AS final\nRUN abandoned\n")), in, "abandoned", now.Add(-time.Minute), corev1.ConditionUnknown)),
		WantPatches: []clientgotesting.PatchActionImpl{cancelPatch("abandoned")},
		WantEvents:  []string{eventf(corev1.EventTypeNormal, "Superseded", "cancelled PipelineRun abandoned: its inputs are out of date (inputs %s replace them)", h)},
	}, {
		Name: "promotion resumed after the successful run was deleted: the recorded image is promoted",
		Key:  key(),
		Objects: objects(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), Image: pushRepo + "@" + digestA}
			st.MarkBuildSucceeded(pushRepo + "@" + digestA)
			st.MarkPromotionPaused(pushRepo + "@" + digestA)
		})),
		WantCreates:             []runtime.Object{tagRun(t, pi, in, pushRepo+"@"+digestA), machineConfig(t, pi, pushRepo+"@"+digestA, extV1, h)},
		SkipNamespaceValidation: true,
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: summaryOf(t, pi, in), Image: pushRepo + "@" + digestA}
			st.MarkBuildSucceeded(pushRepo + "@" + digestA)
			st.MarkPromoted(pushRepo + "@" + digestA)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", pushRepo+"@"+digestA)},
	}, {
		Name:    "revert with nothing promoted: no event",
		Key:     key(),
		Objects: objects(poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Revert = true })),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Revert = true }),
			func(st *v1alpha1.PoolImageStatus) { st.MarkReverted("the release's image") }))},
	}}
	table.Test(t, factory)
}

// TestLegacyHashAdopted: an image promoted under hash version 1 (which also hashed
// the proxy and the trust bundle) is adopted under the new hash of the same inputs: no build, no
// rollout; the MachineConfig's annotation follows, without a Promoted event.
func TestLegacyHashAdopted(t *testing.T) {
	pi := poolImage()
	in := inputs(baseV1, extV1)
	in.Proxy = generator.Proxy{HTTPProxy: "http://proxy.example.com:3128"}
	legacy, err := generator.LegacyInputsHashes(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	h := hashOf(t, pi, in)
	image := pushRepo + "@" + digestA
	cc := controllerConfig(baseV1, extV1)
	cc.Spec.Proxy.HTTPProxy = "http://proxy.example.com:3128"
	promotedPI := status(pi, func(st *v1alpha1.PoolImageStatus) {
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: "old-run", InputsHash: legacy[0], Inputs: summaryOf(t, pi, in), Image: image}
		st.MarkBuildSucceeded(image)
		st.MarkPromoted(image)
	})
	env := newTestEnv(t, []runtime.Object{promotedPI, pool(), cc, node("worker-0", "amd64"), secret("push", corev1.SecretTypeDockerConfigJson),
		machineConfig(t, pi, image, extV1, legacy[0]), tagRun(t, pi, in, image)}, testCfg, nil)
	if err := env.reconciler.Reconcile(logtesting.TestContextWithLogger(t), key()); err != nil {
		t.Fatal(err)
	}
	for _, a := range env.tekton.Actions() {
		if a.GetVerb() == "create" {
			t.Errorf("a build of inputs promoted under the old hash: %v", a)
		}
	}
	mc, err := env.mco.MachineconfigurationV1().MachineConfigs().Get(context.Background(), facts.MachineConfigName(poolName), metav1.GetOptions{})
	if err != nil || mc.Annotations[layering.MachineConfigInputsHashAnnotation] != h || mc.Spec.OSImageURL != image {
		t.Errorf("MachineConfig %+v (%v), want the same image under the new hash %s", mc, err, h)
	}
	got, err := env.layering.LayeringV1alpha1().PoolImages(ns).Get(context.Background(), piName, metav1.GetOptions{})
	if err != nil || got.Status.CurrentInputsHash != h || got.Status.CurrentImage != image {
		t.Errorf("status %+v (%v), want currentInputsHash %s and the same image", got.Status, err, h)
	}
	select {
	case ev := <-env.recorder.Events:
		t.Errorf("event %q for adopting a hash", ev)
	default:
	}
}

// TestSecondReconcileWritesNothing reconciles a PoolImage, feeds back what the first reconcile
// wrote (its status and its PipelineRun), and reconciles again: no write at all.
func TestSecondReconcileWritesNothing(t *testing.T) {
	pi := poolImage()
	first := &TableRow{Name: "first", Key: key(), Objects: objects(pi)}
	r, actions, _ := factory(t, first)
	if err := r.Reconcile(logtesting.TestContextWithLogger(t), first.Key); err != nil {
		t.Fatal(err)
	}
	got, err := actions.ActionsByVerb()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Creates) != 1 || len(got.Updates) != 1 {
		t.Fatalf("first reconcile: %d creates, %d status updates; want 1 and 1", len(got.Creates), len(got.Updates))
	}
	created := got.Creates[0].GetObject().(*tektonv1.PipelineRun)
	updated := got.Updates[0].GetObject().(*v1alpha1.PoolImage)
	second := TableRow{Name: "second reconcile of unchanged inputs", Key: key(), Objects: objects(updated, created)}
	TableTest{second}.Test(t, factory)
}

func TestHelpers(t *testing.T) {
	long := strings.Repeat("p", 250)
	if n := facts.MachineConfigName(long); len(n) > 253 || !strings.HasPrefix(n, "zz-ocl-1-") || n == facts.MachineConfigName(long+"q") {
		t.Errorf("MachineConfigName of a long pool = %q", n)
	}
	if facts.MachineConfigName("worker") >= facts.MachineConfigName("infra") {
		t.Error("the worker MachineConfig must sort before custom pools' ones")
	}
	if got := tail(strings.Repeat("x", 3000)); len(got) > maxMessageBytes+len("…") || !strings.HasPrefix(got, "…") {
		t.Errorf("tail of a long line = %d bytes", len(got))
	}
	if _, err := facts.MachineConfigLabels(pool(func(p *mcfgv1.MachineConfigPool) {
		p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "a", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"x"}}, {Key: "b", Operator: metav1.LabelSelectorOpExists}}}
	})); err != nil {
		t.Errorf("NotIn + Exists selector: %v", err)
	}
	if _, err := facts.MachineConfigLabels(pool(func(p *mcfgv1.MachineConfigPool) {
		p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "a", Operator: metav1.LabelSelectorOpDoesNotExist}, {Key: "a", Operator: metav1.LabelSelectorOpExists}}}
	})); err == nil || !strings.Contains(err.Error(), "give the selector matchLabels") {
		t.Errorf("unsatisfiable selector: %v", err)
	}
	e := inputErrorf("x %d", 1)
	if e.Error() != "x 1" {
		t.Errorf("inputError = %q", e)
	}
}

// TestFailedPushNamesRegistryAndSecret: a push step that explained its failure in the FAILURE
// result puts that line in the status, with the push secret (or its absence) and the field.
func TestFailedPushNamesRegistryAndSecret(t *testing.T) {
	const why = "registry 10.0.0.1:5001 refused the push secret's credentials for 10.0.0.1:5001/os/worker:latest (not retried): give the push secret write access to that repository"
	pr := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "ocl-worker-1", Namespace: ns}}
	pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: "Failed", Message: "Tasks Completed: 1 (Failed: 1)"})
	pr.Status.ChildReferences = []tektonv1.ChildStatusReference{{TypeMeta: runtime.TypeMeta{Kind: "TaskRun"}, Name: "ocl-worker-1-build", PipelineTaskName: "build"}}
	tr := &tektonv1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "ocl-worker-1-build", Namespace: ns}}
	tr.Status.Steps = []tektonv1.StepState{
		{Name: "build", ContainerState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
		{Name: "push", ContainerState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}},
	}
	tr.Status.Results = []tektonv1.TaskRunResult{{Name: contract.ResultFailure, Type: tektonv1.ResultsTypeString, Value: *tektonv1.NewStructuredValues(why)}}
	tr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: "Failed", Message: `"step-push" exited with code 1`})
	trimmed, err := TrimForCache(tr)
	if err != nil {
		t.Fatal(err)
	}
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := idx.Add(trimmed); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{TaskRunLister: tektonlisters.NewTaskRunLister(idx)}

	f := r.failureOf(pr, poolImage(), "")
	want := why + "; push secret: Secret " + ns + "/push (spec.pushSecret)"
	if f.Task != "build" || f.Step != "push" || f.Message != want {
		t.Errorf("failure = %+v\nwant task build, step push, message %q", f, want)
	}
	f = r.failureOf(pr, poolImage(func(p *v1alpha1.PoolImage) { p.Spec.PushSecret = nil }), "")
	if want := why + "; no push secret is set (spec.pushSecret)"; f.Message != want {
		t.Errorf("without a push secret: message %q, want %q", f.Message, want)
	}
}
