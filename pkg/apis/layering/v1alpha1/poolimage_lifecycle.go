package v1alpha1

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// Condition types of a PoolImage. Ready is the top-level condition: it is True when the latest
// inputs are built and promoted (or recorded, when promotion is paused).
const (
	// ConditionReady summarises the others.
	ConditionReady = apis.ConditionReady
	// ConditionBuildSucceeded is True when the build of the current inputs succeeded, False when
	// it failed or the inputs are invalid, Unknown while it runs.
	ConditionBuildSucceeded apis.ConditionType = "BuildSucceeded"
	// ConditionPromoted is True when the pool's MachineConfig carries the built image.
	ConditionPromoted apis.ConditionType = "Promoted"
	// ConditionUpToDate is True when the promoted image is built on the base image the pool's
	// inputs resolve to now (the release's, unless spec.baseImage pins one), and False (reason
	// BaseImageChanged) from the moment the base image moves past it until the rebuilt image is
	// promoted: its lastTransitionTime says how long the pool has run an OS older than its release.
	// It is informational (severity Info) and does not gate Ready; it is absent while no image is
	// promoted.
	ConditionUpToDate apis.ConditionType = "UpToDate"
	// ConditionPoolHeld is True while the controller holds the pool paused for a rebuild on a
	// new base image (upgradeStrategy HoldPool): reason HeldForRebuild, HoldTimeout once the hold
	// outlasts its limit, or AwaitingRender between the promotion and the MCO's rendering of it.
	// False when the pool is paused by someone else (PausedByAdmin) or was unpaused by someone
	// while held (ReleasedByAdmin): the controller leaves it alone. Informational; absent when
	// no hold applies.
	ConditionPoolHeld apis.ConditionType = "PoolHeld"
	// ConditionFirstBootPullable is False when a new node could not pull the pool's image at
	// first boot (before cluster DNS, with the cluster's global pull secret): the push spec is an
	// in-cluster Service (reason InClusterRegistry), or the global pull secret has no credentials
	// for its registry (NoCredentials). Unknown when the global pull secret cannot be read.
	// Informational: builds and promotion go on, existing nodes are not affected.
	ConditionFirstBootPullable apis.ConditionType = "FirstBootPullable"
	// ConditionUpgradeReady says whether the pool's image builds on the release the cluster is
	// about to upgrade to: True once the image for it is built and verified (the upgrade promotes
	// it at once), False when that build failed (fix the Containerfile before upgrading),
	// Unknown while it runs or when the release cannot be read. Informational; absent when no
	// upgrade is offered or targeted.
	ConditionUpgradeReady apis.ConditionType = "UpgradeReady"
)

// Reasons used on PoolImage conditions.
const (
	ReasonInvalidSpec          = "InvalidSpec"
	ReasonInputsUnresolved     = "InputsUnresolved"
	ReasonBuilding             = "Building"
	ReasonBuildSucceeded       = "BuildSucceeded"
	ReasonBuildFailed          = "BuildFailed"
	ReasonPromoted             = "Promoted"
	ReasonPromotionPaused      = "PromotionPaused"
	ReasonReverted             = "Reverted"
	ReasonAwaitingBuild        = "AwaitingBuild"
	ReasonQuietPeriod          = "QuietPeriod"
	ReasonPromotionFailed      = "PromotionFailed"
	ReasonSuperseded           = "Superseded"
	ReasonBuildStarted         = "BuildStarted"
	ReasonBaseImageCurrent     = "BaseImageCurrent"
	ReasonBaseImageChanged     = "BaseImageChanged"
	ReasonHeldForRebuild       = "HeldForRebuild"
	ReasonHoldTimeout          = "HoldTimeout"
	ReasonAwaitingRender       = "AwaitingRender"
	ReasonPausedByAdmin        = "PausedByAdmin"
	ReasonReleasedByAdmin      = "ReleasedByAdmin"
	ReasonPoolHeld             = "PoolHeld"
	ReasonPoolReleased         = "PoolReleased"
	ReasonPullable             = "Pullable"
	ReasonInClusterRegistry    = "InClusterRegistry"
	ReasonNoCredentials        = "NoCredentials"
	ReasonPullSecretUnknown    = "PullSecretUnknown"
	ReasonFirstBootNotPullable = "FirstBootNotPullable"
	ReasonPrebuilding          = "Prebuilding"
	ReasonPrebuildSucceeded    = "PrebuildSucceeded"
	ReasonPrebuildFailed       = "PrebuildFailed"
	ReasonReleaseUnknown       = "ReleaseUnknown"
	ReasonRunIgnored           = "RunIgnored"
	ReasonPipelineEdited       = "PipelineEdited"
	ReasonRenderDegraded       = "RenderDegraded"
	ReasonOverridden           = "Overridden"
	ReasonHoldReleased         = "HoldReleased"
	ReasonRetryScheduled       = "RetryScheduled"
	ReasonMasterNotHeld        = "MasterNotHeld"
)

