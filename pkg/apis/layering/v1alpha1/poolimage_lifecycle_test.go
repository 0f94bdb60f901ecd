package v1alpha1

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"knative.dev/pkg/apis"
)

func TestLifecycle(t *testing.T) {
	s := &PoolImageStatus{}
	s.InitializeConditions()
	for _, c := range []apis.ConditionType{ConditionReady, ConditionBuildSucceeded, ConditionPromoted} {
		if got := s.GetCondition(c); got == nil || got.Status != corev1.ConditionUnknown {
			t.Fatalf("after init, %s = %+v, want Unknown", c, got)
		}
	}

	s.LatestBuild = &BuildStatus{PipelineRun: "ocl-worker-1", Inputs: &BuildInputs{BaseImage: "b@sha256:1", Changed: []string{"baseImage"}}}
	s.MarkBuilding("ocl-worker-1")
	if c := s.GetCondition(ConditionBuildSucceeded); c.Reason != ReasonBuilding || !strings.Contains(c.Message, "ocl-worker-1") {
		t.Errorf("building: %+v", c)
	}

	s.MarkBuildFailed(&BuildFailure{Task: "build", Step: "build", Message: "RUN false: exit 1", LogsCommand: "tkn pipelinerun logs ocl-worker-1 -n ocl"})
	ready := s.GetCondition(ConditionReady)
	if ready.Status != corev1.ConditionFalse || ready.Reason != ReasonBuildFailed ||
		ready.Message != "task build, step build failed: RUN false: exit 1; logs: tkn pipelinerun logs ocl-worker-1 -n ocl" {
		t.Errorf("failed: Ready = %+v", ready)
	}
	if s.LatestBuild.Failure == nil || s.CurrentImage != "" {
		t.Errorf("failed: status = %+v", s)
	}

	s.MarkBuildSucceeded("r/os@sha256:2")
	s.MarkPromoted("r/os@sha256:2")
	if !s.IsReady() || s.CurrentImage != "r/os@sha256:2" || s.LatestBuild.Failure != nil || s.LatestBuild.Image != "r/os@sha256:2" {
		t.Errorf("promoted: status = %+v", s)
	}
	if s.CurrentInputs == nil || s.CurrentInputs.BaseImage != "b@sha256:1" || s.CurrentInputs.Changed != nil {
		t.Errorf("promoted: currentInputs = %+v", s.CurrentInputs)
	}
	if s.LatestBuild.Inputs.Changed == nil {
		t.Error("MarkPromoted changed the latest build's inputs")
	}

	s.MarkPromotionPaused("r/os@sha256:3")
	if c := s.GetCondition(ConditionReady); c.Status != corev1.ConditionFalse || c.Reason != ReasonPromotionPaused {
		t.Errorf("paused: Ready = %+v", c)
	}
	s.MarkReverted("the release's image")
	if !s.IsReady() || s.CurrentImage != "" || s.CurrentInputs != nil {
		t.Errorf("reverted: status = %+v", s)
	}
	s.MarkInvalid(ReasonInvalidSpec, "spec.imagePushSpec: %s", "no tag")
	if c := s.GetCondition(ConditionReady); c.Status != corev1.ConditionFalse || c.Message != "spec.imagePushSpec: no tag" {
		t.Errorf("invalid: Ready = %+v", c)
	}
}

func TestContainerfileFor(t *testing.T) {
	s := &PoolImageSpec{Containerfile: []Containerfile{{Arch: ArchARM64, Content: "arm"}, {Content: "any"}}}
	for arch, want := range map[Arch]string{ArchARM64: "arm", ArchAMD64: "any", ArchS390X: "any"} {
		if got, ok := s.ContainerfileFor(arch); !ok || got != want {
			t.Errorf("ContainerfileFor(%s) = %q, %v; want %q", arch, got, ok, want)
		}
	}
	s.Containerfile = s.Containerfile[:1]
	if _, ok := s.ContainerfileFor(ArchAMD64); ok {
		t.Error("ContainerfileFor(amd64) found content with only an arm64 entry")
	}
}

// UpToDate turns False when the base image moves past the promoted image, keeps the time it
// first did while the base moves again, does not touch Ready, and goes away on revert.
func TestMarkUpToDate(t *testing.T) {
	s := &PoolImageStatus{}
	s.InitializeConditions()
	s.MarkUpToDate("base@sha256:1")
	if s.GetCondition(ConditionUpToDate) != nil {
		t.Fatal("UpToDate set while no image is promoted")
	}
	s.CurrentImage = "r@sha256:a"
	s.CurrentInputs = &BuildInputs{BaseImage: "base@sha256:1"}
	s.MarkPromoted("r@sha256:a")
	s.MarkBuildSucceeded("r@sha256:a")
	s.MarkUpToDate("base@sha256:1")
	if c := s.GetCondition(ConditionUpToDate); !c.IsTrue() || c.Severity != apis.ConditionSeverityInfo || !s.OutOfDateSince().IsZero() {
		t.Fatalf("UpToDate = %+v, OutOfDateSince %v; want True (Info) and zero", c, s.OutOfDateSince())
	}
	s.MarkUpToDate("base@sha256:2")
	first := s.OutOfDateSince()
	if first.IsZero() || s.GetCondition(ConditionUpToDate).Reason != ReasonBaseImageChanged {
		t.Fatalf("UpToDate = %+v; want False, BaseImageChanged", s.GetCondition(ConditionUpToDate))
	}
	if !s.IsReady() {
		t.Error("an out-of-date image made Ready false: UpToDate is informational")
	}
	for i := range s.Conditions { // pretend the change was seen an hour ago
		if s.Conditions[i].Type == ConditionUpToDate {
			s.Conditions[i].LastTransitionTime.Inner.Time = first.Add(-time.Hour)
		}
	}
	s.MarkUpToDate("base@sha256:3")
	if got := s.OutOfDateSince(); !got.Equal(first.Add(-time.Hour)) {
		t.Errorf("OutOfDateSince after a second base change = %v, want the first change %v", got, first.Add(-time.Hour))
	}
	if msg := s.GetCondition(ConditionUpToDate).Message; !strings.Contains(msg, "base@sha256:3") {
		t.Errorf("message %q does not name the new base", msg)
	}
	s.MarkReverted("the release's image")
	if s.GetCondition(ConditionUpToDate) != nil {
		t.Error("UpToDate left after revert")
	}
}
