package poolimage

import (
	"fmt"
	"net/url"
	"strings"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"knative.dev/pkg/apis"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// maxMessageLines and maxMessageBytes bound the failure message kept in status.
const (
	maxMessageLines = 5
	maxMessageBytes = 1024
)

// failureOf describes why a finished, unsuccessful run failed: the first failed task (from the
// run's child TaskRuns, read from the lister), its failed step, Tekton's reason, the tail of the
// message (the task's FAILURE result when a step explained itself, with the push secret for a
// failed push), the command that prints the failed task's logs and, when a dashboard is
// configured, a link to the failed step.
func (r *Reconciler) failureOf(pr *tektonv1.PipelineRun, pi *v1alpha1.PoolImage, dashboardURL string) *v1alpha1.BuildFailure {
	f := &v1alpha1.BuildFailure{}
	if c := pr.Status.GetCondition(apis.ConditionSucceeded); c != nil {
		f.Reason, f.Message = c.Reason, tail(c.Message)
	}
	for _, ref := range pr.Status.ChildReferences {
		if ref.Kind != "TaskRun" {
			continue
		}
		tr, err := r.TaskRunLister.TaskRuns(pr.Namespace).Get(ref.Name)
		if err != nil {
			continue
		}
		c := tr.Status.GetCondition(apis.ConditionSucceeded)
		if c == nil || !c.IsFalse() {
			continue
		}
		f.Task, f.Reason, f.Message = ref.PipelineTaskName, c.Reason, tail(c.Message)
		for _, st := range tr.Status.Steps {
			if st.Terminated != nil && st.Terminated.ExitCode != 0 {
				f.Step = st.Name
				break
			}
		}
		for _, res := range tr.Status.Results {
			if res.Name == contract.ResultFailure && strings.TrimSpace(res.Value.StringVal) != "" {
				f.Message = tail(res.Value.StringVal)
				if f.Task == contract.TaskBuild && (f.Step == contract.StepCheckPush || f.Step == contract.StepPush) {
					f.Message += "; " + pushSecretOf(pi)
				}
			}
		}
		break
	}
	f.LogsCommand = fmt.Sprintf("tkn pipelinerun logs %s -n %s", pr.Name, pr.Namespace)
	if f.Task != "" {
		f.LogsCommand += " --task " + f.Task
	}
	if dashboardURL != "" {
		u := fmt.Sprintf("%s/#/namespaces/%s/pipelineruns/%s", dashboardURL, url.PathEscape(pr.Namespace), url.PathEscape(pr.Name))
		if f.Task != "" {
			q := url.Values{"pipelineTask": {f.Task}}
			if f.Step != "" {
				q.Set("step", f.Step)
			}
			u += "?" + q.Encode()
		}
		f.DashboardURL = u
	}
	return f
}

// tail keeps the last lines of a message, within maxMessageBytes.
func tail(msg string) string {
	lines := strings.Split(strings.TrimRight(msg, "\n"), "\n")
	if len(lines) > maxMessageLines {
		lines = lines[len(lines)-maxMessageLines:]
	}
	out := strings.Join(lines, "\n")
	if len(out) > maxMessageBytes {
		out = "…" + out[len(out)-maxMessageBytes:]
	}
	return out
}

// pushSecretOf names the credentials a push used, with the field that sets them.
func pushSecretOf(pi *v1alpha1.PoolImage) string {
	if pi.Spec.PushSecret == nil {
		return "no push secret is set (spec.pushSecret)"
	}
	return fmt.Sprintf("push secret: Secret %s/%s (spec.pushSecret)", pi.Namespace, pi.Spec.PushSecret.Name)
}
