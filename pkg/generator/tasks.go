package generator

import (
	_ "embed"
	"fmt"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	//go:embed scripts/inject.sh
	injectScript string
	//go:embed scripts/build.sh
	buildScript string
	//go:embed scripts/push.sh
	pushScript string
)

// Names of the pipeline's tasks, as shown by the dashboard and `tkn pipelinerun logs`.
const (
	TaskFetchBaseDigest = "fetch-base-digest"
	TaskBuild           = "build"
	TaskVerify          = "verify"
	TaskPromote         = "promote"
	TaskReport          = "report"
)

// Names of the steps of the build task.
const (
	StepInject = "inject"
	StepBuild  = "build"
	StepPush   = "push"
)

// Result names. IMAGE_URL and IMAGE_DIGEST are the type hints Tekton Chains signs.
const (
	ResultImageURL        = "IMAGE_URL"
	ResultImageDigest     = "IMAGE_DIGEST"
	ResultBaseImageDigest = "BASE_IMAGE_DIGEST"
	ResultBaseImage       = "BASE_IMAGE"
	ResultPromotedImage   = "PROMOTED_IMAGE"
	// ResultFailure is the build task's one-line explanation of a failed push (credentials
	// refused, registry unreachable), which the controller shows in the PoolImage's status.
	ResultFailure = "FAILURE"
)

// Workspace names of the pipeline; each is optional and bound to a Secret or ConfigMap.
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

// StepToolCommand is the binary of the tools image that runs the Go stages.
const StepToolCommand = "ocl-step"

// paramDoc describes every pipeline parameter once; tasks declare the subset they use.
var paramDoc = map[string]string{
	"POOL":                 "Name of the MachineConfigPool the image is for.",
	"INPUTS_HASH":          "Hash of the build's inputs; the image is pushed under this tag.",
	"BASE_IMAGE":           "Base OS image, repository@sha256:digest (a tag is resolved by fetch-base-digest).",
	"PINNED_BASE_IMAGE":    "Base OS image pinned by digest for TARGET_ARCH: the BASE_IMAGE result of fetch-base-digest.",
	"EXTENSIONS_IMAGE":     "CoreOS extensions image available to the build as stage `extensions`; empty for none.",
	"TARGET_ARCH":          "Architecture of the pool's nodes (amd64, arm64, ppc64le, s390x).",
	"CONTAINERFILE_BASE64": "The rendered Containerfile, base64 encoded so that no variable substitution can alter it.",
	"IMAGE":                "Image to push, repository:<inputs hash>; it is pushed as IMAGE-<12 characters of the TaskRun uid>, a tag of its own.",
	"CURRENT_TAG":          "Tag moved to the verified image; empty (the default) moves none: the controller moves the push spec's tag itself once it promotes the image.",
	"IMAGE_URL":            "Pushed image, repository:tag.",
	"IMAGE_DIGEST":         "Digest of the pushed image.",
	"HTTP_PROXY":           "HTTP proxy for buildah and RUN steps.",
	"HTTPS_PROXY":          "HTTPS proxy for buildah and RUN steps.",
	"NO_PROXY":             "Hosts that bypass the proxy.",
	"BUILDAH_IMAGE":        "Step image with buildah and bash (inject, build, push).",
	"TOOLS_IMAGE":          "Step image with ocl-step (fetch-base-digest, verify, promote, report).",
	"STORAGE_DRIVER":       "buildah storage driver: vfs or overlay.",
	"IMAGE_FORMAT":         "Manifest format of the image: oci or docker.",
	"TLS_VERIFY":           "Verify registries' TLS certificates: true or false.",
	"PUSH_RETRIES":         "How often buildah retries a failed push.",
	"CACHE_REPO":           "Registry repository for buildah's layer cache; empty for none.",
	"TRUSTED_CA_KEY":       "Key of the trust bundle in the trusted-ca ConfigMap.",
	"PIPELINE_RUN":         "Name of the PipelineRun being reported.",
	"NAMESPACE":            "Namespace of the PipelineRun being reported.",
	"AGGREGATE_STATUS":     "Aggregate status of the pipeline's tasks.",
	"FETCH_STATUS":         "Status of the fetch-base-digest task.",
	"BUILD_STATUS":         "Status of the build task.",
	"VERIFY_STATUS":        "Status of the verify task.",
	"PROMOTE_STATUS":       "Status of the promote task.",
}

