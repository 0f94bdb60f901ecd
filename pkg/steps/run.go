package steps

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// Stage is one Go stage of the pipeline.
type Stage func(ctx context.Context, e Env) error

// Stages maps each stage name (the ocl-step subcommand) to its implementation.
func Stages() map[string]Stage {
	return map[string]Stage{
		contract.TaskFetchBaseDigest: FetchBaseDigest,
		contract.StepCheckPush:       CheckPush,
		contract.TaskVerify:          VerifyStage,
		contract.TaskPromote:         Promote,
		contract.TaskReport:          Report,
	}
}

// Run runs the named stage. Failures the stage explained in its log return an error whose
// message is the stage's final line; others are returned wrapped with the stage name.
func Run(ctx context.Context, stage string, e Env) error {
	s, ok := Stages()[stage]
	if !ok {
		names := make([]string, 0, len(Stages()))
		for n := range Stages() {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("unknown stage %q; stages: %v", stage, names)
	}
	if err := s(ctx, e); err != nil {
		if errors.Is(err, errStage) {
			return err
		}
		e.logf("%s: FAILED: %v", stage, err)
		return fmt.Errorf("%s: %w", stage, err)
	}
	return nil
}

// IsReported reports whether err was already explained in the stage's log.
func IsReported(err error) bool { return errors.Is(err, errStage) }