var poolImageCondSet = apis.NewLivingConditionSet(ConditionBuildSucceeded, ConditionPromoted)

// GetConditionSet returns the condition set of PoolImage.
func (*PoolImage) GetConditionSet() apis.ConditionSet { return poolImageCondSet }

// GetGroupVersionKind returns the GroupVersionKind of PoolImage.
func (*PoolImage) GetGroupVersionKind() schema.GroupVersionKind {
	return SchemeGroupVersion.WithKind("PoolImage")
}

// GetStatus returns the duck status of the PoolImage.
func (p *PoolImage) GetStatus() *duckv1.Status { return &p.Status.Status }

// GetCondition returns the condition of type t, or nil.
func (s *PoolImageStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return poolImageCondSet.Manage(s).GetCondition(t)
}

// IsReady reports whether the Ready condition is True.
func (s *PoolImageStatus) IsReady() bool {
	return poolImageCondSet.Manage(s).IsHappy()
}

// InitializeConditions sets unset conditions to Unknown.
func (s *PoolImageStatus) InitializeConditions() {
	poolImageCondSet.Manage(s).InitializeConditions()
}

// MarkInvalid records a spec or input error: no build runs until it is fixed. The message must
// name the field or object and the fix.
func (s *PoolImageStatus) MarkInvalid(reason, messageFormat string, args ...interface{}) {
	poolImageCondSet.Manage(s).MarkFalse(ConditionBuildSucceeded, reason, messageFormat, args...)
}

// MarkQuietPeriod records that the inputs changed and their build starts at start unless they
// change again first.
func (s *PoolImageStatus) MarkQuietPeriod(start time.Time) {
	poolImageCondSet.Manage(s).MarkUnknown(ConditionBuildSucceeded, ReasonQuietPeriod,
		"the inputs changed; their build starts at %s unless they change again", start.UTC().Format(time.RFC3339))
}

// MarkBuilding records that build is running in the named PipelineRun.
func (s *PoolImageStatus) MarkBuilding(pipelineRun string) {
	poolImageCondSet.Manage(s).MarkUnknown(ConditionBuildSucceeded, ReasonBuilding,
		"PipelineRun %s is building the image", pipelineRun)
}

// MarkBuildSucceeded records a successful build of image (repository@sha256:digest).
func (s *PoolImageStatus) MarkBuildSucceeded(image string) {
	if s.LatestBuild != nil {
		s.LatestBuild.Image = image
		s.LatestBuild.Failure = nil
	}
	poolImageCondSet.Manage(s).MarkTrueWithReason(ConditionBuildSucceeded, ReasonBuildSucceeded,
		"built and verified %s", image)
}

// MarkBuildFailed records a failed build; the promoted image is left as it was.
func (s *PoolImageStatus) MarkBuildFailed(f *BuildFailure) {
	if s.LatestBuild != nil {
		s.LatestBuild.Failure = f
	}
	msg := "build failed"
	if f != nil {
		msg = f.Summary("; logs: ", "")
	}
	poolImageCondSet.Manage(s).MarkFalse(ConditionBuildSucceeded, ReasonBuildFailed, "%s", msg)
}