var workspaceDoc = map[string]string{
	WorkspaceBasePullSecret: "kubernetes.io/dockerconfigjson Secret that pulls the base and extensions images.",
	WorkspacePushSecret:     "kubernetes.io/dockerconfigjson Secret that pushes to the image's repository.",
	WorkspaceEntitlement:    "Secret of RHEL entitlement certificates, mounted read-only at /etc/pki/entitlement in RUN steps.",
	WorkspaceActivationKey:  "Secret with an activation key (org, activationkey), mounted read-only at /run/secrets/rhsm-activation in RUN steps.",
	WorkspaceYumRepos:       "ConfigMap of *.repo files, mounted read-only at /etc/yum.repos.d in RUN steps.",
	WorkspaceRPMGPG:         "Secret of RPM GPG keys, mounted read-only at /etc/pki/rpm-gpg in RUN steps.",
	WorkspaceTrustedCA:      "ConfigMap with the cluster's trust bundle, trusted by buildah and RUN steps (not baked into the image).",
	WorkspaceProxy:          "Secret with the keys HTTP_PROXY, HTTPS_PROXY and NO_PROXY, used instead of the proxy parameters (a proxy URL with credentials).",
}

// envName maps a workspace name to the prefix of its environment variables.
func envName(ws string) string {
	b := []byte(ws)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// paramEnv passes task parameters to a step as environment variables of the same name.
func paramEnv(names ...string) []corev1.EnvVar {
	env := make([]corev1.EnvVar, 0, len(names))
	for _, n := range names {
		env = append(env, corev1.EnvVar{Name: n, Value: fmt.Sprintf("$(params.%s)", n)})
	}
	return env
}

// workspaceEnv passes a workspace's path and whether it is bound as <NAME>_PATH and <NAME>_BOUND.
func workspaceEnv(names ...string) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, n := range names {
		env = append(env,
			corev1.EnvVar{Name: envName(n) + "_BOUND", Value: fmt.Sprintf("$(workspaces.%s.bound)", n)},
			corev1.EnvVar{Name: envName(n) + "_PATH", Value: fmt.Sprintf("$(workspaces.%s.path)", n)})
	}
	return env
}

// resultEnv passes a result's path as RESULT_<NAME>.
func resultEnv(names ...string) []corev1.EnvVar {
	env := make([]corev1.EnvVar, 0, len(names))
	for _, n := range names {
		env = append(env, corev1.EnvVar{Name: "RESULT_" + n, Value: fmt.Sprintf("$(results.%s.path)", n)})
	}
	return env
}

func concatEnv(lists ...[]corev1.EnvVar) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func paramSpecs(defaults map[string]string, names ...string) tektonv1.ParamSpecs {
	specs := make(tektonv1.ParamSpecs, 0, len(names))
	for _, n := range names {
		ps := tektonv1.ParamSpec{Name: n, Type: tektonv1.ParamTypeString, Description: paramDoc[n]}
		if d, ok := defaults[n]; ok {
			ps.Default = tektonv1.NewStructuredValues(d)
		}
		specs = append(specs, ps)
	}
	return specs
}

func workspaceDecls(names ...string) []tektonv1.WorkspaceDeclaration {
	decls := make([]tektonv1.WorkspaceDeclaration, 0, len(names))
	for _, n := range names {
		decls = append(decls, tektonv1.WorkspaceDeclaration{Name: n, Description: workspaceDoc[n], ReadOnly: true, Optional: true})
	}
	return decls
}

