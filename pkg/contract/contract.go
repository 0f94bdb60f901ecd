package contract

import "strings"

// Names of the pipeline's tasks, as the dashboard and `tkn pipelinerun logs --task` show them.
// The Go stages among them are also the subcommands of StepCommand.
const (
	TaskFetchBaseDigest = "fetch-base-digest"
	TaskBuild           = "build"
	TaskVerify          = "verify"
	TaskPromote         = "promote"
	TaskReport          = "report"
	// TaskReportNoBuild is the report of a run whose build task did not end on its own (it was
	// skipped because fetch-base-digest failed, its pod never ran its steps, it timed out or was
	// cancelled): report needs the build task's LAST_STEP result, and Tekton skips a finally
	// task whose result references are missing.
	TaskReportNoBuild = "report-no-build"
)

// Names of the steps of the build task: scripts in the buildah image, and check-push, a Go stage
// of the tools image.
const (
	StepInject    = "inject"
	StepCheckPush = "check-push"
	StepBuild     = "build"
	StepPush      = "push"
)

// StepCommand is the binary of the tools image that runs the Go stages: `ocl-step <task>`.
const StepCommand = "ocl-step"

// Parameters of the pipeline and its tasks. A step receives each parameter it uses as an
// environment variable of the same name, never substituted into a script.
const (
	ParamPool            = "POOL"
	ParamInputsHash      = "INPUTS_HASH"
	ParamBaseImage       = "BASE_IMAGE"
	ParamPinnedBaseImage = "PINNED_BASE_IMAGE"
	ParamExtensionsImage = "EXTENSIONS_IMAGE"
	ParamTargetArch      = "TARGET_ARCH"
	ParamContainerfile   = "CONTAINERFILE_BASE64"
	ParamImage           = "IMAGE"
	ParamCurrentTag      = "CURRENT_TAG"
	ParamImageURL        = "IMAGE_URL"
	ParamImageDigest     = "IMAGE_DIGEST"
	ParamHTTPProxy       = "HTTP_PROXY"
	ParamHTTPSProxy      = "HTTPS_PROXY"
	ParamNoProxy         = "NO_PROXY"
	ParamBuildahImage    = "BUILDAH_IMAGE"
	ParamToolsImage      = "TOOLS_IMAGE"
	ParamStorageDriver   = "STORAGE_DRIVER"
	ParamImageFormat     = "IMAGE_FORMAT"
	ParamTLSVerify       = "TLS_VERIFY"
	ParamPushRetries     = "PUSH_RETRIES"
	ParamCacheRepo       = "CACHE_REPO"
	ParamTrustedCAKey    = "TRUSTED_CA_KEY"
	ParamPipelineRun     = "PIPELINE_RUN"
	ParamNamespace       = "NAMESPACE"
	ParamAggregateStatus = "AGGREGATE_STATUS"
	ParamFetchStatus     = "FETCH_STATUS"
	ParamBuildStatus     = "BUILD_STATUS"
	ParamVerifyStatus    = "VERIFY_STATUS"
	ParamPromoteStatus   = "PROMOTE_STATUS"
	ParamBuildStep       = "BUILD_STEP"
	ParamBuildReason     = "BUILD_REASON"
)

// SecretsDir is where the build task's steps mount its memory volume (credentials,
// entitlements and the trust bundle inject stages); the scripts default OCL_SECRETS_DIR to it.
const SecretsDir = "/var/run/ocl-secrets"

// Environment variables of the build task's steps that are not parameters.
const (
	// EnvRunID is the TaskRun's uid; the push step tags each push IMAGE-<first 12 characters>.
	EnvRunID = "RUN_ID"
	// EnvBuildahIsolation is buildah's isolation mode (chroot: no user namespaces needed).
	EnvBuildahIsolation = "BUILDAH_ISOLATION"
)

const (
	envResultPrefix         = "RESULT_"
	envWorkspaceBoundSuffix = "_BOUND"
	envWorkspacePathSuffix  = "_PATH"
)

