package v1alpha1

import (
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/pod"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// PoolImage declares the OS image of one MachineConfigPool: the release's base OS image plus the
// admin's Containerfile. The controller builds it with a generated Tekton PipelineRun, verifies it
// is bootable and promotes it to the pool through a MachineConfig osImageURL.
//
// +genclient
// +genreconciler
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pimg,categories=ocl
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Pool",type=string,JSONPath=`.spec.machineConfigPool.name`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.status.currentImage`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Build",type=string,JSONPath=`.status.latestBuild.pipelineRun`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PoolImage struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the admin declares: pool, Containerfile, where to push, how to build.
	Spec PoolImageSpec `json:"spec"`

	// status is what the controller observed: the promoted image and the latest build.
	// +optional
	Status PoolImageStatus `json:"status,omitempty"`
}

// PoolImageSpec is the admin's declaration of a pool's OS image. Field names follow the MCO's
// MachineOSConfig where they mean the same thing.
type PoolImageSpec struct {
	// machineConfigPool is the pool whose nodes boot the built image. It cannot be changed: the
	// controller's MachineConfig and hold belong to that pool; to move the image to another pool,
	// create a PoolImage for it (and delete this one, which hands this pool back).
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.machineConfigPool is immutable: create a PoolImage for the other pool, and delete this one to hand its pool back"
	MachineConfigPool MachineConfigPoolReference `json:"machineConfigPool"`

	// containerfile holds the admin's Containerfile, at most one per architecture. The entry for
	// the pool's architecture is used, else the noarch one. The content is appended after the
	// generated stage `configs` (the base image with CA trust and labels), so it usually starts
	// with `FROM configs AS final`, exactly as with MachineOSConfig.
	// +listType=map
	// +listMapKey=arch
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=5
	Containerfile []Containerfile `json:"containerfile"`

	// imagePushSpec is where built images go, as host[:port]/repository:tag. Each build is pushed
	// as repository:<inputs hash>; the tag given here is moved to the verified image when it is
	// promoted, so it always names the pool's current image.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=447
	ImagePushSpec string `json:"imagePushSpec"`

	// pushSecret is a kubernetes.io/dockerconfigjson Secret, in the PoolImage's namespace, with
	// push rights on imagePushSpec's repository. Optional for registries without authentication.
	// +optional
	PushSecret *SecretReference `json:"pushSecret,omitempty"`

	// baseImagePullSecret is a kubernetes.io/dockerconfigjson Secret, in the PoolImage's
	// namespace, that can pull the base and extensions images (usually a copy of the cluster's
	// global pull secret).
	// +optional
	BaseImagePullSecret *SecretReference `json:"baseImagePullSecret,omitempty"`

	// baseImage overrides the base OS image, pinned by digest (repository@sha256:...). Default:
	// the cluster ControllerConfig's baseOSContainerImage, so the image follows cluster
	// upgrades. An override stops that.
	// +optional
	// +kubebuilder:validation:MaxLength=447
	BaseImage string `json:"baseImage,omitempty"`

	// extensionsImage overrides the CoreOS extensions image made available to the build as the
	// stage `extensions`, pinned by digest. Default: the ControllerConfig's
	// baseOSExtensionsContainerImage.
	// +optional
	// +kubebuilder:validation:MaxLength=447
	ExtensionsImage string `json:"extensionsImage,omitempty"`

	// entitlements wires RHEL entitlements into the build's RUN steps. They are mounted, never
	// copied, so no certificate or key can land in an image layer.
	// +optional
	Entitlements *Entitlements `json:"entitlements,omitempty"`

	// pipeline tunes the generated Tekton PipelineRun.
	// +optional
	Pipeline *PipelineOptions `json:"pipeline,omitempty"`

	// promotion controls how a verified image reaches the pool.
	// +optional
	Promotion *Promotion `json:"promotion,omitempty"`

	// revert, when true, hands the pool back to the release's unmodified image: the controller
	// removes its MachineConfig. Builds and images are kept per retention.
	// +optional
	Revert bool `json:"revert,omitempty"`

	// retention says how many PipelineRuns of this pool to keep.
	// +optional
	Retention *Retention `json:"retention,omitempty"`
}

