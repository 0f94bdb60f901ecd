package poolimage

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgotesting "k8s.io/client-go/testing"
	"knative.dev/pkg/apis"
	logtesting "knative.dev/pkg/logging/testing"
	. "knative.dev/pkg/reconciler/testing"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

func objects(extra ...runtime.Object) []runtime.Object {
	return append(cluster(), extra...)
}

func cancelPatch(name string) clientgotesting.PatchActionImpl {
	return clientgotesting.PatchActionImpl{
		ActionImpl: clientgotesting.ActionImpl{Namespace: ns, Verb: "patch",
			Resource: tektonv1.SchemeGroupVersion.WithResource("pipelineruns")},
		Name: name, PatchType: "application/merge-patch+json", Patch: []byte(`{"metadata":{"resourceVersion":""},"spec":{"status":"Cancelled"}}`),
	}
}

func deleteRun(name string) clientgotesting.DeleteActionImpl {
	return clientgotesting.DeleteActionImpl{ActionImpl: clientgotesting.ActionImpl{Namespace: ns, Verb: "delete",
		Resource: tektonv1.SchemeGroupVersion.WithResource("pipelineruns")}, Name: name}
}

func mcUpdate(mc *mcfgv1.MachineConfig) clientgotesting.UpdateActionImpl {
	return clientgotesting.UpdateActionImpl{ActionImpl: clientgotesting.ActionImpl{Verb: "update",
		Resource: mcfgv1.GroupVersion.WithResource("machineconfigs")}, Object: mc}
}

// TestReconcile is the reconciler's behaviour, one row per case: objects in, wanted writes and
// events out.
// lockedMessage is the status of a PoolImage in lockedNS.
const lockedMessage = "spec.pushSecret: the controller may not read Secrets in namespace locked (secrets is forbidden: " +
	`User "system:serviceaccount:ocl-pipelines:ocl-pipelines-controller" cannot list resource "secrets" in API group "" in the namespace "locked"): ` +
	"grant it there with `oc -n locked create rolebinding ocl-pipelines-secrets --clusterrole=ocl-pipelines-secrets --serviceaccount=ocl-pipelines:ocl-pipelines-controller`"

