package generator_test

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

func examplePoolImage() *v1alpha1.PoolImage {
	return &v1alpha1.PoolImage{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "ocl-pipelines"},
		Spec: v1alpha1.PoolImageSpec{
			MachineConfigPool: v1alpha1.MachineConfigPoolReference{Name: "worker"},
			Containerfile:     []v1alpha1.Containerfile{{Content: "FROM configs AS final\nRUN echo hi > /etc/hi\n"}},
			ImagePushSpec:     "registry.example.com/os/worker:latest",
		},
	}
}

const exampleBase = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:1111111111111111111111111111111111111111111111111111111111111111"

// Render turns a PoolImage and the cluster's base image into the PipelineRun to create.
func ExampleRender() {
	pr, err := generator.Render(examplePoolImage(), generator.Inputs{BaseImage: exampleBase})
	if err != nil {
		panic(err)
	}
	pl, err := generator.RenderPipeline(examplePoolImage(), generator.Inputs{BaseImage: exampleBase})
	if err != nil {
		panic(err)
	}
	// pr embeds pl's spec and carries its name; create pl too, for the dashboard's Pipelines page.
	fmt.Println(pr.Name, pr.Labels["tekton.dev/pipeline"] == pl.Name)
	for _, t := range pl.Spec.Tasks {
		fmt.Print(t.Name, " ")
	}
	fmt.Println()
	// Output:
	// ocl-worker-85abd581ed true
	// fetch-base-digest build verify promote
}

// InputsHash identifies a build: the same inputs give the same hash, so they are built once.
func ExampleInputsHash() {
	pi := examplePoolImage()
	before, _ := generator.InputsHash(pi, generator.Inputs{BaseImage: exampleBase})
	pi.Status.CurrentImage = "registry.example.com/os/worker@sha256:..." // status is not an input
	same, _ := generator.InputsHash(pi, generator.Inputs{BaseImage: exampleBase})
	pi.Spec.Containerfile[0].Content += "RUN echo more >> /etc/hi\n"
	changed, _ := generator.InputsHash(pi, generator.Inputs{BaseImage: exampleBase})
	fmt.Println(before == same, before == changed)
	// Output: true false
}

// Render reports bad input as a field error naming the path and the fix.
func ExampleRender_invalid() {
	pi := examplePoolImage()
	pi.Spec.ImagePushSpec = "registry.example.com/os/worker@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	_, err := generator.Render(pi, generator.Inputs{BaseImage: exampleBase})
	fmt.Println(err)
	// Output:
	// invalid value: "registry.example.com/os/worker@sha256:1111111111111111111111111111111111111111111111111111111111111111": must be a tag, not a digest: spec.imagePushSpec
	// drop the @sha256:... part; each build is pushed under its inputs hash and the tag is moved on promotion
}

// ChangedInputs tells an admin why a build happened.
func ExampleChangedInputs() {
	pi := examplePoolImage()
	promoted, _ := generator.Summary(pi, generator.Inputs{BaseImage: exampleBase})
	upgraded := "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	next, _ := generator.Summary(pi, generator.Inputs{BaseImage: upgraded})
	fmt.Println(generator.ChangedInputs(promoted, next))
	// Output: [baseImage]
}