// taskDefaults are the parameter defaults of the standalone Tasks (tasks/*.yaml).
func taskDefaults(cfg Config) map[string]string {
	cfg = cfg.withDefaults()
	return map[string]string{
		"EXTENSIONS_IMAGE": "",
		"TARGET_ARCH":      "amd64",
		"HTTP_PROXY":       "",
		"HTTPS_PROXY":      "",
		"NO_PROXY":         "",
		"BUILDAH_IMAGE":    cfg.BuildahImage,
		"TOOLS_IMAGE":      cfg.ToolsImage,
		"STORAGE_DRIVER":   cfg.StorageDriver,
		"IMAGE_FORMAT":     cfg.ImageFormat,
		"TLS_VERIFY":       fmt.Sprint(*cfg.TLSVerify),
		"PUSH_RETRIES":     fmt.Sprint(DefaultPushRetries),
		"CACHE_REPO":       "",
		"TRUSTED_CA_KEY":   "ca-bundle.crt",
		"CURRENT_TAG":      "",
	}
}

func toolStep(name, display string, env []corev1.EnvVar) tektonv1.Step {
	return tektonv1.Step{
		Name:        name,
		DisplayName: display,
		Image:       "$(params.TOOLS_IMAGE)",
		Command:     []string{StepToolCommand, name},
		Env:         env,
	}
}

// FetchBaseDigestTaskSpec resolves BASE_IMAGE for TARGET_ARCH and pins it by digest.
func FetchBaseDigestTaskSpec(cfg Config) tektonv1.TaskSpec {
	params := []string{"BASE_IMAGE", "TARGET_ARCH", "TOOLS_IMAGE", "TLS_VERIFY"}
	return tektonv1.TaskSpec{
		DisplayName: "Resolve the base OS image",
		Description: "Resolves the base OS image for the pool's architecture and pins it by digest, " +
			"checking that the base image pull secret can read it.",
		Params:     paramSpecs(taskDefaults(cfg), params...),
		Workspaces: workspaceDecls(WorkspaceBasePullSecret),
		Results: []tektonv1.TaskResult{
			{Name: ResultBaseImage, Type: tektonv1.ResultsTypeString, Description: "Base image for TARGET_ARCH, repository@sha256:digest."},
			{Name: ResultBaseImageDigest, Type: tektonv1.ResultsTypeString, Description: "Digest of the base image for TARGET_ARCH."},
		},
		Steps: []tektonv1.Step{toolStep(TaskFetchBaseDigest, "Resolve and pin the base image", concatEnv(
			paramEnv(params[:2]...), paramEnv("TLS_VERIFY"),
			workspaceEnv(WorkspaceBasePullSecret), resultEnv(ResultBaseImage, ResultBaseImageDigest)))},
	}
}

