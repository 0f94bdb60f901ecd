//go:build e2e

package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// TestDeletedRunIsNotRebuilt deletes the PipelineRun of a running build: the status says so
// (BuildSucceeded=False, PipelineRunDeleted, the retry annotation as the fix), no run is started
// on the controller's own, and setting the retry annotation starts one.
func TestDeletedRunIsNotRebuilt(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-deleted-run"
	noQuietPeriod(t)
	newNamespace(t, ns)
	createPushSecret(t, ns, []byte(`{"auths":{}}`))
	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile("FROM configs AS final\nRUN sleep 600\n"), builders.WithPushSpec(os.Getenv("OCL_E2E_REGISTRY")+"/os/deleted:latest"), builders.WithPushSecret("push"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var run string
	eventually(t, ns, "a running build", 2*time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || got.Status.LatestBuild == nil || got.Status.LatestBuild.PipelineRun == "" {
			return false, err
		}
		run = got.Status.LatestBuild.PipelineRun
		pod, err := clients.kube.CoreV1().Pods(ns).Get(ctx, run+"-build-pod", metav1.GetOptions{})
		return err == nil && pod.Status.Phase == corev1.PodRunning, nil
	})
	if err := clients.tekton.TektonV1().PipelineRuns(ns).Delete(ctx, run, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ns, "BuildSucceeded=False, PipelineRunDeleted", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || got.Status.LatestBuild == nil || got.Status.LatestBuild.Failure == nil {
			return false, err
		}
		return got.Status.LatestBuild.Failure.Reason == "PipelineRunDeleted", nil
	})
	// The reconcile that recorded the deletion would have created a new run first.
	if runs, err := poolRuns(ctx, ns); err != nil || len(runs) != 0 {
		t.Fatalf("after the deletion the pool has %d runs (%v), want none until a retry", len(runs), err)
	}
	if c := poolImage(t, ns).Status.GetCondition(v1alpha1.ConditionBuildSucceeded); !c.IsFalse() {
		t.Errorf("BuildSucceeded = %+v, want False", c)
	}

	// A retry starts the same inputs again.
	setRetry(t, ns, "e2e-1")
	eventually(t, ns, "the retry's run", time.Minute, func(ctx context.Context) (bool, error) {
		runs, err := poolRuns(ctx, ns)
		return err == nil && len(runs) == 1 && runs[0].Annotations[layering.RetryAnnotation] == "e2e-1", err
	})
	// Clean up: the PoolImage (its finalizer reverts nothing: nothing was promoted) and the
	// sleeping retry (runs outlive their PoolImage, per retention).
	if err := clients.layering.LayeringV1alpha1().PoolImages(ns).Delete(ctx, "worker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := clients.tekton.TektonV1().PipelineRuns(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ns, "the PoolImage deleted", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// TestFetchFailureReport: a base image that does not exist fails fetch-base-digest; the build
// task is skipped, so the report that reads its LAST_STEP result cannot run and report-no-build
// reports instead, naming the task, its step and the logs command. Nothing is promoted.
func TestFetchFailureReport(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-fetch-failure"
	noQuietPeriod(t)
	newNamespace(t, ns)
	createPushSecret(t, ns, []byte(`{"auths":{}}`))
	missing := os.Getenv("OCL_E2E_REGISTRY") + "/standin/missing@sha256:" + strings.Repeat("0", 64)
	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile("FROM configs AS final\nLABEL e2e.fault=fetch\n"),
		builders.WithPushSpec(os.Getenv("OCL_E2E_REGISTRY")+"/os/fetch:latest"), builders.WithPushSecret("push"), builders.WithBaseImage(missing))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePoolImage(t, ns) })
	got := failedBuild(t, ns, "", "a failed fetch of a missing base image")
	if f := got.Status.LatestBuild.Failure; f.Task != "fetch-base-digest" || f.Step != "fetch-base-digest" {
		t.Errorf("failure %+v, want task and step fetch-base-digest", f)
	}
	checkFailedReport(t, ns, got.Status.LatestBuild.PipelineRun, "report-no-build", "fetch-base-digest", "fetch-base-digest")
}
