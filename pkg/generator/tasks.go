package generator

import (
	_ "embed"
	"fmt"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

var (
	//go:embed scripts/inject.sh
	injectScript string
	//go:embed scripts/build.sh
	buildScript string
	//go:embed scripts/push.sh
	pushScript string
)

// paramDoc describes every pipeline parameter once; tasks declare the subset they use.
var paramDoc = map[string]string{
	contract.ParamPool:            "Name of the MachineConfigPool the image is for.",
	contract.ParamInputsHash:      "Hash of the build's inputs; the image is pushed under this tag.",
	contract.ParamBaseImage:       "Base OS image, repository@sha256:digest (a tag is resolved by fetch-base-digest).",
	contract.ParamPinnedBaseImage: "Base OS image pinned by digest for TARGET_ARCH: the BASE_IMAGE result of fetch-base-digest.",
	contract.ParamExtensionsImage: "CoreOS extensions image available to the build as stage `extensions`; empty for none.",
	contract.ParamTargetArch:      "Architecture of the pool's nodes (amd64, arm64, ppc64le, s390x).",
	contract.ParamContainerfile:   "The rendered Containerfile, base64 encoded so that no variable substitution can alter it.",
	contract.ParamImage:           "Image to push, repository:<inputs hash>; it is pushed as IMAGE-<12 characters of the TaskRun uid>, a tag of its own.",
	contract.ParamCurrentTag:      "Tag moved to the verified image; empty (the default) moves none: the controller moves the push spec's tag itself once it promotes the image.",
	contract.ParamImageURL:        "Pushed image, repository:tag.",
	contract.ParamImageDigest:     "Digest of the pushed image.",
	contract.ParamHTTPProxy:       "HTTP proxy for the push check, buildah and RUN steps.",
	contract.ParamHTTPSProxy:      "HTTPS proxy for the push check, buildah and RUN steps.",
	contract.ParamNoProxy:         "Hosts that bypass the proxy.",
	contract.ParamBuildahImage:    "Step image with buildah and bash (inject, build, push).",
	contract.ParamToolsImage:      "Step image with ocl-step (fetch-base-digest, check-push, verify, promote, report).",
	contract.ParamStorageDriver:   "buildah storage driver: vfs or overlay.",
	contract.ParamImageFormat:     "Manifest format of the image: oci or docker.",
	contract.ParamTLSVerify:       "Verify registries' TLS certificates: true or false.",
	contract.ParamPushRetries:     "How often the push check (before the build) and buildah's push retry a registry that does not answer.",
	contract.ParamCacheRepo:       "Registry repository for buildah's layer cache; empty for none.",
	contract.ParamTrustedCAKey:    "Key of the trust bundle in the trusted-ca ConfigMap.",
	contract.ParamPipelineRun:     "Name of the PipelineRun being reported.",
	contract.ParamNamespace:       "Namespace of the PipelineRun being reported.",
	contract.ParamAggregateStatus: "Aggregate status of the pipeline's tasks.",
	contract.ParamFetchStatus:     "Status of the fetch-base-digest task.",
	contract.ParamBuildStatus:     "Status of the build task.",
	contract.ParamVerifyStatus:    "Status of the verify task.",
	contract.ParamPromoteStatus:   "Status of the promote task.",
	contract.ParamBuildStep:       "The build task's LAST_STEP result: on a failed build, the step that failed; empty when the build did not run.",
	contract.ParamBuildReason:     "The build task's reason: Succeeded, Failed (a step failed), another reason of Tekton's, or empty when it did not run.",
}

var workspaceDoc = map[string]string{
	contract.WorkspaceBasePullSecret: "kubernetes.io/dockerconfigjson Secret that pulls the base and extensions images.",
	contract.WorkspacePushSecret:     "kubernetes.io/dockerconfigjson Secret that pushes to the image's repository.",
	contract.WorkspaceEntitlement:    "Secret of RHEL entitlement certificates, mounted read-only at /etc/pki/entitlement in RUN steps.",
	contract.WorkspaceActivationKey:  "Secret with an activation key (org, activationkey), mounted read-only at /run/secrets/rhsm-activation in RUN steps.",
	contract.WorkspaceYumRepos:       "ConfigMap of *.repo files, mounted read-only at /etc/yum.repos.d in RUN steps.",
	contract.WorkspaceRPMGPG:         "Secret of RPM GPG keys, mounted read-only at /etc/pki/rpm-gpg in RUN steps.",
	contract.WorkspaceTrustedCA:      "ConfigMap with the cluster's trust bundle, trusted by the push check, buildah (build and push) and RUN steps (not baked into the image).",
	contract.WorkspaceProxy:          "Secret with the keys HTTP_PROXY, HTTPS_PROXY and NO_PROXY, used instead of the proxy parameters (a proxy URL with credentials).",
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
			corev1.EnvVar{Name: contract.WorkspaceBoundEnv(n), Value: fmt.Sprintf("$(workspaces.%s.bound)", n)},
			corev1.EnvVar{Name: contract.WorkspacePathEnv(n), Value: fmt.Sprintf("$(workspaces.%s.path)", n)})
	}
	return env
}