// Results of the tasks. IMAGE_URL and IMAGE_DIGEST are the type hints Tekton Chains signs.
const (
	ResultImageURL        = "IMAGE_URL"
	ResultImageDigest     = "IMAGE_DIGEST"
	ResultBaseImageDigest = "BASE_IMAGE_DIGEST"
	ResultBaseImage       = "BASE_IMAGE"
	ResultPromotedImage   = "PROMOTED_IMAGE"
	// ResultFailure is the build task's one-line explanation of a push that cannot happen or did
	// not (credentials refused, registry unreachable, certificate not trusted), which the
	// controller shows in the PoolImage's status.
	ResultFailure = "FAILURE"
	// ResultLastStep is the build task's step that started last, which each of its steps
	// writes first: on a failed build task, the step that failed. The report names it.
	ResultLastStep = "LAST_STEP"
)

// Workspaces of the pipeline; each is optional and bound to a Secret or ConfigMap.
const (
	WorkspaceBasePullSecret = "base-pull-secret"
	WorkspacePushSecret     = "push-secret"
	WorkspaceEntitlement    = "entitlement"
	WorkspaceActivationKey  = "activation-key"
	WorkspaceYumRepos       = "yum-repos"
	WorkspaceRPMGPG         = "rpm-gpg"
	WorkspaceTrustedCA      = "trusted-ca"
	WorkspaceProxy          = "proxy"
)

// Workspaces returns every workspace of the pipeline, in the order tasks declare them.
func Workspaces() []string {
	return []string{WorkspaceBasePullSecret, WorkspacePushSecret, WorkspaceEntitlement, WorkspaceActivationKey,
		WorkspaceYumRepos, WorkspaceRPMGPG, WorkspaceTrustedCA, WorkspaceProxy}
}

// ResultEnv is the environment variable that carries the path of a result's file: RESULT_<result>.
func ResultEnv(result string) string { return envResultPrefix + result }

// WorkspaceBoundEnv is the environment variable that says whether a workspace is bound ("true"):
// the workspace name in upper case with '_' for '-', then _BOUND (push-secret → PUSH_SECRET_BOUND).
func WorkspaceBoundEnv(workspace string) string {
	return workspaceEnvPrefix(workspace) + envWorkspaceBoundSuffix
}

// WorkspacePathEnv is the environment variable that carries a workspace's mount path
// (push-secret → PUSH_SECRET_PATH).
func WorkspacePathEnv(workspace string) string {
	return workspaceEnvPrefix(workspace) + envWorkspacePathSuffix
}

func workspaceEnvPrefix(workspace string) string {
	return strings.ToUpper(strings.ReplaceAll(workspace, "-", "_"))
}

// GoStage is what one Go stage of the tools image reads and writes. The generator passes a
// stage exactly these variables; the stage reads no others.
type GoStage struct {
	// Name is the subcommand of StepCommand: the task's name, or for a step of the build task
	// (StepCheckPush) the step's.
	Name string
	// Params are the task parameters the stage reads, as environment variables of the same name.
	Params []string
	// Workspaces are the Secret workspaces whose credentials the stage uses, first match first;
	// it reads WorkspaceBoundEnv and WorkspacePathEnv of each.
	Workspaces []string
	// Mounts are the other workspaces the stage reads files from (proxy values, a CA bundle);
	// it reads WorkspaceBoundEnv and WorkspacePathEnv of each.
	Mounts []string
	// Results are the results the stage writes, to the files ResultEnv names.
	Results []string
}

// Env returns every environment variable the stage may read, in the order the generator sets them.
func (s GoStage) Env() []string {
	var out []string
	out = append(out, s.Params...)
	for _, ws := range append(append([]string{}, s.Workspaces...), s.Mounts...) {
		out = append(out, WorkspaceBoundEnv(ws), WorkspacePathEnv(ws))
	}
	for _, r := range s.Results {
		out = append(out, ResultEnv(r))
	}
	return out
}

