//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// TestBurstBuildsOnce runs with the shipped quiet period (config/400-config-ocl-pipelines.yaml):
// a burst of Containerfile edits seconds apart, as an admin fixing a typo makes, gives one
// PipelineRun, of the last edit, started no earlier than the quiet period after it; the image is
// promoted. Every other test sets quiet-period 0s (noQuietPeriod says why).
func TestBurstBuildsOnce(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-burst"
	quiet, err := time.ParseDuration(shippedConfig(t, "quiet-period"))
	if err != nil || quiet <= 0 {
		t.Fatalf("the shipped quiet period %v (%v): this test needs a positive one", quiet, err)
	}
	setConfig(t, map[string]string{"quiet-period": quiet.String()})
	newNamespace(t, ns)
	createPushSecret(t, ns, pushAuth())
	content := func(i int) string {
		return fmt.Sprintf("FROM configs AS final\nRUN echo edit-%d > /etc/burst && ostree container commit\n", i)
	}
	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile(content(0)), builders.WithPushSpec(os.Getenv("OCL_E2E_REGISTRY")+"/os/burst:latest"), builders.WithPushSecret("push"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePoolImage(t, ns) })
	// Four more edits, 2 s apart: the whole burst lasts less than the quiet period, so no edit's
	// quiet period ends before the next edit.
	var last time.Time
	for i := 1; i <= 4; i++ {
		time.Sleep(2 * time.Second) // the admin's pace between edits, not a synchronization
		edit(t, ns, content(i))
		last = time.Now()
	}
	image := promotedImage(t, ns, "the burst's last edit built and promoted")
	runs, err := poolRuns(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	got := poolImage(t, ns)
	if len(runs) != 1 || runs[0].Name != generator.RunName("worker", got.Status.CurrentInputsHash) {
		names := []string{}
		for _, r := range runs {
			names = append(names, r.Name)
		}
		t.Fatalf("the burst of 5 edits made %d runs %v, want one, of the last edit (inputs %s)", len(runs), names, got.Status.CurrentInputsHash)
	}
	if started := runs[0].CreationTimestamp.Time; started.Before(last.Add(quiet).Add(-time.Second)) {
		t.Errorf("the run started at %s, before the quiet period %s after the last edit (%s)", started, quiet, last)
	}
	if got.Spec.Containerfile[0].Content != content(4) || got.Status.CurrentImage != image {
		t.Errorf("promoted %s for %q, want the last edit", image, got.Spec.Containerfile[0].Content)
	}
}