// Summary says which task and step failed and why, then the logs command between before and
// after, e.g. "task build, step push failed: …; logs: tkn pipelinerun logs …".
func (f *BuildFailure) Summary(before, after string) string {
	msg := "build failed"
	if f.Task != "" {
		msg = "task " + f.Task
		if f.Step != "" {
			msg += ", step " + f.Step
		}
		msg += " failed"
	}
	if f.Message != "" {
		msg += ": " + f.Message
	}
	if f.LogsCommand != "" {
		msg += before + f.LogsCommand + after
	}
	return msg
}

// MarkPromoted records that image is the pool's OS image.
func (s *PoolImageStatus) MarkPromoted(image string) {
	s.CurrentImage = image
	if s.LatestBuild != nil {
		s.CurrentInputsHash = s.LatestBuild.InputsHash
		s.CurrentInputs = s.LatestBuild.Inputs.DeepCopy()
		if s.CurrentInputs != nil {
			s.CurrentInputs.Changed = nil
		}
	}
	poolImageCondSet.Manage(s).MarkTrueWithReason(ConditionPromoted, ReasonPromoted,
		"the pool's MachineConfig sets osImageURL to %s", image)
}

// MarkKeptAfterFailure records on Promoted that the build of the current inputs failed, so its
// image is not promoted: the pool keeps the image promoted before, if any.
func (s *PoolImageStatus) MarkKeptAfterFailure() {
	if s.CurrentImage == "" {
		poolImageCondSet.Manage(s).MarkFalse(ConditionPromoted, ReasonBuildFailed,
			"no image promoted: the build failed (see BuildSucceeded); the pool runs the release's image")
		return
	}
	poolImageCondSet.Manage(s).MarkFalse(ConditionPromoted, ReasonBuildFailed,
		"the pool keeps %s: the build of the new inputs failed (see BuildSucceeded)", s.CurrentImage)
}

// MarkAwaitingRender records that the pool's MachineConfig carries the current image but the
// MCO has not rendered it into the pool's configuration yet.
func (s *PoolImageStatus) MarkAwaitingRender(pool, rendered, renderedImage string) {
	poolImageCondSet.Manage(s).MarkUnknown(ConditionPromoted, ReasonAwaitingRender,
		"MachineConfig carries %s; the MCO has not rendered it into MachineConfigPool %s's configuration yet (%s has %s)",
		s.CurrentImage, pool, rendered, renderedImage)
}

// MarkRenderDegraded records that the MCO cannot render the pool's configuration, with the MCO's
// message: the pool does not run the promoted image.
func (s *PoolImageStatus) MarkRenderDegraded(pool, message string) {
	poolImageCondSet.Manage(s).MarkFalse(ConditionPromoted, ReasonRenderDegraded,
		"MachineConfigPool %s is RenderDegraded and does not run %s: %s", pool, s.CurrentImage, message)
}

// MarkOverridden records that another MachineConfig wins the MCO's merge for the pool's
// osImageURL, so the pool runs its image, not ours.
func (s *PoolImageStatus) MarkOverridden(pool, machineConfig, image string) {
	poolImageCondSet.Manage(s).MarkFalse(ConditionPromoted, ReasonOverridden,
		"MachineConfig %s sorts after ours in MachineConfigPool %s and sets osImageURL %s: the pool runs that image, not %s; remove its osImageURL or the MachineConfig",
		machineConfig, pool, image, s.CurrentImage)
}

// MarkPromotionFailed records that a built image could not be promoted; the message names the
// object in the way and the fix.
func (s *PoolImageStatus) MarkPromotionFailed(messageFormat string, args ...interface{}) {
	poolImageCondSet.Manage(s).MarkFalse(ConditionPromoted, ReasonPromotionFailed, messageFormat, args...)
}