// BuildTaskSpec prepares the context (inject), builds (build) and pushes (push) the image in one
// pod, sharing buildah's image store.
func BuildTaskSpec(cfg Config) tektonv1.TaskSpec {
	cfg = cfg.withDefaults()
	params := []string{"POOL", "INPUTS_HASH", "PINNED_BASE_IMAGE", "EXTENSIONS_IMAGE", "CONTAINERFILE_BASE64", "IMAGE",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "BUILDAH_IMAGE", "STORAGE_DRIVER", "IMAGE_FORMAT", "TLS_VERIFY",
		"PUSH_RETRIES", "CACHE_REPO", "TRUSTED_CA_KEY"}
	storage := corev1.VolumeMount{Name: "varlibcontainers", MountPath: "/var/lib/containers"}
	secrets := corev1.VolumeMount{Name: "ocl-secrets", MountPath: "/var/run/ocl-secrets"}
	proxyEnv := concatEnv(paramEnv("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"), workspaceEnv(WorkspaceProxy))
	return tektonv1.TaskSpec{
		DisplayName: "Build and push the OS image",
		Description: "Builds the rendered Containerfile with buildah on the pinned base image, with entitlements " +
			"mounted into RUN steps (never copied into a layer), and pushes it.",
		Params: paramSpecs(taskDefaults(cfg), params...),
		Workspaces: workspaceDecls(WorkspaceBasePullSecret, WorkspacePushSecret, WorkspaceEntitlement,
			WorkspaceActivationKey, WorkspaceYumRepos, WorkspaceRPMGPG, WorkspaceTrustedCA, WorkspaceProxy),
		Results: []tektonv1.TaskResult{
			{Name: ResultImageURL, Type: tektonv1.ResultsTypeString, Description: "The pushed image, repository:tag."},
			{Name: ResultImageDigest, Type: tektonv1.ResultsTypeString, Description: "Digest of the pushed image."},
			{Name: ResultFailure, Type: tektonv1.ResultsTypeString, Description: "Why the push failed, in one line (empty on success)."},
		},
		Volumes: []corev1.Volume{
			{Name: "varlibcontainers", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "ocl-secrets", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		},
		Steps: []tektonv1.Step{
			{
				Name:        StepInject,
				DisplayName: "Prepare the build context, entitlements and CA trust",
				Image:       "$(params.BUILDAH_IMAGE)",
				Script:      injectScript,
				Env: concatEnv(paramEnv("POOL", "INPUTS_HASH", "CONTAINERFILE_BASE64", "TRUSTED_CA_KEY"),
					workspaceEnv(WorkspaceEntitlement, WorkspaceActivationKey, WorkspaceYumRepos, WorkspaceRPMGPG,
						WorkspaceBasePullSecret, WorkspacePushSecret, WorkspaceTrustedCA)),
				VolumeMounts: []corev1.VolumeMount{secrets},
			},
			{
				Name:        StepBuild,
				DisplayName: "Build the image with buildah",
				Image:       "$(params.BUILDAH_IMAGE)",
				Script:      buildScript,
				Env: concatEnv(paramEnv("IMAGE", "POOL", "INPUTS_HASH", "PINNED_BASE_IMAGE", "EXTENSIONS_IMAGE", "STORAGE_DRIVER", "IMAGE_FORMAT",
					"TLS_VERIFY", "CACHE_REPO"), proxyEnv,
					[]corev1.EnvVar{{Name: "BUILDAH_ISOLATION", Value: "chroot"}}),
				VolumeMounts:    []corev1.VolumeMount{storage, secrets},
				SecurityContext: cfg.BuildSecurityContext.DeepCopy(),
			},
			{
				Name:        StepPush,
				DisplayName: "Push the image",
				Image:       "$(params.BUILDAH_IMAGE)",
				Script:      pushScript,
				Env: concatEnv(paramEnv("IMAGE", "STORAGE_DRIVER", "TLS_VERIFY", "PUSH_RETRIES"), proxyEnv,
					// Every push gets a tag of its own (IMAGE-<run id>): a retry or a re-run of the
					// same inputs never moves a tag off a digest that nodes may boot.
					[]corev1.EnvVar{{Name: "RUN_ID", Value: "$(context.taskRun.uid)"}},
					workspaceEnv(WorkspacePushSecret), resultEnv(ResultImageURL, ResultImageDigest, ResultFailure)),
				VolumeMounts:    []corev1.VolumeMount{storage},
				SecurityContext: cfg.BuildSecurityContext.DeepCopy(),
			},
		},
	}
}

// VerifyTaskSpec pulls the pushed digest and refuses an image that is not bootable or not
// derived from the base.
func VerifyTaskSpec(cfg Config) tektonv1.TaskSpec {
	params := []string{"IMAGE_URL", "IMAGE_DIGEST", "PINNED_BASE_IMAGE", "TARGET_ARCH", "TOOLS_IMAGE", "TLS_VERIFY"}
	return tektonv1.TaskSpec{
		DisplayName: "Verify the image is bootable",
		Description: "Pulls the pushed digest and refuses an image whose first layers are not the base image's, " +
			"that lacks a kernel and initramfs under /usr/lib/modules/<version>/, /usr/lib/os-release or the " +
			"bootc/ostree bootable label, or that is built for the wrong architecture.",
		Params:     paramSpecs(taskDefaults(cfg), params...),
		Workspaces: workspaceDecls(WorkspacePushSecret, WorkspaceBasePullSecret),
		Steps: []tektonv1.Step{toolStep(TaskVerify, "Check layers, kernel, os-release, labels and architecture", concatEnv(
			paramEnv("IMAGE_URL", "IMAGE_DIGEST", "PINNED_BASE_IMAGE", "TARGET_ARCH", "TLS_VERIFY"),
			workspaceEnv(WorkspacePushSecret, WorkspaceBasePullSecret)))},
	}
}

// PromoteTaskSpec moves CURRENT_TAG to the verified digest.
func PromoteTaskSpec(cfg Config) tektonv1.TaskSpec {
	params := []string{"IMAGE_URL", "IMAGE_DIGEST", "CURRENT_TAG", "TOOLS_IMAGE", "TLS_VERIFY"}
	return tektonv1.TaskSpec{
		DisplayName: "Tag the verified image as the pool's current image",
		Description: "Moves the push spec's tag to the verified digest in the registry. The controller then " +
			"promotes the digest to the pool through a MachineConfig; this task needs no rights on cluster objects.",
		Params:     paramSpecs(taskDefaults(cfg), params...),
		Workspaces: workspaceDecls(WorkspacePushSecret),
		Results: []tektonv1.TaskResult{
			{Name: ResultPromotedImage, Type: tektonv1.ResultsTypeString, Description: "The promoted image, repository@sha256:digest."},
		},
		Steps: []tektonv1.Step{toolStep(TaskPromote, "Tag the verified digest", concatEnv(
			paramEnv("IMAGE_URL", "IMAGE_DIGEST", "CURRENT_TAG", "TLS_VERIFY"),
			workspaceEnv(WorkspacePushSecret), resultEnv(ResultPromotedImage)))},
	}
}

// ReportTaskSpec prints one summary of the run and, on failure, where to read the logs.
func ReportTaskSpec(cfg Config) tektonv1.TaskSpec {
	params := []string{"POOL", "PIPELINE_RUN", "NAMESPACE", "AGGREGATE_STATUS", "FETCH_STATUS", "BUILD_STATUS",
		"VERIFY_STATUS", "PROMOTE_STATUS", "TOOLS_IMAGE"}
	return tektonv1.TaskSpec{
		DisplayName: "Report",
		Description: "Prints the outcome of every stage and, when one failed, the command that shows its logs.",
		Params:      paramSpecs(taskDefaults(cfg), params...),
		Steps: []tektonv1.Step{toolStep(TaskReport, "Summarise the run", paramEnv(
			"POOL", "PIPELINE_RUN", "NAMESPACE", "AGGREGATE_STATUS", "FETCH_STATUS", "BUILD_STATUS", "VERIFY_STATUS", "PROMOTE_STATUS"))},
	}
}

// StandaloneTask is one catalog-style Task of the pipeline.
type StandaloneTask struct {
	// Name is the pipeline task name (fetch-base-digest, build, verify, promote, report).
	Name string
	// Task is the tekton.dev/v1 Task, named ocl-<Name>.
	Task *tektonv1.Task
}

// Tasks returns the pipeline's stages as standalone, catalog-style Tasks (tasks/<name>/<name>.yaml).
func Tasks(cfg Config) []StandaloneTask {
	specs := []struct {
		name string
		spec tektonv1.TaskSpec
	}{
		{TaskFetchBaseDigest, FetchBaseDigestTaskSpec(cfg)},
		{TaskBuild, BuildTaskSpec(cfg)},
		{TaskVerify, VerifyTaskSpec(cfg)},
		{TaskPromote, PromoteTaskSpec(cfg)},
		{TaskReport, ReportTaskSpec(cfg)},
	}
	out := make([]StandaloneTask, 0, len(specs))
	for _, s := range specs {
		out = append(out, StandaloneTask{Name: s.name, Task: &tektonv1.Task{
			TypeMeta: metav1.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "Task"},
			ObjectMeta: metav1.ObjectMeta{
				Name: "ocl-" + s.name,
				Labels: map[string]string{
					"app.kubernetes.io/version":   "0.1",
					"app.kubernetes.io/part-of":   "ocl-pipelines",
					"app.kubernetes.io/component": s.name,
				},
				Annotations: map[string]string{
					"tekton.dev/pipelines.minVersion": "1.0.0",
					"tekton.dev/categories":           "Image Build",
					"tekton.dev/tags":                 "image-build, rhcos, ocl",
					"tekton.dev/displayName":          s.spec.DisplayName,
					"tekton.dev/platforms":            "linux/amd64,linux/arm64,linux/ppc64le,linux/s390x",
				},
			},
			Spec: s.spec,
		}})
	}
	return out
}