// MachineConfigPoolReference names a MachineConfigPool.
type MachineConfigPoolReference struct {
	// name of the MachineConfigPool, e.g. worker or infra.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// Arch is a Containerfile's architecture.
// +kubebuilder:validation:Enum=noarch;amd64;arm64;ppc64le;s390x
type Arch string

// The architectures a Containerfile can be written for.
const (
	// ArchNoArch is a Containerfile that applies to every architecture.
	ArchNoArch Arch = "noarch"
	// ArchAMD64 is x86_64.
	ArchAMD64 Arch = "amd64"
	// ArchARM64 is aarch64.
	ArchARM64 Arch = "arm64"
	// ArchPPC64LE is POWER little endian.
	ArchPPC64LE Arch = "ppc64le"
	// ArchS390X is IBM Z.
	ArchS390X Arch = "s390x"
)

// Arches lists every valid Arch, noarch first.
func Arches() []Arch {
	return []Arch{ArchNoArch, ArchAMD64, ArchARM64, ArchPPC64LE, ArchS390X}
}

// MaxContainerfileBytes bounds one Containerfile's content (four times MachineOSConfig's limit).
const MaxContainerfileBytes = 16384

// Containerfile is the admin's Containerfile for one architecture.
type Containerfile struct {
	// arch is the architecture this content is for; noarch applies to all.
	// +kubebuilder:default=noarch
	// +optional
	Arch Arch `json:"arch,omitempty"`

	// content is the Containerfile text. It reaches buildah byte for byte: nothing in the
	// pipeline substitutes or executes it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	Content string `json:"content"`
}

// SecretReference names a Secret in the PoolImage's namespace.
type SecretReference struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ConfigMapReference names a ConfigMap in the PoolImage's namespace.
type ConfigMapReference struct {
	// name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// DefaultEntitlementSecretName is the Secret used for entitlements when entitlements.secret is
// unset and a Secret of that name exists (the name OpenShift uses in openshift-config-managed).
const DefaultEntitlementSecretName = "etc-pki-entitlement"

// Entitlements are the RHEL subscription material mounted into the build's RUN steps.
type Entitlements struct {
	// secret holds entitlement certificates (*.pem, *-key.pem), mounted read-only at
	// /etc/pki/entitlement during RUN steps. Default: etc-pki-entitlement, when it exists.
	// +optional
	Secret *SecretReference `json:"secret,omitempty"`

	// activationKey is a Secret with keys `org` and `activationkey`, mounted read-only at
	// /run/secrets/rhsm-activation during RUN steps, for subscription-manager.
	// +optional
	ActivationKey *SecretReference `json:"activationKey,omitempty"`

	// yumRepos is a ConfigMap of *.repo files mounted read-only at /etc/yum.repos.d during
	// RUN steps (Satellite or mirrored repositories).
	// +optional
	YumRepos *ConfigMapReference `json:"yumRepos,omitempty"`

	// rpmGPG is a Secret of RPM GPG keys mounted read-only at /etc/pki/rpm-gpg during RUN steps.
	// +optional
	RPMGPG *SecretReference `json:"rpmGPG,omitempty"`
}

// Param is one override of a generated pipeline parameter.
type Param struct {
	// name of the parameter.
	// +kubebuilder:validation:Enum=BUILDAH_IMAGE;TOOLS_IMAGE;STORAGE_DRIVER;IMAGE_FORMAT;TLS_VERIFY
	Name string `json:"name"`
	// value of the parameter.
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
}

// OverridableParams lists the pipeline parameters that spec.pipeline.params may set; every
// other parameter is computed from the spec and the cluster.
func OverridableParams() []string {
	return []string{"BUILDAH_IMAGE", "TOOLS_IMAGE", "STORAGE_DRIVER", "IMAGE_FORMAT", "TLS_VERIFY"}
}

// PipelineOptions tunes the generated PipelineRun. None of it changes the inputs hash, except
// IMAGE_FORMAT, which changes the image's manifest.
type PipelineOptions struct {
	// params overrides generated parameters (step images, storage driver, image format, TLS
	// verification). Defaults come from the controller's config-ocl-pipelines ConfigMap.
	// +listType=map
	// +listMapKey=name
	// +optional
	Params []Param `json:"params,omitempty"`

	// serviceAccountName runs the build's pods. It needs no rights on cluster objects.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// podTemplate is Tekton's pod template for the build's pods (node selector, tolerations,
	// hostNetwork, security context, ...).
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	PodTemplate *pod.PodTemplate `json:"podTemplate,omitempty"`

	// timeouts bounds the whole run, its tasks and its finally tasks, as in a PipelineRun.
	// +optional
	Timeouts *tektonv1.TimeoutFields `json:"timeouts,omitempty"`

	// retries sets how often Tekton retries each stage where a retry can help. The build stage
	// is never retried: a broken Containerfile stays broken.
	// +optional
	Retries *Retries `json:"retries,omitempty"`

	// cache keeps buildah's layer cache between builds.
	// +optional
	Cache *Cache `json:"cache,omitempty"`

	// proxySecret names a Secret, in the PoolImage's namespace, with the keys HTTP_PROXY,
	// HTTPS_PROXY and NO_PROXY that the check-push, build and push steps use instead of the cluster's
	// proxy. Needed when the cluster's proxy URL carries credentials: the controller never puts
	// those in the PipelineRun's parameters.
	// +optional
	ProxySecret *SecretReference `json:"proxySecret,omitempty"`
}

// Retries sets retry counts per stage. Unset fields take the defaults in parentheses.
type Retries struct {
	// fetchBaseDigest retries of resolving the base image (2).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	FetchBaseDigest *int32 `json:"fetchBaseDigest,omitempty"`
	// push retries of a registry that does not answer, by the push check before the build and
	// by buildah's push (3).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Push *int32 `json:"push,omitempty"`
	// verify retries of pulling and checking the pushed image (2).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Verify *int32 `json:"verify,omitempty"`
	// promote retries of tagging the verified image (2).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Promote *int32 `json:"promote,omitempty"`
}

// Cache configures buildah's layer cache.
type Cache struct {
	// repository, as host[:port]/repository without tag, holds cached layers
	// (buildah --layers --cache-from/--cache-to). The push secret must be able to push there.
	// +kubebuilder:validation:MaxLength=447
	// +optional
	Repository string `json:"repository,omitempty"`
}

// Promotion controls how a verified image reaches the pool.
type Promotion struct {
	// paused, when true, builds, verifies and records images but does not promote them.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// upgradeStrategy says what the pool does when the release's base image moves past the
	// promoted image (a cluster upgrade). HoldPool (the default) pauses the MachineConfigPool
	// while the image is rebuilt on the new base, promotes it and unpauses the pool, so each node
	// takes the new templates and the new image in one drain and one reboot. Follow never pauses
	// the pool: nodes take the new templates on the old image at once and the rebuilt image
	// later (two reboots). Setting Follow while the pool is held releases it now.
	// +kubebuilder:validation:Enum=HoldPool;Follow
	// +optional
	UpgradeStrategy UpgradeStrategy `json:"upgradeStrategy,omitempty"`

	// holdTimeout is how long a held pool may wait for its rebuilt image before the PoolImage
	// reports HoldTimeout (an event, the PoolHeld condition and the out-of-date alert). The pool
	// stays held: fix the build, or set upgradeStrategy to Follow. Default: the controller's
	// hold-timeout (2h as installed).
	// +optional
	HoldTimeout *metav1.Duration `json:"holdTimeout,omitempty"`
}

// UpgradeStrategy is what a pool does when its image falls behind the release's base image.
type UpgradeStrategy string

// The upgrade strategies.
const (
	// UpgradeHoldPool pauses the pool until the image rebuilt on the new base is promoted.
	UpgradeHoldPool UpgradeStrategy = "HoldPool"
	// UpgradeFollow lets the pool roll out the release's new templates on its current image.
	UpgradeFollow UpgradeStrategy = "Follow"
)

// DefaultRetentionKeep is how many PipelineRuns per pool are kept when retention.keep is unset.
const DefaultRetentionKeep int32 = 5

// Retention bounds the PipelineRuns kept per pool.
type Retention struct {
	// keep is the number of most recent PipelineRuns kept (default: the controller's
	// retention-keep, 5 as installed); the promoted image's run is always kept.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Keep *int32 `json:"keep,omitempty"`
}

// PoolImageStatus is the observed state of a PoolImage.
type PoolImageStatus struct {
	duckv1.Status `json:",inline"`

	// currentImage is the image promoted to the pool, as repository@sha256:digest.
	// +optional
	CurrentImage string `json:"currentImage,omitempty"`

	// currentInputs are the inputs of the promoted image.
	// +optional
	CurrentInputs *BuildInputs `json:"currentInputs,omitempty"`

	// currentInputsHash is the inputs hash of the promoted image: inputs with this hash are not
	// built again.
	// +optional
	CurrentInputsHash string `json:"currentInputsHash,omitempty"`

	// pending is a change of inputs waiting for the quiet period to pass before its build starts.
	// +optional
	Pending *PendingBuild `json:"pending,omitempty"`

	// latestBuild is the most recent build, running or finished.
	// +optional
	LatestBuild *BuildStatus `json:"latestBuild,omitempty"`

	// retry is the last value of the retry annotation the controller honoured: a value is
	// honoured once, whatever else happens to latestBuild afterwards.
	// +optional
	Retry *RetryStatus `json:"retry,omitempty"`

	// hold is set while the controller holds the pool paused for a rebuild on a new base image
	// (upgradeStrategy HoldPool). The pool itself carries the annotation
	// layering.ocl-pipelines.dev/paused-by: the controller only ever unpauses a pool it paused.
	// +optional
	Hold *PoolHold `json:"hold,omitempty"`

	// upgrade is the build of the pool's image against the release the cluster is about to
	// upgrade to (ClusterVersion's targeted or newest offered release), made before the upgrade
	// starts; condition UpgradeReady says whether it succeeded.
	// +optional
	Upgrade *UpgradeBuild `json:"upgrade,omitempty"`
}

// RetryStatus is a retry the controller honoured.
type RetryStatus struct {
	// token is the value of the retry annotation.
	Token string `json:"token"`
	// pipelineRun is the run started for it.
	// +optional
	PipelineRun string `json:"pipelineRun,omitempty"`
}

// UpgradeBuild is the build of a pool's image for a candidate release.
type UpgradeBuild struct {
	// release is the candidate release's version.
	Release string `json:"release"`
	// releaseImage is the candidate release's payload image.
	ReleaseImage string `json:"releaseImage"`
	// baseImage is the candidate release's OS image, the build's base.
	BaseImage string `json:"baseImage"`
	// inputsHash is the hash of the build's inputs: the same as the pool's inputs once the
	// upgrade has changed the ControllerConfig, so that build is the one promoted.
	InputsHash string `json:"inputsHash,omitempty"`
	// pipelineRun is the build's PipelineRun.
	// +optional
	PipelineRun string `json:"pipelineRun,omitempty"`
	// specSHA256 is the digest of the spec of that PipelineRun as created (generator.SpecDigest):
	// only a run with this spec, or the one the controller renders for these inputs now, is trusted.
	// +optional
	SpecSHA256 string `json:"specSHA256,omitempty"`
	// pendingSince is when these inputs were first seen, while the build waits for the quiet period.
	// +optional
	PendingSince *metav1.Time `json:"pendingSince,omitempty"`
	// image is the built and verified image, repository@sha256:digest.
	// +optional
	Image string `json:"image,omitempty"`
	// failure says why the build failed.
	// +optional
	Failure *BuildFailure `json:"failure,omitempty"`
}

// PoolHold is the controller's hold of a pool.
type PoolHold struct {
	// since is when the controller paused the pool.
	Since metav1.Time `json:"since"`
	// baseImage is the new base image the pool waits for.
	BaseImage string `json:"baseImage"`
	// pools are the MachineConfigPools held: the PoolImage's pool and the custom pools that run
	// its image because they also select its MachineConfig.
	// +optional
	Pools []string `json:"pools,omitempty"`
}

// PendingBuild is a change of inputs not built yet.
type PendingBuild struct {
	// inputsHash is the hash of the new inputs.
	InputsHash string `json:"inputsHash"`
	// since is when these inputs were first seen; the build starts once they stay unchanged for
	// the controller's quiet period.
	Since metav1.Time `json:"since"`
}

// BuildStatus describes one build (one PipelineRun).
type BuildStatus struct {
	// pipelineRun is the name of the build's PipelineRun, in the PoolImage's namespace.
	PipelineRun string `json:"pipelineRun,omitempty"`
	// inputsHash identifies the build's inputs; the same hash is never built twice.
	InputsHash string `json:"inputsHash,omitempty"`
	// retry is the value of the retry annotation this build was started for, if any.
	// +optional
	Retry string `json:"retry,omitempty"`
	// specSHA256 is the digest of the spec of the build's PipelineRun as created
	// (generator.SpecDigest): the controller promotes only what a run with the spec it rendered
	// produced.
	// +optional
	SpecSHA256 string `json:"specSHA256,omitempty"`
	// inputs summarises what went into the build and what changed against the promoted image.
	// +optional
	Inputs *BuildInputs `json:"inputs,omitempty"`
	// image is the built and verified image, as repository@sha256:digest.
	// +optional
	Image string `json:"image,omitempty"`
	// startTime is when the PipelineRun started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// completionTime is when the PipelineRun finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// failure says where and why the build failed, and how to read its logs.
	// +optional
	Failure *BuildFailure `json:"failure,omitempty"`
}

// BuildInputs summarises a build's inputs, without any secret material.
type BuildInputs struct {
	// baseImage is the base OS image, as repository@sha256:digest.
	BaseImage string `json:"baseImage,omitempty"`
	// extensionsImage is the extensions image available to the build.
	// +optional
	ExtensionsImage string `json:"extensionsImage,omitempty"`
	// arch is the architecture built.
	// +optional
	Arch string `json:"arch,omitempty"`
	// containerfileSHA256 is the sha256 of the admin's Containerfile content used.
	// +optional
	ContainerfileSHA256 string `json:"containerfileSHA256,omitempty"`
	// entitlements lists the entitlement material wired in, by kind and object name.
	// +optional
	Entitlements []string `json:"entitlements,omitempty"`
	// trustedCASHA256 is the sha256 of the additional trust bundle baked in, if any.
	// +optional
	TrustedCASHA256 string `json:"trustedCASHA256,omitempty"`
	// changed names the inputs that differ from the promoted image's (base image,
	// containerfile, ...); empty for the first build.
	// +optional
	Changed []string `json:"changed,omitempty"`
}

// BuildFailure points an admin at a failed build's task, step and logs.
type BuildFailure struct {
	// task is the failed pipeline task (fetch-base-digest, build, verify, promote).
	Task string `json:"task,omitempty"`
	// step is the failed step of that task (inject, build, push, ...).
	// +optional
	Step string `json:"step,omitempty"`
	// reason is Tekton's reason for the failure.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message is the tail of the failure message.
	// +optional
	Message string `json:"message,omitempty"`
	// logsCommand is the exact command that prints the failed step's logs.
	// +optional
	LogsCommand string `json:"logsCommand,omitempty"`
	// dashboardURL opens the failed step in the Tekton dashboard, when one is configured.
	// +optional
	DashboardURL string `json:"dashboardURL,omitempty"`
}

// PoolImageList is a list of PoolImages.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type PoolImageList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the PoolImages.
	Items []PoolImage `json:"items"`
}