// resultEnv passes a result's path as RESULT_<NAME>.
func resultEnv(names ...string) []corev1.EnvVar {
	env := make([]corev1.EnvVar, 0, len(names))
	for _, n := range names {
		env = append(env, corev1.EnvVar{Name: contract.ResultEnv(n), Value: fmt.Sprintf("$(results.%s.path)", n)})
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
		contract.ParamExtensionsImage: "",
		contract.ParamTargetArch:      "amd64",
		contract.ParamHTTPProxy:       "",
		contract.ParamHTTPSProxy:      "",
		contract.ParamNoProxy:         "",
		contract.ParamBuildahImage:    cfg.BuildahImage,
		contract.ParamToolsImage:      cfg.ToolsImage,
		contract.ParamStorageDriver:   cfg.StorageDriver,
		contract.ParamImageFormat:     cfg.ImageFormat,
		contract.ParamTLSVerify:       fmt.Sprint(*cfg.TLSVerify),
		contract.ParamPushRetries:     fmt.Sprint(DefaultPushRetries),
		contract.ParamCacheRepo:       "",
		contract.ParamTrustedCAKey:    "ca-bundle.crt",
		contract.ParamCurrentTag:      "",
	}
}

// toolStep runs one Go stage of the tools image with exactly the environment its contract names.
func toolStep(stage contract.GoStage, display string) tektonv1.Step {
	return tektonv1.Step{
		Name:        stage.Name,
		DisplayName: display,
		Image:       "$(params." + contract.ParamToolsImage + ")",
		Command:     []string{contract.StepCommand, stage.Name},
		Env:         concatEnv(paramEnv(stage.Params...), workspaceEnv(stage.Workspaces...), workspaceEnv(stage.Mounts...), resultEnv(stage.Results...)),
	}
}

// FetchBaseDigestTaskSpec resolves BASE_IMAGE for TARGET_ARCH and pins it by digest.
func FetchBaseDigestTaskSpec(cfg Config) tektonv1.TaskSpec {
	params := []string{contract.ParamBaseImage, contract.ParamTargetArch, contract.ParamToolsImage, contract.ParamTLSVerify}
	return tektonv1.TaskSpec{
		DisplayName: "Resolve the base OS image",
		Description: "Resolves the base OS image for the pool's architecture and pins it by digest, " +
			"checking that the base image pull secret can read it.",
		Params:     paramSpecs(taskDefaults(cfg), params...),
		Workspaces: workspaceDecls(contract.WorkspaceBasePullSecret),
		Results: []tektonv1.TaskResult{
			{Name: contract.ResultBaseImage, Type: tektonv1.ResultsTypeString, Description: "Base image for TARGET_ARCH, repository@sha256:digest."},
			{Name: contract.ResultBaseImageDigest, Type: tektonv1.ResultsTypeString, Description: "Digest of the base image for TARGET_ARCH."},
		},
		Steps: []tektonv1.Step{toolStep(contract.FetchBaseDigest(), "Resolve and pin the base image")},
	}
}