// FetchBaseDigest resolves BASE_IMAGE for TARGET_ARCH and pins it by digest.
func FetchBaseDigest() GoStage {
	return GoStage{
		Name:       TaskFetchBaseDigest,
		Params:     []string{ParamBaseImage, ParamTargetArch, ParamTLSVerify},
		Workspaces: []string{WorkspaceBasePullSecret},
		Results:    []string{ResultBaseImage, ResultBaseImageDigest},
	}
}

// CheckPush asks the registry, before the build, whether the push secret may push to IMAGE's
// repository, reaching it as the push will (proxy, trusted CA). It is a step of the build task.
func CheckPush() GoStage {
	return GoStage{
		Name:       StepCheckPush,
		Params:     []string{ParamImage, ParamTLSVerify, ParamPushRetries, ParamHTTPProxy, ParamHTTPSProxy, ParamNoProxy, ParamTrustedCAKey},
		Workspaces: []string{WorkspacePushSecret},
		Mounts:     []string{WorkspaceProxy, WorkspaceTrustedCA},
		Results:    []string{ResultFailure, ResultLastStep},
	}
}

// Verify checks the pushed image against its base.
func Verify() GoStage {
	return GoStage{
		Name:       TaskVerify,
		Params:     []string{ParamImageURL, ParamImageDigest, ParamPinnedBaseImage, ParamTargetArch, ParamTLSVerify},
		Workspaces: []string{WorkspacePushSecret, WorkspaceBasePullSecret},
	}
}

// Promote moves CURRENT_TAG to the verified digest.
func Promote() GoStage {
	return GoStage{
		Name:       TaskPromote,
		Params:     []string{ParamImageURL, ParamImageDigest, ParamCurrentTag, ParamTLSVerify},
		Workspaces: []string{WorkspacePushSecret},
		Results:    []string{ResultPromotedImage},
	}
}

// Report summarises the run (a finally task): the verdict first, then the failed task, its
// step (BUILD_STEP for the build task) and the command that prints its logs.
func Report() GoStage {
	params := []string{ParamPool, ParamPipelineRun, ParamNamespace, ParamAggregateStatus, ParamBuildStep, ParamBuildReason}
	for _, s := range ReportedTasks() {
		params = append(params, s.Param)
	}
	return GoStage{Name: TaskReport, Params: params}
}

// GoStages returns every Go stage, in pipeline order.
func GoStages() []GoStage {
	return []GoStage{FetchBaseDigest(), CheckPush(), Verify(), Promote(), Report()}
}

// TaskStatus pairs a task with the report parameter that carries its status ($(tasks.<task>.status)).
type TaskStatus struct {
	// Task is the pipeline task's name.
	Task string
	// Param is the report parameter that carries the task's status.
	Param string
}

// TaskSteps returns the steps of each task of the pipeline but report, in order.
func TaskSteps() map[string][]string {
	return map[string][]string{
		TaskFetchBaseDigest: {TaskFetchBaseDigest},
		TaskBuild:           {StepInject, StepCheckPush, StepBuild, StepPush},
		TaskVerify:          {TaskVerify},
		TaskPromote:         {TaskPromote},
	}
}

// BuildEndedOnItsOwn are the build task's reasons ($(tasks.build.reason)) of a TaskRun whose
// steps ran to the end or to a failure, so its LAST_STEP result is there and names the step
// that failed: Succeeded, StepFailed (Tekton 1.x: a step exited non-zero) and Failed (its
// generic reason, and older Tekton's for a failed step). report runs for them, report-no-build
// for every other reason: none (skipped), a pod that never ran its steps, a timeout, a cancel, a
// step killed for memory (StepOOM: the killed step cannot write its name, an earlier one's would
// be there).
func BuildEndedOnItsOwn() []string { return []string{"Succeeded", "StepFailed", "Failed"} }

// ReportedTasks returns the tasks whose status the report stage prints, in pipeline order.
func ReportedTasks() []TaskStatus {
	return []TaskStatus{
		{TaskFetchBaseDigest, ParamFetchStatus},
		{TaskBuild, ParamBuildStatus},
		{TaskVerify, ParamVerifyStatus},
		{TaskPromote, ParamPromoteStatus},
	}
}