func TestReconcile(t *testing.T) {
	pi := poolImage()
	in := inputs(baseV1, extV1)
	h := hashOf(t, pi, in)
	name := generator.RunName(poolName, h)
	sum := summaryOf(t, pi, in)
	image := pushRepo + "@" + digestA
	mcA := machineConfig(t, pi, image, extV1, h)

	// The pool runs image A, built from pi on baseV1.
	promoted := func(st *v1alpha1.PoolImageStatus) {
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum, Image: image,
			StartTime: &metav1.Time{Time: now.Add(-2 * time.Hour)}, CompletionTime: &metav1.Time{Time: now.Add(-2*time.Hour + 5*time.Minute)}}
		st.MarkBuildSucceeded(image)
		st.MarkPromoted(image)
	}
	promotedPI := status(pi, promoted)

	// An edited Containerfile: new inputs.
	edited := withContainerfile("FROM configs AS final\nRUN echo edited > /etc/hi\n")
	pi2 := poolImage(edited)
	h2 := hashOf(t, pi2, in)
	name2 := generator.RunName(poolName, h2)
	sum2 := summaryOf(t, pi2, in, "containerfile")

	withRetry := func(p *v1alpha1.PoolImage) { p.Annotations = map[string]string{layering.RetryAnnotation: retryToken} }

	failedTaskRun := &tektonv1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-build", Namespace: ns},
		Status: tektonv1.TaskRunStatus{TaskRunStatusFields: tektonv1.TaskRunStatusFields{Steps: []tektonv1.StepState{
			{Name: "inject", ContainerState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
			{Name: "build", ContainerState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}},
		}}},
	}
	failedTaskRun.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: "Failed",
		Message: "line 1\nline 2\nline 3\nline 4\nline 5\n\"step-build\" exited with code 1"})
	failedRun := run(t, pi, in, "", now.Add(-10*time.Minute), corev1.ConditionFalse)
	failedRun.Status.ChildReferences = []tektonv1.ChildStatusReference{
		{TypeMeta: runtime.TypeMeta{Kind: "TaskRun"}, Name: name + "-fetch-base-digest", PipelineTaskName: "fetch-base-digest"},
		{TypeMeta: runtime.TypeMeta{Kind: "TaskRun"}, Name: name + "-build", PipelineTaskName: "build"},
	}
	failure := &v1alpha1.BuildFailure{Task: "build", Step: "build", Reason: "Failed",
		Message:      "line 2\nline 3\nline 4\nline 5\n\"step-build\" exited with code 1",
		LogsCommand:  fmt.Sprintf("tkn pipelinerun logs %s -n %s --task build", name, ns),
		DashboardURL: fmt.Sprintf("%s/#/namespaces/%s/pipelineruns/%s?pipelineTask=build&step=build", dashboard, ns, name)}

	quiet := &config.Config{Generator: testCfg.Generator, QuietPeriod: 15 * time.Second, DefaultPullSecret: "global-pull-secret"}

	var conflicts atomic.Int32

	table := TableTest{{
		Name: "invalid spec: no run, a condition and an event naming the field",
		Key:  key(),
		Objects: objects(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.ImagePushSpec = "registry.example.com/os/worker"
		})),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.ImagePushSpec = "registry.example.com/os/worker"
		}), func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInvalidSpec, "invalid value: \"registry.example.com/os/worker\": no tag: spec.imagePushSpec; add the tag that will name the pool's current image; use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InvalidSpec", "invalid value: \"registry.example.com/os/worker\": no tag: spec.imagePushSpec; add the tag that will name the pool's current image; use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest")},
	}, {
		// An earlier version's finalizer would wedge the PoolImage's deletion: it is removed.
		Name: "the finalizer of an earlier version is removed",
		Key:  key(),
		Objects: objects(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.ImagePushSpec = "registry.example.com/os/worker"
			p.Finalizers = []string{"example.dev/other", LegacyFinalizer}
		})),
		WantPatches: []clientgotesting.PatchActionImpl{{ActionImpl: clientgotesting.ActionImpl{Namespace: ns, Verb: "patch",
			Resource: v1alpha1.SchemeGroupVersion.WithResource("poolimages")}, Name: piName, PatchType: "application/merge-patch+json",
			Patch: []byte(`{"metadata":{"finalizers":["example.dev/other"],"resourceVersion":""}}`)}},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.ImagePushSpec = "registry.example.com/os/worker"
			p.Finalizers = []string{"example.dev/other", LegacyFinalizer}
		}), func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInvalidSpec, "invalid value: \"registry.example.com/os/worker\": no tag: spec.imagePushSpec; add the tag that will name the pool's current image; use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InvalidSpec", "invalid value: \"registry.example.com/os/worker\": no tag: spec.imagePushSpec; add the tag that will name the pool's current image; use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest")},
	}, {
		Name:    "missing pool",
		Key:     key(),
		Objects: []runtime.Object{pi, controllerConfig(baseV1, extV1), secret("push", corev1.SecretTypeDockerConfigJson)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, `MachineConfigPool "worker" not found: create it, or fix spec.machineConfigPool.name`)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", `MachineConfigPool "worker" not found: create it, or fix spec.machineConfigPool.name`)},
	}, {
		Name:    "missing push secret",
		Key:     key(),
		Objects: []runtime.Object{pi, pool(), controllerConfig(baseV1, extV1), node("worker-0", "amd64")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "Secret ocl/push (spec.pushSecret) not found: create it in the PoolImage's namespace, or fix spec.pushSecret")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", "Secret ocl/push (spec.pushSecret) not found: create it in the PoolImage's namespace, or fix spec.pushSecret")},
	}, {
		Name:    "Secrets of the namespace not readable: the RoleBinding to create is named",
		Key:     lockedNS + "/" + piName,
		Objects: objects(poolImage(func(p *v1alpha1.PoolImage) { p.Namespace = lockedNS })),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) { p.Namespace = lockedNS }), func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, lockedMessage)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", lockedMessage)},
	}, {
		Name:    "push secret of the wrong type",
		Key:     key(),
		Objects: []runtime.Object{pi, pool(), controllerConfig(baseV1, extV1), node("worker-0", "amd64"), secret("push", corev1.SecretTypeOpaque)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "Secret ocl/push (spec.pushSecret) is of type Opaque: it must be of type kubernetes.io/dockerconfigjson; recreate it with `oc create secret docker-registry` or `--from-file=.dockerconfigjson=...`")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", "Secret ocl/push (spec.pushSecret) is of type Opaque: it must be of type kubernetes.io/dockerconfigjson; recreate it with `oc create secret docker-registry` or `--from-file=.dockerconfigjson=...`")},
	}, {
		Name: "missing entitlement ConfigMap",
		Key:  key(),
		Objects: objects(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.Entitlements = &v1alpha1.Entitlements{YumRepos: &v1alpha1.ConfigMapReference{Name: "repos"}}
		})),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.Entitlements = &v1alpha1.Entitlements{YumRepos: &v1alpha1.ConfigMapReference{Name: "repos"}}
		}), func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "ConfigMap ocl/repos (spec.entitlements.yumRepos) not found: create it in the PoolImage's namespace, or fix spec.entitlements.yumRepos")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", "ConfigMap ocl/repos (spec.entitlements.yumRepos) not found: create it in the PoolImage's namespace, or fix spec.entitlements.yumRepos")},
	}, {
		Name: "two PoolImages claim one pool: the younger one waits",
		Key:  key(),
		Objects: objects(pi, poolImage(func(p *v1alpha1.PoolImage) {
			p.Namespace, p.Name, p.UID = "team-a", "older", "older-uid"
			p.CreationTimestamp = metav1.NewTime(now.Add(-48 * time.Hour))
		})),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, `MachineConfigPool "worker" is already claimed by PoolImage team-a/older (the older one wins): delete one of them`)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", `MachineConfigPool "worker" is already claimed by PoolImage team-a/older (the older one wins): delete one of them`)},
	}, {
		Name:    "no ControllerConfig and no baseImage: the base is unresolvable",
		Key:     key(),
		Objects: []runtime.Object{pi, pool(), node("worker-0", "amd64"), secret("push", corev1.SecretTypeDockerConfigJson)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "ControllerConfig machine-config-controller not found, so the release's base OS image is unknown: run on an OpenShift cluster or set spec.baseImage")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", "ControllerConfig machine-config-controller not found, so the release's base OS image is unknown: run on an OpenShift cluster or set spec.baseImage")},
	}, {
		Name:    "mixed architectures in one pool",
		Key:     key(),
		Objects: objects(pi, node("worker-1", "arm64")),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.MarkInvalid(v1alpha1.ReasonInputsUnresolved, "MachineConfigPool worker has nodes of several architectures (amd64, arm64): split it into one custom pool per architecture (each selecting the pool's MachineConfigs, with a nodeSelector on kubernetes.io/arch), each with its own PoolImage")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "InputsUnresolved", "MachineConfigPool worker has nodes of several architectures (amd64, arm64): split it into one custom pool per architecture (each selecting the pool's MachineConfigs, with a nodeSelector on kubernetes.io/arch), each with its own PoolImage")},
	}, {
		Name:              "new inputs: one deterministic PipelineRun",
		Key:               key(),
		Objects:           objects(pi),
		WantCreates:       []runtime.Object{wantPipeline(t, pi, in), wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{firstBuildUpdate(t, pi, in)},
		WantEvents:        []string{firstBuildEvent(t, pi, in)},
	}, {
		// The API server refuses the first status write (another writer changed the PoolImage):
		// the generated reconciler re-reads it and writes the same status again. One run, one
		// event, one count: nothing is lost and nothing is done twice.
		Name:    "a status update conflict is retried on a fresh read",
		Key:     key(),
		Objects: objects(pi),
		WithReactors: []clientgotesting.ReactionFunc{func(a clientgotesting.Action) (bool, runtime.Object, error) {
			if a.GetVerb() == "update" && a.GetSubresource() == "status" && conflicts.Add(1) == 1 {
				return true, nil, apierrors.NewConflict(v1alpha1.Resource("poolimages"), piName, errors.New("the object has been modified"))
			}
			return false, nil, nil
		}},
		WantCreates: []runtime.Object{wantPipeline(t, pi, in), wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantStatusUpdates: func() []clientgotesting.UpdateActionImpl {
			u := statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
				st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum}
				st.MarkAwaitingBuild()
				st.MarkBuilding(name)
			}))
			return []clientgotesting.UpdateActionImpl{u, u}
		}(),
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: spec, inputs %s; changed: first build)", name, h)},
		PostConditions: []func(*testing.T, *TableRow){
			wantMetric("ocl_pipelines_builds_started", 1, map[string]string{"poolimage": key(), "trigger": "spec"}),
			func(t *testing.T, _ *TableRow) {
				if n := conflicts.Load(); n != 2 {
					t.Errorf("%d status writes reached the API server, want 2 (the refused one and its retry)", n)
				}
			},
		},
	}, {
		Name:          "quiet period: inputs first seen are recorded and re-checked later",
		Key:           key(),
		Objects:       objects(pi),
		OtherTestData: settings(rowSettings{Config: quiet}),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h, Since: metav1.NewTime(now)}
			st.MarkAwaitingBuild()
			st.MarkQuietPeriod(now.Add(15 * time.Second))
		}))},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(15 * time.Second)},
	}, {
		Name: "quiet period over: the build starts",
		Key:  key(),
		Objects: objects(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h, Since: metav1.NewTime(now.Add(-20 * time.Second))}
		})),
		OtherTestData:     settings(rowSettings{Config: quiet}),
		WantCreates:       []runtime.Object{wantPipeline(t, pi, in), wantRun(t, pi, in, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{firstBuildUpdate(t, pi, in)},
		WantEvents:        []string{firstBuildEvent(t, pi, in)},
	}, {
		Name: "burst: a change during the quiet period restarts it, no run",
		Key:  key(),
		Objects: objects(status(pi2, func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h, Since: metav1.NewTime(now.Add(-10 * time.Second))}
		})),
		OtherTestData: settings(rowSettings{Config: quiet}),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi2, func(st *v1alpha1.PoolImageStatus) {
			st.Pending = &v1alpha1.PendingBuild{InputsHash: h2, Since: metav1.NewTime(now)}
			st.MarkAwaitingBuild()
			st.MarkQuietPeriod(now.Add(15 * time.Second))
		}))},
		PostConditions: []func(*testing.T, *TableRow){wantEnqueued(15 * time.Second)},
	}, {
		Name:    "restart: the run of these inputs exists, it is followed, not duplicated",
		Key:     key(),
		Objects: objects(pi, run(t, pi, in, "", now.Add(-time.Minute), corev1.ConditionUnknown)),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum, StartTime: &metav1.Time{Time: now.Add(-time.Minute)}}
			st.MarkAwaitingBuild()
			st.MarkBuilding(name)
		}))},
	}, {
		Name: "dashboard re-run: the newest copy of these inputs is followed",
		Key:  key(),
		Objects: objects(pi, run(t, pi, in, "", now.Add(-time.Hour), corev1.ConditionFalse),
			run(t, pi, in, name+"-rerun", now.Add(-time.Minute), corev1.ConditionUnknown)),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name + "-rerun", InputsHash: h, Inputs: sum, StartTime: &metav1.Time{Time: now.Add(-time.Minute)}}
			st.MarkAwaitingBuild()
			st.MarkBuilding(name + "-rerun")
		}))},
	}, {
		Name:        "newer inputs supersede the active run",
		Key:         key(),
		Objects:     objects(pi2, run(t, pi, in, "", now.Add(-time.Minute), corev1.ConditionUnknown)),
		WantCreates: []runtime.Object{wantPipeline(t, pi2, in), wantRun(t, pi2, in, generator.TriggerSpec, "")},
		WantPatches: []clientgotesting.PatchActionImpl{cancelPatch(name)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi2, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name2, InputsHash: h2, Inputs: summaryOf(t, pi2, in)}
			st.MarkAwaitingBuild()
			st.MarkBuilding(name2)
		}))},
		WantEvents: []string{
			// The API server's runs are cancelled before the new one starts.
			eventf(corev1.EventTypeNormal, "Superseded", "cancelled PipelineRun %s: its inputs are out of date (inputs %s replace them)", name, h2),
			eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: spec, inputs %s; changed: first build)", name2, h2),
		},
		PostConditions: []func(*testing.T, *TableRow){
			wantMetric("ocl_pipelines_builds_superseded", 1, map[string]string{"poolimage": key(), "pool": poolName}),
			wantMetric("ocl_pipelines_builds_started", 1, map[string]string{"poolimage": key(), "trigger": "spec"}),
		},
	}, {
		Name: "success: the verified digest is promoted through a MachineConfig",
		Key:  key(),
		Objects: objects(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum}
			st.MarkBuilding(name)
		}), succeededRun(t, pi, in, now.Add(-10*time.Minute), digestA)),
		WantCreates:             []runtime.Object{tagRun(t, pi, in, image), mcA},
		WantPatches:             []clientgotesting.PatchActionImpl{reportPatch(name, "succeeded")},
		SkipNamespaceValidation: true, // MachineConfigs are cluster-scoped
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum, Image: image,
				StartTime: &metav1.Time{Time: now.Add(-10 * time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(-5 * time.Minute)}}
			st.MarkBuildSucceeded(image)
			st.MarkPromoted(image)
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", name, image),
			eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", image),
		},
		PostConditions: []func(*testing.T, *TableRow){
			wantMetric("ocl_pipelines_builds", 1, map[string]string{"poolimage": key(), "result": "succeeded", "reason": "Succeeded", "task": "", "step": ""}),
			wantMetric("ocl_pipelines_build_duration", 1, map[string]string{"poolimage": key(), "result": "succeeded"}),
			wantMetric("ocl_pipelines_builds_running", 1, nil), // the lister's status: still Building
			wantMetric("ocl_pipelines_last_successful_build_timestamp", float64(now.Add(-5*time.Minute).UnixNano())/1e9, map[string]string{"pool": poolName}),
		},
	}, {
		Name: "success while promotion is paused: recorded, not promoted",
		Key:  key(),
		Objects: objects(poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Promotion = &v1alpha1.Promotion{Paused: true} }),
			succeededRun(t, pi, in, now.Add(-10*time.Minute), digestA)),
		WantPatches: []clientgotesting.PatchActionImpl{reportPatch(name, "succeeded")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) {
			p.Spec.Promotion = &v1alpha1.Promotion{Paused: true}
		}), func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum, Image: image,
				StartTime: &metav1.Time{Time: now.Add(-10 * time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(-5 * time.Minute)}}
			st.MarkBuildSucceeded(image)
			st.MarkPromotionPaused(image)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", name, image)},
	}, {
		Name:        "success without results: a clear failure, nothing promoted",
		Key:         key(),
		Objects:     objects(pi, run(t, pi, in, "", now.Add(-10*time.Minute), corev1.ConditionTrue)),
		WantPatches: []clientgotesting.PatchActionImpl{reportPatch(name, "failed")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum,
				StartTime: &metav1.Time{Time: now.Add(-10 * time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(-5 * time.Minute)}}
			st.MarkKeptAfterFailure()
			st.MarkBuildFailed(&v1alpha1.BuildFailure{Reason: "MissingResults",
				Message:     fmt.Sprintf("PipelineRun ocl/%s succeeded without the results IMAGE_URL and IMAGE_DIGEST (got \"\", \"\")", name),
				LogsCommand: fmt.Sprintf("tkn pipelinerun logs %s -n ocl", name)})
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "BuildFailed",
			"PipelineRun ocl/%s succeeded without the results IMAGE_URL and IMAGE_DIGEST (got \"\", \"\"); the pool keeps its current image", name)},
	}, {
		Name: "failure: task, step, reason, message tail, logs command; the promoted image stays",
		Key:  key(),
		Objects: objects(status(pi2, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.ObservedGeneration = 1
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum}
		}), taskRunNamed(failedTaskRun, name2+"-build"), mcA, failedRunFor(t, pi2, in, failedRun)),
		WantPatches: []clientgotesting.PatchActionImpl{reportPatch(name2, "failed")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi2, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name2, InputsHash: h2, Inputs: sum2,
				StartTime: &metav1.Time{Time: now.Add(-10 * time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(-9 * time.Minute)}}
			st.MarkKeptAfterFailure()
			st.MarkBuildFailed(failureFor(failure, name2))
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "BuildFailed",
			"task build, step build failed: line 2; line 3; line 4; line 5; \"step-build\" exited with code 1; logs: tkn pipelinerun logs %s -n ocl --task build; the pool keeps its current image", name2)},
		PostConditions: []func(*testing.T, *TableRow){
			wantMetric("ocl_pipelines_builds", 1, map[string]string{"poolimage": key(), "pool": poolName, "result": "failed", "reason": "Failed", "task": "build", "step": "build"}),
			wantMetric("ocl_pipelines_build_duration", 1, map[string]string{"poolimage": key(), "result": "failed"}),
			wantMetric("ocl_pipelines_builds", -1, map[string]string{"result": "succeeded"}),
		},
	}, {
		Name:    "promoted inputs: nothing to do, no write",
		Key:     key(),
		Objects: objects(promotedPI, mcA, tagRun(t, pi, in, image), reportedRun(succeededRun(t, pi, in, now.Add(-2*time.Hour), digestA), "succeeded")),
		PostConditions: []func(*testing.T, *TableRow){
			wantMetric("ocl_pipelines_builds", -1, nil),
			wantMetric("ocl_pipelines_builds_started", -1, nil),
			wantMetric("ocl_pipelines_pool_out_of_date", 0, map[string]string{"poolimage": key()}),
			wantMetric("ocl_pipelines_pool_build_failed", -1, nil),
		},
	}, {
		Name:        "MachineConfig drift is repaired",
		Key:         key(),
		Objects:     objects(promotedPI, machineConfig(t, pi, pushRepo+"@"+digestB, extV1, h), tagRun(t, pi, in, image), succeededRun(t, pi, in, now.Add(-2*time.Hour), digestA)),
		WantUpdates: []clientgotesting.UpdateActionImpl{mcUpdate(mcA)},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "Promoted",
			"MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", image)},
	}, {
		Name: "a MachineConfig of that name not managed by us is left alone and reported",
		Key:  key(),
		Objects: objects(promotedPI, &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "zz-ocl-0-worker-os-image"}},
			succeededRun(t, pi, in, now.Add(-2*time.Hour), digestA)),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.MarkPromotionFailed("MachineConfig zz-ocl-0-worker-os-image exists and is not managed by ocl-pipelines: rename or delete it so the pool's image can be promoted")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "PromotionFailed", "MachineConfig zz-ocl-0-worker-os-image exists and is not managed by ocl-pipelines: rename or delete it so the pool's image can be promoted")},
	}, {
		Name: "retry annotation: the same inputs run again",
		Key:  key(),
		Objects: objects(status(poolImage(withRetry), func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum, Failure: failure}
			st.MarkBuildFailed(failure)
		}), failedRun),
		WantCreates: []runtime.Object{wantPipeline(t, poolImage(withRetry), in), wantRun(t, poolImage(withRetry), in, generator.TriggerRetry, retryToken)},
		WantPatches: []clientgotesting.PatchActionImpl{retryRecordPatch(retryToken)},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(withRetry), func(st *v1alpha1.PoolImageStatus) {
			n := generator.RetryRunName(poolName, h, retryToken)
			st.Retry = &v1alpha1.RetryStatus{Token: retryToken, PipelineRun: n}
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: n, InputsHash: h, Inputs: sum, Retry: retryToken}
			st.MarkAwaitingBuild()
			st.MarkBuilding(n)
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: retry, inputs %s; changed: first build)",
			generator.RetryRunName(poolName, h, retryToken), h)},
	}, {
		Name: "a success after a failure clears the failure and promotes",
		Key:  key(),
		Objects: objects(status(poolImage(withRetry), func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: generator.RetryRunName(poolName, h, retryToken), InputsHash: h, Inputs: sum, Retry: retryToken, Failure: failure}
			st.MarkBuildFailed(failure)
		}), failedRun, retried(succeededRun(t, poolImage(withRetry), in, now.Add(-time.Minute), digestA), h)),
		WantCreates:             []runtime.Object{tagRun(t, pi, in, image), mcA},
		WantPatches:             []clientgotesting.PatchActionImpl{reportPatch(generator.RetryRunName(poolName, h, retryToken), "succeeded")},
		SkipNamespaceValidation: true, // MachineConfigs are cluster-scoped
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(withRetry), func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: generator.RetryRunName(poolName, h, retryToken), InputsHash: h, Inputs: sum, Retry: retryToken,
				Image: image, StartTime: &metav1.Time{Time: now.Add(-time.Minute)}, CompletionTime: &metav1.Time{Time: now.Add(4 * time.Minute)}}
			st.MarkBuildSucceeded(image)
			st.MarkPromoted(image)
		}))},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "BuildSucceeded", "PipelineRun %s built and verified %s", generator.RetryRunName(poolName, h, retryToken), image),
			eventf(corev1.EventTypeNormal, "Promoted", "MachineConfig zz-ocl-0-worker-os-image sets osImageURL of MachineConfigPool worker to %s", image),
		},
	}, {
		// The informer has not seen the run this controller just created (a reconcile right
		// after the create): the API server has it, so it is followed, not reported deleted.
		Name: "a run the cache has not seen yet is followed, not reported deleted",
		Key:  key(),
		Objects: objects(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum}
			st.MarkBuilding(name)
		})),
		WithReactors: []clientgotesting.ReactionFunc{func(a clientgotesting.Action) (bool, runtime.Object, error) {
			if a.GetVerb() == "get" && a.GetResource().Resource == "pipelineruns" {
				return true, run(t, pi, in, "", now.Add(-time.Minute), corev1.ConditionUnknown), nil
			}
			return false, nil, nil
		}},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum, StartTime: &metav1.Time{Time: now.Add(-time.Minute)}}
			st.MarkAwaitingBuild()
			st.MarkBuilding(name)
		}))},
		PostConditions: []func(*testing.T, *TableRow){wantMetric("ocl_pipelines_builds", -1, nil)},
	}, {
		Name: "the running PipelineRun was deleted: say so, do not rebuild",
		Key:  key(),
		Objects: objects(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.ObservedGeneration = 1
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum}
			st.MarkBuilding(name)
		})),
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
			st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum}
			st.MarkKeptAfterFailure()
			st.MarkBuildFailed(&v1alpha1.BuildFailure{Reason: "PipelineRunDeleted",
				Message: fmt.Sprintf("PipelineRun %s was deleted before it finished; set the annotation layering.ocl-pipelines.dev/retry to a new value to build again", name)})
		}))},
		WantEvents: []string{eventf(corev1.EventTypeWarning, "BuildFailed", "PipelineRun %s was deleted before it finished", name)},
	}, {
		Name:        "revert: the MachineConfig goes, the pool returns to the release's image",
		Key:         key(),
		Objects:     objects(status(poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Revert = true }), promoted), mcA),
		WantDeletes: []clientgotesting.DeleteActionImpl{{ActionImpl: clientgotesting.ActionImpl{Verb: "delete", Resource: mcfgv1.GroupVersion.WithResource("machineconfigs")}, Name: mcA.Name}},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{statusUpdate(status(poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Revert = true }), func(st *v1alpha1.PoolImageStatus) {
			promoted(st)
			st.MarkReverted("the release's image")
		}))},
		WantEvents: []string{eventf(corev1.EventTypeNormal, "Reverted", "removed MachineConfig zz-ocl-0-worker-os-image: MachineConfigPool worker now runs the release's image")},
	}, {
		// No finalizer: the deletion is observed (ObserveDeletion) from what stays behind.
		Name:        "a deleted PoolImage's MachineConfig is removed: the pool returns to the release's image",
		Key:         key(),
		Objects:     objects(mcA),
		WantDeletes: []clientgotesting.DeleteActionImpl{{ActionImpl: clientgotesting.ActionImpl{Verb: "delete", Resource: mcfgv1.GroupVersion.WithResource("machineconfigs")}, Name: mcA.Name}},
		WantEvents: []string{
			eventf(corev1.EventTypeNormal, "Reverted", "removed MachineConfig zz-ocl-0-worker-os-image: PoolImage ocl/worker is deleted, its pool goes back to the image of its other MachineConfigs"),
		},
	}, {
		Name:    "a PoolImage deleted by an uninstall keeps its MachineConfig: an uninstall reboots nothing",
		Key:     key(),
		Ctx:     context.WithValue(context.Background(), uninstallingKey{}, true),
		Objects: objects(mcA),
	}, {
		Name:    "a PoolImage whose deletion no running controller saw keeps its MachineConfig (it may come back from Git)",
		Key:     key(),
		Ctx:     context.WithValue(context.Background(), unseenKey{}, true),
		Objects: objects(mcA),
	}, {
		// The release's RBAC deleted under an uninstall: only the holds can be ended; the
		// MachineConfig stays (an uninstall reboots nothing).
		Name:                    "a deleted PoolImage that cannot be read during an uninstall: holds ended, MachineConfig kept",
		Key:                     key(),
		SkipNamespaceValidation: true, // the pool is cluster-scoped
		Ctx:                     context.WithValue(context.Background(), uninstallingKey{}, true),
		Objects:                 []runtime.Object{heldPool(baseV1, "rendered-1"), controllerConfig(baseV1, extV1), mcA},
		WithReactors: []clientgotesting.ReactionFunc{func(a clientgotesting.Action) (bool, runtime.Object, error) {
			if a.GetVerb() == "get" && a.GetResource().Resource == "poolimages" {
				return true, nil, apierrors.NewForbidden(v1alpha1.Resource("poolimages"), piName, errors.New("RBAC: clusterrole not found"))
			}
			return false, nil, nil
		}},
		WantPatches: func() []clientgotesting.PatchActionImpl {
			p := poolPatch(false, "")
			p.PatchOptions.FieldManager = layering.HoldFieldManager
			return []clientgotesting.PatchActionImpl{p}
		}(),
		WantEvents: []string{eventf(corev1.EventTypeNormal, "PoolReleased", "unpaused MachineConfigPool worker: its PoolImage is reverted or deleted")},
	}, {
		// Outside an uninstall a refusal is an error: nothing is released on a guess.
		Name:    "a deleted PoolImage that cannot be read otherwise: retried, nothing done",
		Key:     key(),
		Objects: []runtime.Object{heldPool(baseV1, "rendered-1"), controllerConfig(baseV1, extV1), mcA},
		WithReactors: []clientgotesting.ReactionFunc{func(a clientgotesting.Action) (bool, runtime.Object, error) {
			if a.GetVerb() == "get" && a.GetResource().Resource == "poolimages" {
				return true, nil, apierrors.NewForbidden(v1alpha1.Resource("poolimages"), piName, errors.New("RBAC: clusterrole not found"))
			}
			return false, nil, nil
		}},
		WantErr: true,
	}, {
		Name: "retention: finished runs beyond keep are deleted, the promoted one's is kept",
		Key:  key(),
		Objects: objects(status(poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Retention = &v1alpha1.Retention{Keep: ptr(int32(2))} }), promoted), mcA, tagRun(t, pi, in, image),
			succeededRun(t, pi, in, now.Add(-2*time.Hour), digestA),
			run(t, pi2, in, "old-1", now.Add(-50*time.Minute), corev1.ConditionFalse),
			run(t, pi2, in, "old-2", now.Add(-40*time.Minute), corev1.ConditionFalse),
			run(t, pi2, in, "new-1", now.Add(-30*time.Minute), corev1.ConditionFalse),
			run(t, pi2, in, "new-2", now.Add(-20*time.Minute), corev1.ConditionFalse)),
		WantDeletes: []clientgotesting.DeleteActionImpl{deleteRun("old-2"), deleteRun("old-1")},
	}, {
		Name: "retention from the controller's retention-keep when the spec sets none",
		Key:  key(),
		Objects: objects(status(poolImage(func(p *v1alpha1.PoolImage) { p.Spec.Retention = nil }), promoted), mcA, tagRun(t, pi, in, image),
			succeededRun(t, pi, in, now.Add(-2*time.Hour), digestA),
			run(t, pi2, in, "old-1", now.Add(-50*time.Minute), corev1.ConditionFalse),
			run(t, pi2, in, "new-1", now.Add(-30*time.Minute), corev1.ConditionFalse)),
		OtherTestData: settings(rowSettings{Config: func() *config.Config { c := *testCfg; c.RetentionKeep = 1; return &c }()}),
		WantDeletes:   []clientgotesting.DeleteActionImpl{deleteRun("old-1")},
	}}
	table.Test(t, factory)
}

