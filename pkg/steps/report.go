package steps

import (
	"context"
	"fmt"
	"strings"
)

// stageStatuses pairs each pipeline task with the variable carrying its status.
var stageStatuses = []struct{ task, env string }{
	{"fetch-base-digest", "FETCH_STATUS"},
	{"build", "BUILD_STATUS"},
	{"verify", "VERIFY_STATUS"},
	{"promote", "PROMOTE_STATUS"},
}

// Report prints the status of every stage and one final line: success, or which stage failed
// and the command that prints its logs. It never fails the run itself.
func Report(_ context.Context, e Env) error {
	run, ns, pool := e.Getenv("PIPELINE_RUN"), e.Getenv("NAMESPACE"), e.Getenv("POOL")
	var failed []string
	for _, s := range stageStatuses {
		st := e.Getenv(s.env)
		e.logf("report: %-18s %s", s.task, st)
		if st == "Failed" {
			failed = append(failed, s.task)
		}
	}
	logs := fmt.Sprintf("tkn pipelinerun logs %s -n %s", run, ns)
	switch {
	case len(failed) > 0:
		e.logf("report: FAILED: the OS image of MachineConfigPool %s was not built: %s failed; the pool keeps its current image. Logs: %s --task %s",
			pool, strings.Join(failed, ", "), logs, failed[0])
	case e.Getenv("AGGREGATE_STATUS") == "Succeeded" || e.Getenv("AGGREGATE_STATUS") == "Completed":
		e.logf("report: the OS image of MachineConfigPool %s is built, verified and tagged; the controller promotes it to the pool", pool)
	default:
		e.logf("report: the run ended with status %s (cancelled or timed out?); the pool keeps its current image. Logs: %s",
			e.Getenv("AGGREGATE_STATUS"), logs)
	}
	return nil
}
