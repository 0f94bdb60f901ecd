// Package layering holds the API group name of ocl-pipelines' layering API.
package layering

// GroupName is the API group of PoolImage.
const GroupName = "layering.ocl-pipelines.dev"

// Well-known label and annotation keys set on objects the project creates.
const (
	// PoolLabel names the MachineConfigPool a PipelineRun, MachineConfig or image belongs to.
	PoolLabel = GroupName + "/pool"
	// PoolImageLabel names the PoolImage that caused a PipelineRun.
	PoolImageLabel = GroupName + "/poolimage"
	// InputsHashLabel carries the inputs hash of a build (see generator.InputsHash).
	InputsHashLabel = GroupName + "/inputs-hash"
	// TriggerAnnotation says why a build was started (spec, upgrade, retry, prebuild).
	TriggerAnnotation = GroupName + "/trigger"
	// RetryAnnotation, set on a PoolImage to any new value, re-runs a build with the same inputs.
	RetryAnnotation = GroupName + "/retry"
	// ReleaseAnnotation, on the PipelineRun of a prebuild, is the version of the release the
	// cluster is about to upgrade to, whose OS images the run builds on.
	ReleaseAnnotation = GroupName + "/release"
	// PausedByAnnotation, on a MachineConfigPool, names the PoolImage (namespace/name) whose
	// controller paused the pool for a rebuild on a new base image; the controller only ever
	// unpauses a pool that carries it.
	PausedByAnnotation = GroupName + "/paused-by"
	// PausedForAnnotation, next to PausedByAnnotation, is the base image the pool waits for.
	PausedForAnnotation = GroupName + "/paused-for"
	// ManagedByValue is the value of app.kubernetes.io/managed-by on objects this project creates.
	ManagedByValue = "ocl-pipelines"
)