func ptr[T any](v T) *T { return &v }

func taskRunNamed(tr *tektonv1.TaskRun, name string) *tektonv1.TaskRun {
	out := tr.DeepCopy()
	out.Name = name
	return out
}

// failedRunFor is the run of pi's inputs (its rendered spec) in tmpl's failed state.
func failedRunFor(t *testing.T, pi *v1alpha1.PoolImage, in generator.Inputs, tmpl *tektonv1.PipelineRun) *tektonv1.PipelineRun {
	pr := tmpl.DeepCopy()
	h := hashOf(t, pi, in)
	fresh := wantRun(t, pi, in, generator.TriggerSpec, "")
	pr.Name, pr.UID, pr.Labels, pr.Annotations, pr.Spec = fresh.Name, types.UID("uid-"+fresh.Name), fresh.Labels, fresh.Annotations, fresh.Spec
	pr.Labels[layering.InputsHashLabel] = h
	for i := range pr.Status.ChildReferences {
		pr.Status.ChildReferences[i].Name = pr.Name + "-" + pr.Status.ChildReferences[i].PipelineTaskName
	}
	return pr
}

func failureFor(f *v1alpha1.BuildFailure, run string) *v1alpha1.BuildFailure {
	out := f.DeepCopy()
	out.LogsCommand = fmt.Sprintf("tkn pipelinerun logs %s -n %s --task build", run, ns)
	out.DashboardURL = fmt.Sprintf("%s/#/namespaces/%s/pipelineruns/%s?pipelineTask=build&step=build", dashboard, ns, run)
	return out
}