// MarkPromotionPaused records that a built image waits for promotion.paused to be lifted.
func (s *PoolImageStatus) MarkPromotionPaused(image string) {
	poolImageCondSet.Manage(s).MarkFalse(ConditionPromoted, ReasonPromotionPaused,
		"%s is built and verified; set spec.promotion.paused to false to roll it out", image)
}

// MarkAwaitingBuild records that the current inputs are not promoted yet because their build is
// pending or running; the pool keeps its current image meanwhile.
func (s *PoolImageStatus) MarkAwaitingBuild() {
	if s.CurrentImage == "" {
		poolImageCondSet.Manage(s).MarkUnknown(ConditionPromoted, ReasonAwaitingBuild,
			"no image promoted yet; the pool runs the release's image until the build succeeds")
		return
	}
	poolImageCondSet.Manage(s).MarkUnknown(ConditionPromoted, ReasonAwaitingBuild,
		"the pool keeps %s until the build of the new inputs succeeds", s.CurrentImage)
}

// MarkUpToDate records whether the promoted image is built on base, the base image the pool's
// inputs resolve to now. It keeps the condition's lastTransitionTime while the answer does not
// change, and removes the condition while no image is promoted.
func (s *PoolImageStatus) MarkUpToDate(base string) {
	m := poolImageCondSet.Manage(s)
	if s.CurrentImage == "" || s.CurrentInputs == nil {
		_ = m.ClearCondition(ConditionUpToDate)
		return
	}
	if s.CurrentInputs.BaseImage == base {
		m.SetCondition(apis.Condition{Type: ConditionUpToDate, Status: corev1.ConditionTrue, Severity: apis.ConditionSeverityInfo,
			Reason: ReasonBaseImageCurrent, Message: fmt.Sprintf("%s is built on the current base image %s", s.CurrentImage, base)})
		return
	}
	prev := m.GetCondition(ConditionUpToDate)
	m.SetCondition(apis.Condition{Type: ConditionUpToDate, Status: corev1.ConditionFalse, Severity: apis.ConditionSeverityInfo,
		Reason: ReasonBaseImageChanged, Message: fmt.Sprintf(
			"the pool runs %s, built on %s; the base image is now %s and the pool's image is rebuilt on it (see BuildSucceeded)",
			s.CurrentImage, s.CurrentInputs.BaseImage, base)})
	if prev != nil && prev.IsFalse() {
		// Out of date since the first change, also when the base image moved again since.
		for i := range s.Conditions {
			if s.Conditions[i].Type == ConditionUpToDate {
				s.Conditions[i].LastTransitionTime = prev.LastTransitionTime
			}
		}
	}
}

// OutOfDateSince returns when the base image moved past the promoted image, or the zero time
// when the pool's image is up to date (or none is promoted).
func (s *PoolImageStatus) OutOfDateSince() time.Time {
	c := s.GetCondition(ConditionUpToDate)
	if c == nil || !c.IsFalse() {
		return time.Time{}
	}
	return c.LastTransitionTime.Inner.Time
}

// MarkReverted records that the pool was handed back: after says what it runs now (the
// release's image, or the image another PoolImage's MachineConfig gives it).
func (s *PoolImageStatus) MarkReverted(after string) {
	s.CurrentImage = ""
	s.CurrentInputs = nil
	s.CurrentInputsHash = ""
	s.Pending = nil
	_ = poolImageCondSet.Manage(s).ClearCondition(ConditionUpToDate)
	poolImageCondSet.Manage(s).MarkTrueWithReason(ConditionPromoted, ReasonReverted,
		"spec.revert is true: the pool runs %s", after)
}

