package v1alpha1_test

import (
	"fmt"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// A failed build leaves the promoted image alone and points the admin at the failed step's logs.
func ExamplePoolImageStatus_MarkBuildFailed() {
	s := &v1alpha1.PoolImageStatus{CurrentImage: "registry.example.com/os/worker@sha256:aaaa"}
	s.InitializeConditions()
	s.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: "ocl-worker-2d5bc087b9"}
	s.MarkBuildFailed(&v1alpha1.BuildFailure{
		Task:        "build",
		Step:        "build",
		Reason:      "Failed",
		Message:     "RUN dnf install nosuchpkg: exit status 1",
		LogsCommand: "tkn pipelinerun logs ocl-worker-2d5bc087b9 -n ocl-pipelines --task build",
	})
	ready := s.GetCondition(v1alpha1.ConditionReady)
	fmt.Println(ready.Status, ready.Reason)
	fmt.Println(ready.Message)
	fmt.Println(s.CurrentImage)
	// Output:
	// False BuildFailed
	// task build, step build failed: RUN dnf install nosuchpkg: exit status 1; logs: tkn pipelinerun logs ocl-worker-2d5bc087b9 -n ocl-pipelines --task build
	// registry.example.com/os/worker@sha256:aaaa
}

// A cluster upgrade moves the base image past the promoted image: UpToDate turns False (it does
// not gate Ready) and OutOfDateSince says since when, until the rebuilt image is promoted.
func ExamplePoolImageStatus_MarkUpToDate() {
	st := &v1alpha1.PoolImageStatus{}
	st.InitializeConditions()
	st.LatestBuild = &v1alpha1.BuildStatus{InputsHash: "h1", Inputs: &v1alpha1.BuildInputs{BaseImage: "quay.io/rhcos@sha256:1111"}}
	st.MarkBuildSucceeded("registry.example.com/os/worker@sha256:aaaa")
	st.MarkPromoted("registry.example.com/os/worker@sha256:aaaa")
	st.MarkUpToDate("quay.io/rhcos@sha256:1111")
	fmt.Println(st.GetCondition(v1alpha1.ConditionUpToDate).Status, st.IsReady())

	st.MarkUpToDate("quay.io/rhcos@sha256:2222") // the release's base image changed
	c := st.GetCondition(v1alpha1.ConditionUpToDate)
	fmt.Println(c.Status, c.Reason, st.IsReady(), !st.OutOfDateSince().IsZero())
	// Output:
	// True true
	// False BaseImageChanged true true
}
