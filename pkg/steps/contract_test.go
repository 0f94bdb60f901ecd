package steps

import (
	"context"
	"io"
	"path/filepath"
	"sort"
	"testing"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// TestStagesReadOnlyTheirContract: every Go stage of the contract has an implementation and
// each reads no environment variable the generator does not set for it, so a renamed or
// forgotten variable fails here and not in a pipeline on a cluster.
func TestStagesReadOnlyTheirContract(t *testing.T) {
	impl := Stages()
	var declared []string
	for _, stage := range contract.GoStages() {
		declared = append(declared, stage.Name)
		if _, ok := impl[stage.Name]; !ok {
			t.Errorf("contract stage %s has no implementation in Stages()", stage.Name)
			continue
		}
		t.Run(stage.Name, func(t *testing.T) {
			values := map[string]string{}
			for _, p := range stage.Params {
				values[p] = "x"
			}
			// An unreachable registry: the stage reads its inputs and fails fast.
			for _, p := range []string{contract.ParamBaseImage, contract.ParamImageURL, contract.ParamPinnedBaseImage, contract.ParamImage} {
				if _, ok := values[p]; ok {
					values[p] = "127.0.0.1:1/os/base@sha256:" + zeros
				}
			}
			if _, ok := values[contract.ParamImageDigest]; ok {
				values[contract.ParamImageDigest] = "sha256:" + zeros
			}
			values[contract.ParamTargetArch], values[contract.ParamCurrentTag], values[contract.ParamPushRetries] = "amd64", "current", "0"
			// Bound mounts: the stage reads their paths and files too.
			for _, m := range stage.Mounts {
				values[contract.WorkspaceBoundEnv(m)], values[contract.WorkspacePathEnv(m)] = "true", t.TempDir()
			}
			for _, r := range stage.Results {
				values[contract.ResultEnv(r)] = filepath.Join(t.TempDir(), r)
			}
			allowed := map[string]bool{}
			for _, n := range stage.Env() {
				allowed[n] = true
			}
			read := map[string]bool{}
			e := Env{Stdout: io.Discard, Getenv: func(n string) string { read[n] = true; return values[n] }}
			_ = Run(context.Background(), stage.Name, e)
			if len(read) == 0 {
				t.Fatal("the stage read no variable at all")
			}
			for n := range read {
				if !allowed[n] {
					t.Errorf("stage %s reads %s, which the contract does not give it (contract: %v)", stage.Name, n, stage.Env())
				}
			}
		})
	}
	var implemented []string
	for n := range impl {
		implemented = append(implemented, n)
	}
	sort.Strings(implemented)
	sort.Strings(declared)
	if len(implemented) != len(declared) {
		t.Errorf("Stages() = %v, contract.GoStages() = %v", implemented, declared)
	}
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