// MarkPoolHeld records that the controller holds the pool paused, for reason (HeldForRebuild,
// HoldTimeout or AwaitingRender), with a message that says what the admin can do.
func (s *PoolImageStatus) MarkPoolHeld(reason, format string, args ...any) {
	severity := apis.ConditionSeverityInfo
	if reason == ReasonHoldTimeout {
		severity = apis.ConditionSeverityWarning
	}
	poolImageCondSet.Manage(s).SetCondition(apis.Condition{Type: ConditionPoolHeld, Status: corev1.ConditionTrue,
		Severity: severity, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// MarkPausedByAdmin records that the pool is paused by someone other than the controller, which
// therefore neither holds nor releases it.
func (s *PoolImageStatus) MarkPausedByAdmin(pool string) {
	s.Hold = nil
	poolImageCondSet.Manage(s).SetCondition(apis.Condition{Type: ConditionPoolHeld, Status: corev1.ConditionFalse,
		Severity: apis.ConditionSeverityInfo, Reason: ReasonPausedByAdmin,
		Message: fmt.Sprintf("MachineConfigPool %s is paused, not by this controller: it leaves the pool as it is; unpause it to roll out the image", pool)})
}

// MarkPoolReleasedByAdmin records that someone unpaused the pool the controller held: the
// controller does not pause it again for the same base image.
func (s *PoolImageStatus) MarkPoolReleasedByAdmin(pool string) {
	poolImageCondSet.Manage(s).SetCondition(apis.Condition{Type: ConditionPoolHeld, Status: corev1.ConditionFalse,
		Severity: apis.ConditionSeverityInfo, Reason: ReasonReleasedByAdmin,
		Message: fmt.Sprintf("MachineConfigPool %s was unpaused by someone else while held: its nodes take the release's configuration on their current image now, and the rebuilt image when it is promoted", pool)})
}

// MarkMasterNotHeld records that the pool is master, which the controller never pauses.
func (s *PoolImageStatus) MarkMasterNotHeld() {
	poolImageCondSet.Manage(s).SetCondition(apis.Condition{Type: ConditionPoolHeld, Status: corev1.ConditionFalse,
		Severity: apis.ConditionSeverityInfo, Reason: ReasonMasterNotHeld,
		Message: "MachineConfigPool master is never paused: the MCO's operator does not finish a cluster upgrade while master is paused. Its nodes take the release's configuration now and the rebuilt image once promoted (built ahead of the upgrade when the release is offered, so usually at once)"})
}

// ClearPoolHeld records that no hold applies.
func (s *PoolImageStatus) ClearPoolHeld() {
	s.Hold = nil
	_ = poolImageCondSet.Manage(s).ClearCondition(ConditionPoolHeld)
}

// MarkFirstBootPullable sets FirstBootPullable: status True (reason Pullable), False (reason
// InClusterRegistry or NoCredentials, severity Warning) or Unknown (PullSecretUnknown).
func (s *PoolImageStatus) MarkFirstBootPullable(status corev1.ConditionStatus, reason, format string, args ...any) {
	s.markInformational(ConditionFirstBootPullable, status, reason, fmt.Sprintf(format, args...))
}

// markInformational sets a condition that does not gate Ready: severity Warning when False,
// Info otherwise.
func (s *PoolImageStatus) markInformational(t apis.ConditionType, status corev1.ConditionStatus, reason, msg string) {
	severity := apis.ConditionSeverityInfo
	if status == corev1.ConditionFalse {
		severity = apis.ConditionSeverityWarning
	}
	poolImageCondSet.Manage(s).SetCondition(apis.Condition{Type: t, Status: status, Severity: severity, Reason: reason, Message: msg})
}

// MarkUpgradeReady sets UpgradeReady: True (PrebuildSucceeded), False (PrebuildFailed, severity
// Warning) or Unknown (Prebuilding, ReleaseUnknown).
func (s *PoolImageStatus) MarkUpgradeReady(status corev1.ConditionStatus, reason, format string, args ...any) {
	s.markInformational(ConditionUpgradeReady, status, reason, fmt.Sprintf(format, args...))
}

// ClearUpgradeReady records that no upgrade is offered or targeted.
func (s *PoolImageStatus) ClearUpgradeReady() {
	s.Upgrade = nil
	_ = poolImageCondSet.Manage(s).ClearCondition(ConditionUpgradeReady)
}