// retried marks a run as the retry of hash for retryToken.
func retried(pr *tektonv1.PipelineRun, hash string) *tektonv1.PipelineRun {
	pr.Name = generator.RetryRunName(poolName, hash, retryToken)
	pr.UID = types.UID("uid-" + pr.Name)
	pr.Annotations[layering.RetryAnnotation] = retryToken
	return pr
}

func wantEnqueued(d time.Duration) func(*testing.T, *TableRow) {
	return func(t *testing.T, row *TableRow) {
		got := *results(row).Enqueued
		if len(got) != 1 || got[0] != d {
			t.Errorf("EnqueueAfter calls = %v, want [%v]", got, d)
		}
	}
}

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

	defaults := poolImage()
	defIn := inputs(baseV1, extV1)
	defIn.DefaultPullSecret = "global-pull-secret"

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
		WantCreates:       []runtime.Object{wantPipeline(t, ent, entIn), wantRun(t, ent, entIn, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{firstBuildUpdate(t, ent, entIn)},
		WantEvents:        []string{firstBuildEvent(t, ent, entIn)},
	}, {
		Name:              "the default pull secret of the controller's config is used when it exists",
		Key:               key(),
		Objects:           objects(defaults, secret("global-pull-secret", corev1.SecretTypeDockerConfigJson)),
		WantCreates:       []runtime.Object{wantPipeline(t, defaults, defIn), wantRun(t, defaults, defIn, generator.TriggerSpec, "")},
		WantStatusUpdates: []clientgotesting.UpdateActionImpl{firstBuildUpdate(t, defaults, defIn)},
		WantEvents:        []string{firstBuildEvent(t, defaults, defIn)},
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
		WantCreates: []runtime.Object{wantPipeline(t, pi, in), wantRun(t, pi, in, generator.TriggerSpec, "")},
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
		WantCreates: []runtime.Object{wantPipeline(t, pi, in), wantRun(t, pi, in, generator.TriggerSpec, "")},
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
	if len(got.Creates) != 2 || len(got.Updates) != 1 {
		t.Fatalf("first reconcile: %d creates, %d status updates; want 2 (the Pipeline, the run) and 1", len(got.Creates), len(got.Updates))
	}
	pipeline := got.Creates[0].GetObject().(*tektonv1.Pipeline)
	created := got.Creates[1].GetObject().(*tektonv1.PipelineRun)
	updated := got.Updates[0].GetObject().(*v1alpha1.PoolImage)
	// The run as the cache holds it before Tekton resolves its Pipeline: asking for it by name.
	second := TableRow{Name: "second reconcile of unchanged inputs", Key: key(), Objects: objects(updated, created, pipeline)}
	TableTest{second}.Test(t, factory)
}
