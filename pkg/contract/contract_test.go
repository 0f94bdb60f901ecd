package contract_test

import (
	"fmt"
	"testing"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

func ExampleGoStage_Env() {
	fmt.Println(contract.Promote().Env())
	// Output: [IMAGE_URL IMAGE_DIGEST CURRENT_TAG TLS_VERIFY PUSH_SECRET_BOUND PUSH_SECRET_PATH RESULT_PROMOTED_IMAGE]
}

// TestStageEnvIsUnambiguous: no stage is given one variable for two purposes (a parameter named
// like a workspace's or a result's variable would be overwritten by the other).
func TestStageEnvIsUnambiguous(t *testing.T) {
	for _, s := range contract.GoStages() {
		seen := map[string]bool{}
		for _, n := range s.Env() {
			if seen[n] {
				t.Errorf("stage %s: %s set twice", s.Name, n)
			}
			seen[n] = true
		}
	}
	// The scripts spell these names (inject.sh, push.sh): Tekton workspace names map to them.
	if got := contract.WorkspaceBoundEnv(contract.WorkspaceBasePullSecret); got != "BASE_PULL_SECRET_BOUND" {
		t.Errorf("WorkspaceBoundEnv(base-pull-secret) = %q", got)
	}
	if got := contract.WorkspacePathEnv(contract.WorkspaceRPMGPG); got != "RPM_GPG_PATH" {
		t.Errorf("WorkspacePathEnv(rpm-gpg) = %q", got)
	}
}
