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
	// DescriptionAnnotation, on a PipelineRun, says in one line what it builds and why
	// (generator.RunDescription): the dashboard and `tkn pipelinerun describe` show it.
	DescriptionAnnotation = GroupName + "/description"
	// RetryAnnotation, set on a PoolImage to any new value, re-runs a build with the same inputs.
	RetryAnnotation = GroupName + "/retry"
	// RetryHonouredAnnotation, on a PoolImage, is the last value of RetryAnnotation the controller
	// honoured (it writes it; status.retry says the same, but a status can be overwritten by a
	// reconcile that read an older copy).
	RetryHonouredAnnotation = GroupName + "/retry-honoured"
	// ReleaseAnnotation, on the PipelineRun of a prebuild, is the version of the release the
	// cluster is about to upgrade to, whose OS images the run builds on.
	ReleaseAnnotation = GroupName + "/release"
	// PausedByAnnotation, on a MachineConfigPool, names the PoolImage (namespace/name) whose
	// controller paused the pool for a rebuild on a new base image; the controller only ever
	// unpauses a pool that carries it.
	PausedByAnnotation = GroupName + "/paused-by"
	// PausedForAnnotation, next to PausedByAnnotation, is the base image the pool waits for.
	PausedForAnnotation = GroupName + "/paused-for"
	// ReportedAnnotation, on a PipelineRun, is "<uid>/<outcome>" once the controller has reported
	// the run's outcome (succeeded, failed, ignored) with an event and a metric. It is written
	// with the run's resourceVersion as a precondition, so each outcome is reported once, also
	// when several reconciles see the run finish; a copy of the run (the dashboard's re-run) has
	// another uid and is reported on its own.
	ReportedAnnotation = GroupName + "/reported"
	// SpecDigestAnnotation is the key, in status.annotations of the controller's cached copy of
	// a PipelineRun, of generator.SpecDigest of the run's spec as stored; the informer transform
	// sets it before it drops the spec. It lives in the status, which only the status subresource
	// (Tekton) writes, so the transform can tell a copy it trimmed (client-go may transform an
	// object twice: a watch-list's initial objects go through it once more at Replace) from an
	// object anyone created.
	SpecDigestAnnotation = GroupName + "/spec-sha256"
	// PipelineUsedAnnotation, on a Pipeline the controller created, is when it last created a
	// run labelled with its name (RFC 3339, refreshed at most every few minutes): it deletes only
	// Pipelines no run is labelled with and none was created of for an hour.
	PipelineUsedAnnotation = GroupName + "/last-used"
	// PausedSinceAnnotation, next to PausedByAnnotation, is when the controller paused the pool
	// (RFC 3339): the hold's bound does not depend on the PoolImage's status alone.
	PausedSinceAnnotation = GroupName + "/paused-since"
	// ReleasedForAnnotation, on a MachineConfigPool, is the base image for which an admin
	// unpaused the pool while the controller held it: the controller does not pause the pool
	// again for that base image.
	ReleasedForAnnotation = GroupName + "/released-for"
	// HoldFieldManager is the field manager of the controller's writes of a pool's spec.paused.
	// The pool's managedFields then say whether the controller made the pause in place: an
	// admin who pauses the pool again (even after unpausing it) owns spec.paused, and the
	// controller leaves that pause alone.
	HoldFieldManager = "ocl-pipelines-hold"
	// ManagedByValue is the value of app.kubernetes.io/managed-by on objects this project creates.
	ManagedByValue = "ocl-pipelines"
)

// Annotations on the MachineConfig that promotes a PoolImage's image, naming the PoolImage.
const (
	// MachineConfigPoolImageNamespaceAnnotation is the PoolImage's namespace.
	MachineConfigPoolImageNamespaceAnnotation = GroupName + "/poolimage-namespace"
	// MachineConfigPoolImageNameAnnotation is the PoolImage's name.
	MachineConfigPoolImageNameAnnotation = GroupName + "/poolimage-name"
	// MachineConfigInputsHashAnnotation is the inputs hash of the promoted image.
	MachineConfigInputsHashAnnotation = GroupName + "/inputs-hash"
	// MachineConfigBaseImageAnnotation is the base image the promoted image is built on.
	MachineConfigBaseImageAnnotation = GroupName + "/base-image"
	// MachineConfigArchAnnotation is the architecture the promoted image is built for.
	MachineConfigArchAnnotation = GroupName + "/arch"
)
