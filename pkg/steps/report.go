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
	logs := fmt.Sprintf("tkn pipelinerun logs %s -n %s", run, ns)
	switch {
	case failed != "":
		e.logf("FAILED: the OS image was not built; the pool keeps its current image")
		e.logf("  pool: %s", pool)
		e.logf("  task: %s", failed)
		e.logf("  step: %s", failedStep(failed, e.Getenv(contract.ParamBuildStep)))
		e.logf("  logs: %s --task %s", logs, failed)
	case e.Getenv(contract.ParamAggregateStatus) == "Succeeded" || e.Getenv(contract.ParamAggregateStatus) == "Completed":
		e.logf("SUCCEEDED: the OS image is built and verified; the controller promotes it")
		e.logf("  pool: %s", pool)
	default:
		e.logf("NOT BUILT: the run ended %s (cancelled or timed out); the pool keeps its image", e.Getenv(contract.ParamAggregateStatus))
		e.logf("  pool: %s", pool)
		e.logf("  logs: %s", logs)
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

// failedStep names the step of task that failed: its only step, or for the build task the step
// that started last (BUILD_STEP, the build task's LAST_STEP result).
func failedStep(task, buildStep string) string {
	steps := contract.TaskSteps()[task]
	switch {
	case len(steps) == 1:
		return steps[0]
	case buildStep != "":
		return buildStep
	}
	return "one of " + strings.Join(steps, ", ") + " (the last one with a log)"
}
