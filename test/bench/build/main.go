// Command build measures the layer cache (spec.pipeline.cache) on the real stack
// (test/stack Up: a node running the builds, Tekton, a registry): a cold build of a
// Containerfile whose RUN steps take time (stand-ins for package installs: sleep and 4 MiB of
// random data each), then a rebuild after a change to only its last line. With the cache, the
// rebuild pulls the unchanged layers from the cache repository instead of running their steps.
// It prints `bench: build_cache.<name>=<value>` lines; the goal is a warm/cold ratio of the
// build step ≤ 0.25.
//
// Usage: go run ./test/bench/build [-keep]. Needs root (as test/stack).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/ocl-pipelines/ocl-pipelines/controller/secrets"
	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	layeringclient "github.com/ocl-pipelines/ocl-pipelines/pkg/client/clientset/versioned"
	"github.com/ocl-pipelines/ocl-pipelines/test/stack"
)

const ns = "bench-build"

// containerfile has two slow steps and a last line that the rebuild changes.
func containerfile(last string) string {
	return "FROM configs AS final\n" +
		"RUN sleep 15 && head -c 4194304 /dev/urandom > /usr/lib/bench-a\n" +
		"RUN sleep 15 && head -c 4194304 /dev/urandom > /usr/lib/bench-b\n" +
		"RUN echo " + last + " > /etc/bench-last\n"
}

type timing struct{ run, build, push time.Duration }

func main() {
	keep := flag.Bool("keep", false, "leave the stack running")
	flag.Parse()
	root, err := os.Getwd()
	if err == nil {
		err = run(root, *keep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-bench:", err)
		os.Exit(1)
	}
}

func run(root string, keep bool) error {
	opts := stack.OptionsFromEnv()
	opts.Root, opts.Dir = root, filepath.Join(os.TempDir(), "ocl-stack-bench")
	st, err := stack.New(opts)
	if err != nil {
		return err
	}
	if err := st.Down(); err != nil {
		return err
	}
	if err := st.Up(context.Background()); err != nil {
		return err
	}
	if !keep {
		defer func() { _ = st.Down() }()
	}
	registry := st.Registry
	cfg, err := st.RESTConfig()
	if err != nil {
		return err
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	lay := layeringclient.NewForConfigOrDie(cfg)
	tek := tektonclient.NewForConfigOrDie(cfg)
	ctx := context.Background()

	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ocl-build"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, secrets.RoleBinding(ns, "ocl-pipelines/ocl-pipelines-controller"), metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "push"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	cm, err := kube.CoreV1().ConfigMaps("ocl-pipelines").Get(ctx, "config-ocl-pipelines", metav1.GetOptions{})
	if err != nil {
		return err
	}
	cm.Data["quiet-period"] = "0s"
	if _, err := kube.CoreV1().ConfigMaps("ocl-pipelines").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return err
	}

	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile(containerfile("one")),
		builders.WithPushSpec(registry+"/os/bench:latest"), builders.WithPushSecret("push"))
	pi.Spec.Pipeline = &v1alpha1.PipelineOptions{Cache: &v1alpha1.Cache{Repository: registry + "/os/bench-cache"}}
	if _, err := lay.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		return err
	}
	cold, err := waitBuilt(ctx, lay, tek, "")
	if err != nil {
		return err
	}
	first := mustGet(ctx, lay).Status.CurrentInputsHash
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got := mustGet(ctx, lay)
		got.Spec.Containerfile[0].Content = containerfile("two")
		_, err := lay.LayeringV1alpha1().PoolImages(ns).Update(ctx, got, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}
	warm, err := waitBuilt(ctx, lay, tek, first)
	if err != nil {
		return err
	}
	fmt.Printf("bench: build_cache.cold_build_step_seconds=%.1f\n", cold.build.Seconds())
	fmt.Printf("bench: build_cache.warm_build_step_seconds=%.1f\n", warm.build.Seconds())
	fmt.Printf("bench: build_cache.warm_over_cold_build_step=%.2f goal=0.25\n", warm.build.Seconds()/cold.build.Seconds())
	fmt.Printf("bench: build_cache.cold_run_seconds=%.1f\n", cold.run.Seconds())
	fmt.Printf("bench: build_cache.warm_run_seconds=%.1f\n", warm.run.Seconds())
	fmt.Printf("bench: build_cache.warm_over_cold_run=%.2f\n", warm.run.Seconds()/cold.run.Seconds())
	fmt.Printf("bench: build_cache.cold_push_step_seconds=%.1f\nbench: build_cache.warm_push_step_seconds=%.1f\n", cold.push.Seconds(), warm.push.Seconds())
	return nil
}

func mustGet(ctx context.Context, lay layeringclient.Interface) *v1alpha1.PoolImage {
	pi, err := lay.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-bench:", err)
		os.Exit(1)
	}
	return pi
}

// waitBuilt waits until inputs other than previous are promoted, then reads the run's and its
// build task's step durations from Tekton's status.
func waitBuilt(ctx context.Context, lay layeringclient.Interface, tek tektonclient.Interface, previous string) (timing, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		pi := mustGet(ctx, lay)
		if c := pi.Status.GetCondition(v1alpha1.ConditionBuildSucceeded); c != nil && c.IsFalse() {
			return timing{}, fmt.Errorf("the build failed: %s", c.Message)
		}
		b := pi.Status.LatestBuild
		if pi.Status.IsReady() && b != nil && pi.Status.CurrentInputsHash == b.InputsHash && b.InputsHash != previous &&
			b.StartTime != nil && b.CompletionTime != nil {
			var t timing
			t.run = b.CompletionTime.Sub(b.StartTime.Time)
			tr, err := tek.TektonV1().TaskRuns(ns).Get(ctx, b.PipelineRun+"-build", metav1.GetOptions{})
			if err != nil {
				return t, err
			}
			for _, s := range tr.Status.Steps {
				if s.Terminated == nil {
					continue
				}
				d := s.Terminated.FinishedAt.Sub(s.Terminated.StartedAt.Time)
				switch s.Name {
				case "build":
					t.build = d
				case "push":
					t.push = d
				}
			}
			return t, nil
		}
		time.Sleep(500 * time.Millisecond) // a program polling a status, not a test
	}
	return timing{}, fmt.Errorf("no build promoted within 10 minutes")
}