// BuildTaskSpec prepares the context (inject), builds (build) and pushes (push) the image in one
// pod, sharing buildah's image store.
func BuildTaskSpec(cfg Config) tektonv1.TaskSpec {
	cfg = cfg.withDefaults()
	params := []string{contract.ParamPool, contract.ParamInputsHash, contract.ParamPinnedBaseImage, contract.ParamExtensionsImage, contract.ParamContainerfile, contract.ParamImage,
		contract.ParamHTTPProxy, contract.ParamHTTPSProxy, contract.ParamNoProxy, contract.ParamBuildahImage, contract.ParamStorageDriver, contract.ParamImageFormat, contract.ParamTLSVerify,
		contract.ParamPushRetries, contract.ParamCacheRepo, contract.ParamTrustedCAKey, contract.ParamToolsImage}
	storage := corev1.VolumeMount{Name: "varlibcontainers", MountPath: "/var/lib/containers"}
	secrets := corev1.VolumeMount{Name: "ocl-secrets", MountPath: contract.SecretsDir}
	proxyEnv := concatEnv(paramEnv(contract.ParamHTTPProxy, contract.ParamHTTPSProxy, contract.ParamNoProxy), workspaceEnv(contract.WorkspaceProxy))
	return tektonv1.TaskSpec{
		DisplayName: "Build and push the OS image",
		Description: "Checks that the registry takes the push, builds the rendered Containerfile with buildah on the " +
			"pinned base image, with entitlements mounted into RUN steps (never copied into a layer), and pushes it.",
		Params: paramSpecs(taskDefaults(cfg), params...),
		Workspaces: workspaceDecls(contract.WorkspaceBasePullSecret, contract.WorkspacePushSecret, contract.WorkspaceEntitlement,
			contract.WorkspaceActivationKey, contract.WorkspaceYumRepos, contract.WorkspaceRPMGPG, contract.WorkspaceTrustedCA, contract.WorkspaceProxy),
		Results: []tektonv1.TaskResult{
			{Name: contract.ResultImageURL, Type: tektonv1.ResultsTypeString, Description: "The pushed image, repository:tag."},
			{Name: contract.ResultImageDigest, Type: tektonv1.ResultsTypeString, Description: "Digest of the pushed image."},
			{Name: contract.ResultFailure, Type: tektonv1.ResultsTypeString, Description: "Why the image cannot be or was not pushed, in one line (empty on success)."},
			{Name: contract.ResultLastStep, Type: tektonv1.ResultsTypeString, Description: "The step that started last: on a failure, the step that failed."},
		},
		Volumes: []corev1.Volume{
			{Name: "varlibcontainers", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "ocl-secrets", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		},
		Steps: []tektonv1.Step{
			{
				Name:        contract.StepInject,
				DisplayName: "Prepare the build context, entitlements and CA trust",
				Image:       "$(params.BUILDAH_IMAGE)",
				Script:      injectScript,
				Env: concatEnv(paramEnv(contract.ParamPool, contract.ParamInputsHash, contract.ParamContainerfile, contract.ParamTrustedCAKey),
					workspaceEnv(contract.WorkspaceEntitlement, contract.WorkspaceActivationKey, contract.WorkspaceYumRepos, contract.WorkspaceRPMGPG,
						contract.WorkspaceBasePullSecret, contract.WorkspacePushSecret, contract.WorkspaceTrustedCA), resultEnv(contract.ResultLastStep)),
				VolumeMounts: []corev1.VolumeMount{secrets},
			},
			// Before the build: a refused push secret or an unreachable registry fails in
			// seconds, classified from the registry's typed errors, not after the whole build.
			toolStep(contract.CheckPush(), "Check that the registry takes the push"),
			{
				Name:        contract.StepBuild,
				DisplayName: "Build the image with buildah",
				Image:       "$(params.BUILDAH_IMAGE)",
				Script:      buildScript,
				Env: concatEnv(paramEnv(contract.ParamImage, contract.ParamPool, contract.ParamInputsHash, contract.ParamPinnedBaseImage, contract.ParamExtensionsImage, contract.ParamStorageDriver, contract.ParamImageFormat,
					contract.ParamTLSVerify, contract.ParamCacheRepo), proxyEnv,
					[]corev1.EnvVar{{Name: contract.EnvBuildahIsolation, Value: "chroot"}}, resultEnv(contract.ResultLastStep)),
				VolumeMounts:    []corev1.VolumeMount{storage, secrets},
				SecurityContext: cfg.BuildSecurityContext.DeepCopy(),
			},
			{
				Name:        contract.StepPush,
				DisplayName: "Push the image",
				Image:       "$(params.BUILDAH_IMAGE)",
				Script:      pushScript,
				Env: concatEnv(paramEnv(contract.ParamImage, contract.ParamStorageDriver, contract.ParamTLSVerify, contract.ParamPushRetries), proxyEnv,
					// Every push gets a tag of its own (IMAGE-<run id>): a retry or a re-run of the
					// same inputs never moves a tag off a digest that nodes may boot.
					[]corev1.EnvVar{{Name: contract.EnvRunID, Value: "$(context.taskRun.uid)"}},
					workspaceEnv(contract.WorkspacePushSecret), resultEnv(contract.ResultImageURL, contract.ResultImageDigest, contract.ResultFailure, contract.ResultLastStep)),
				// The trust bundle inject staged (SSL_CERT_FILE): buildah's push trusts the
				// cluster's CA as check-push and the build do.
				VolumeMounts:    []corev1.VolumeMount{storage, {Name: secrets.Name, MountPath: secrets.MountPath, ReadOnly: true}},
				SecurityContext: cfg.BuildSecurityContext.DeepCopy(),
			},
		},
	}
}

// VerifyTaskSpec pulls the pushed digest and refuses an image that is not bootable or not
// derived from the base.
func VerifyTaskSpec(cfg Config) tektonv1.TaskSpec {
	params := []string{contract.ParamImageURL, contract.ParamImageDigest, contract.ParamPinnedBaseImage, contract.ParamTargetArch, contract.ParamToolsImage, contract.ParamTLSVerify}
	return tektonv1.TaskSpec{
		DisplayName: "Verify the image is bootable",
		Description: "Pulls the pushed digest and refuses an image whose first layers are not the base image's, " +
			"that lacks a kernel and initramfs under /usr/lib/modules/<version>/, /usr/lib/os-release or the " +
			"bootc/ostree bootable label, or that is built for the wrong architecture.",
		Params:     paramSpecs(taskDefaults(cfg), params...),
		Workspaces: workspaceDecls(contract.WorkspacePushSecret, contract.WorkspaceBasePullSecret),
		Steps:      []tektonv1.Step{toolStep(contract.Verify(), "Check layers, kernel, os-release, labels and architecture")},
	}
}

// PromoteTaskSpec moves CURRENT_TAG to the verified digest.
func PromoteTaskSpec(cfg Config) tektonv1.TaskSpec {
	params := []string{contract.ParamImageURL, contract.ParamImageDigest, contract.ParamCurrentTag, contract.ParamToolsImage, contract.ParamTLSVerify}
	return tektonv1.TaskSpec{
		DisplayName: "Tag the verified image as the pool's current image",
		Description: "Moves the push spec's tag to the verified digest in the registry. The controller then " +
			"promotes the digest to the pool through a MachineConfig; this task needs no rights on cluster objects.",
		Params:     paramSpecs(taskDefaults(cfg), params...),
		Workspaces: workspaceDecls(contract.WorkspacePushSecret),
		Results: []tektonv1.TaskResult{
			{Name: contract.ResultPromotedImage, Type: tektonv1.ResultsTypeString, Description: "The promoted image, repository@sha256:digest."},
		},
		Steps: []tektonv1.Step{toolStep(contract.Promote(), "Tag the verified digest")},
	}
}

// ReportTaskSpec prints one summary of the run and, on failure, where to read the logs.
func ReportTaskSpec(cfg Config) tektonv1.TaskSpec {
	params := append(contract.Report().Params, contract.ParamToolsImage)
	defaults := taskDefaults(cfg)
	defaults[contract.ParamBuildStep] = ""
	defaults[contract.ParamBuildReason] = ""
	return tektonv1.TaskSpec{
		DisplayName: "Report",
		Description: "Prints the verdict first and, when a stage failed, its task, its step and the command that shows its logs, then the status of every stage.",
		Params:      paramSpecs(defaults, params...),
		Steps:       []tektonv1.Step{toolStep(contract.Report(), "Summarise the run")},
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
		{contract.TaskFetchBaseDigest, FetchBaseDigestTaskSpec(cfg)},
		{contract.TaskBuild, BuildTaskSpec(cfg)},
		{contract.TaskVerify, VerifyTaskSpec(cfg)},
		{contract.TaskPromote, PromoteTaskSpec(cfg)},
		{contract.TaskReport, ReportTaskSpec(cfg)},
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
