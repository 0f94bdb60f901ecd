package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// Report prints the run's verdict on its first line, then, when a stage failed, the failed
// task, its step and the command that prints its logs, each on a line of its own, then every
// stage's status ("Skipped" for a task that did not run: Tekton's "None"). It never fails the
// run itself. Lines are short: the dashboard's log view cuts long ones off.
func Report(_ context.Context, e Env) error {
	run, ns, pool := e.Getenv(contract.ParamPipelineRun), e.Getenv(contract.ParamNamespace), e.Getenv(contract.ParamPool)
	failed := ""
	for _, s := range contract.ReportedTasks() {
		if e.Getenv(s.Param) == "Failed" && failed == "" {
			failed = s.Task
		}
	}
	// The command on a line of its own, so that it copies as it is.
	logs := fmt.Sprintf("tkn pipelinerun logs %s -n %s", run, ns)
	built := true
	for _, task := range []string{contract.TaskFetchBaseDigest, contract.TaskBuild, contract.TaskVerify} {
		built = built && e.Getenv(statusParam(task)) == "Succeeded"
	}
	switch {
	case failed != "":
		e.logf("FAILED: the OS image was not built; the pool keeps its current image")
		e.logf("  pool: %s", pool)
		e.logf("  task: %s", failed)
		e.logf("  step: %s", failedStep(failed, e.Getenv(contract.ParamBuildStep), e.Getenv(contract.ParamBuildReason)))
		e.logf("  logs:")
		e.logf("%s --task %s", logs, failed)
	case built:
		e.logf("SUCCEEDED: the OS image is built and verified; the controller promotes it")
		e.logf("  pool: %s", pool)
	default:
		// No stage failed, but not every one ran: the run was stopped (a timeout, a cancel).
		e.logf("NOT BUILT: the run ended %s before every stage ran; the pool keeps its image", e.Getenv(contract.ParamAggregateStatus))
		e.logf("  pool: %s", pool)
		e.logf("  logs:")
		e.logf("%s", logs)
	}
	e.logf("stages:")
	for _, s := range contract.ReportedTasks() {
		st := e.Getenv(s.Param)
		if st == "None" || st == "" {
			st = "Skipped"
		}
		e.logf("  %-18s %s", s.Task, st)
	}
	return nil
}

// statusParam is the report parameter that carries task's status.
func statusParam(task string) string {
	for _, s := range contract.ReportedTasks() {
		if s.Task == task {
			return s.Param
		}
	}
	return ""
}

// failedStep names the step of task that failed: its only step, or for the build task the step
// that started last (BUILD_STEP, the build task's LAST_STEP result); without it, the build's
// steps never reported (its pod did not run them, or it was stopped): Tekton's reason says why.
func failedStep(task, buildStep, buildReason string) string {
	steps := contract.TaskSteps()[task]
	switch {
	case len(steps) == 1:
		return steps[0]
	case buildStep != "":
		return buildStep
	}
	return fmt.Sprintf("not known (%s before a step reported): one of %s", buildReason, strings.Join(steps, ", "))
}
