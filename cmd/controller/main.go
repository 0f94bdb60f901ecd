// Command controller runs the ocl-pipelines PoolImage controller with knative's sharedmain:
// leader election (config-leader-election-ocl-pipelines), logging (config-logging), observability
// (config-observability) and the controller's own ConfigMap (config-ocl-pipelines), all read
// from the namespace in SYSTEM_NAMESPACE (default ocl-pipelines) and watched live.
//
// Flags are sharedmain's (--kubeconfig, --server, --disable-ha, --kube-api-qps, --kube-api-burst)
// and --health-probes.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"time"

	mcoclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"knative.dev/pkg/system"

	"knative.dev/pkg/injection"

	// The Mozilla roots, used when the image has none (the static base has no CA bundle): the
	// version is pinned in go.sum, so the images stay reproducible.
	_ "golang.org/x/crypto/x509roots/fallback"
	"knative.dev/pkg/injection/sharedmain"
	"knative.dev/pkg/signals"

	"github.com/ocl-pipelines/ocl-pipelines/controller/poolimage"
	"github.com/ocl-pipelines/ocl-pipelines/controller/uninstall"
)

func main() {
	defaults := map[string]string{
		"SYSTEM_NAMESPACE":           "ocl-pipelines",
		"CONFIG_LOGGING_NAME":        "config-logging",
		"CONFIG_OBSERVABILITY_NAME":  "config-observability",
		"CONFIG_LEADERELECTION_NAME": "config-leader-election-ocl-pipelines",
		"METRICS_DOMAIN":             "ocl-pipelines.dev/controller",
	}
	for k, v := range defaults {
		if os.Getenv(k) == "" {
			_ = os.Setenv(k, v) // fails only on an invalid name; the names are constants
		}
	}
	// As sharedmain.MainWithContext, with one more flag: define the flags, let injection parse
	// them with its own (--kubeconfig, --server, ...), then run.
	disableHA := flag.Bool("disable-ha", false, "run without leader election (a single replica)")
	probes := flag.Bool("health-probes", true, "serve knative's readiness and liveness probes on :8080 (disable when another knative controller shares the network namespace)")
	cfg := injection.ParseAndGetRESTConfigOrDie()
	ctx := signals.NewContext()
	if *disableHA {
		ctx = sharedmain.WithHADisabled(ctx)
	}
	if !*probes {
		ctx = sharedmain.WithHealthProbesDisabled(ctx)
	}
	// When the stop is an uninstall, end every hold before the rights go (package uninstall):
	// started at the signal, beside sharedmain's own shutdown (which first drains the queue);
	// the ServiceAccount's tokens are accepted for a minute after its deletion, and the pod's
	// grace period is 30 seconds.
	stop := &uninstall.Stop{}
	ctx = uninstall.WithStop(ctx, stop)
	released := make(chan struct{})
	go func() {
		defer close(released)
		<-ctx.Done()
		rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := poolimage.ReleaseOnUninstall(rctx, metadata.NewForConfigOrDie(cfg), mcoclient.NewForConfigOrDie(cfg),
			kubernetes.NewForConfigOrDie(cfg), system.Namespace(), stop); err != nil {
			// Nothing more can be done from here: docs/install.md's uninstall section says how to
			// release a pool by hand; its paused-by annotation says who held it.
			log.Printf("release the held pools on uninstall: %v", err)
		}
	}()
	sharedmain.MainWithConfig(ctx, poolimage.ControllerName, cfg, poolimage.NewController)
	if ctx.Err() == nil {
		return // sharedmain gave up on its own (no signal): nothing to release
	}
	<-released
}
