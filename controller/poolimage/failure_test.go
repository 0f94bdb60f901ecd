package poolimage

import (
	"strings"
	"testing"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonlisters "github.com/tektoncd/pipeline/pkg/client/listers/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/apis"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// TestFailedPushNamesRegistryAndSecret: a check-push or push step that explained its failure
// in the FAILURE result puts that line in the status, with the push secret (or its absence) and
// the field.
func TestFailedPushNamesRegistryAndSecret(t *testing.T) {
	for _, tc := range []struct{ step, why string }{
		{contract.StepCheckPush, "registry 10.0.0.1:5001 refused the push secret's credentials for 10.0.0.1:5001/os/worker (not retried): give the push secret write access to that repository"},
		{contract.StepPush, "buildah's push failed after the registry took the push secret; its error is above (pushing 10.0.0.1:5001/os/worker:h-0123456789ab to registry 10.0.0.1:5001)"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			pr := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "ocl-worker-1", Namespace: ns}}
			pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: "Failed", Message: "Tasks Completed: 1 (Failed: 1)"})
			pr.Status.ChildReferences = []tektonv1.ChildStatusReference{{TypeMeta: runtime.TypeMeta{Kind: "TaskRun"}, Name: "ocl-worker-1-build", PipelineTaskName: "build"}}
			tr := &tektonv1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "ocl-worker-1-build", Namespace: ns}}
			// Tekton lists the steps in order; those after the failed one are skipped with exit code 1.
			code := int32(0)
			for _, s := range []string{contract.StepInject, contract.StepCheckPush, contract.StepBuild, contract.StepPush} {
				if s == tc.step {
					code = 1
				}
				tr.Status.Steps = append(tr.Status.Steps, tektonv1.StepState{Name: s, ContainerState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}})
			}
			tr.Status.Results = []tektonv1.TaskRunResult{{Name: contract.ResultFailure, Type: tektonv1.ResultsTypeString, Value: *tektonv1.NewStructuredValues(tc.why)}}
			tr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: "Failed", Message: `"step-` + tc.step + `" exited with code 1`})
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
			want := tc.why + "; push secret: Secret " + ns + "/push (spec.pushSecret)"
			if f.Task != "build" || f.Step != tc.step || f.Message != want {
				t.Errorf("failure = %+v\nwant task build, step %s, message %q", f, tc.step, want)
			}
			f = r.failureOf(pr, poolImage(func(p *v1alpha1.PoolImage) { p.Spec.PushSecret = nil }), "")
			if want := tc.why + "; no push secret is set (spec.pushSecret)"; f.Message != want {
				t.Errorf("without a push secret: message %q, want %q", f.Message, want)
			}
		})
	}
}

// TestTail: a long failure message keeps its end (the verdict) within maxMessageBytes.
func TestTail(t *testing.T) {
	if got := tail(strings.Repeat("x", 3000)); len(got) > maxMessageBytes+len("…") || !strings.HasPrefix(got, "…") {
		t.Errorf("tail of a long line = %d bytes", len(got))
	}
}
