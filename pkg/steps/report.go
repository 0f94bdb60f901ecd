package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// Report prints the status of every stage and one final line: success, or which stage failed
// and the command that prints its logs. It never fails the run itself.
func Report(_ context.Context, e Env) error {
	run, ns, pool := e.Getenv(contract.ParamPipelineRun), e.Getenv(contract.ParamNamespace), e.Getenv(contract.ParamPool)
	var failed []string
	for _, s := range contract.ReportedTasks() {
		st := e.Getenv(s.Param)
		e.logf("report: %-18s %s", s.Task, st)
		if st == "Failed" {
			failed = append(failed, s.Task)
		}
	}
	logs := fmt.Sprintf("tkn pipelinerun logs %s -n %s", run, ns)
	switch {
	case len(failed) > 0:
		e.logf("report: FAILED: the OS image of MachineConfigPool %s was not built: %s failed; the pool keeps its current image. Logs: %s --task %s",
			pool, strings.Join(failed, ", "), logs, failed[0])
	case e.Getenv(contract.ParamAggregateStatus) == "Succeeded" || e.Getenv(contract.ParamAggregateStatus) == "Completed":
		e.logf("report: the OS image of MachineConfigPool %s is built, verified and tagged; the controller promotes it to the pool", pool)
	default:
		e.logf("report: the run ended with status %s (cancelled or timed out?); the pool keeps its current image. Logs: %s",
			e.Getenv(contract.ParamAggregateStatus), logs)
	}
	return nil
}
