package poolimage

import (
	"context"
	"fmt"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/logging"
	logtesting "knative.dev/pkg/logging/testing"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// pools builds n pools, each with a node, a PoolImage and, when promoted, the succeeded run and
// MachineConfig of its current inputs.
func pools(tb testing.TB, n int, promoted bool) ([]runtime.Object, []string) {
	objs := []runtime.Object{controllerConfig(baseV1, extV1), secret("push", corev1.SecretTypeDockerConfigJson)}
	keys := make([]string, 0, n)
	in := inputs(baseV1, extV1)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("pool-%04d", i)
		p := pool(func(p *mcfgv1.MachineConfigPool) {
			p.Name = name
			p.Spec.MachineConfigSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"machineconfiguration.openshift.io/role": name}}
			p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + name: ""}}
		})
		nd := node(name+"-0", "amd64")
		nd.Labels = map[string]string{"node-role.kubernetes.io/" + name: "", corev1.LabelArchStable: "amd64"}
		pi := poolImage(func(p *v1alpha1.PoolImage) {
			p.Name, p.UID, p.Spec.MachineConfigPool.Name = name, types.UID("uid-"+name), name
		})
		objs = append(objs, p, nd)
		if promoted {
			h := hashOf(tb, pi, in)
			image := pushRepo + "@" + digestA
			pr := succeededRun(tb, pi, in, now.Add(-time.Hour), digestA)
			pr.Name = generator.RunName(name, h)
			mc, err := facts.DesiredMachineConfig(pi, p, testPromotion(image, extV1, h))
			if err != nil {
				tb.Fatal(err)
			}
			pi = status(pi, func(st *v1alpha1.PoolImageStatus) {
				st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: pr.Name, InputsHash: h, Inputs: summaryOf(tb, pi, in), Image: image,
					StartTime: pr.Status.StartTime, CompletionTime: pr.Status.CompletionTime}
				st.MarkBuildSucceeded(image)
				st.MarkPromoted(image)
			})
			objs = append(objs, pr, mc)
		}
		objs = append(objs, pi)
		keys = append(keys, ns+"/"+name)
	}
	return objs, keys
}

// BenchmarkReconcile1000Pools reconciles every PoolImage of 1,000 pools, on fake clients and
// listers: "steady" is a resync where everything is promoted (no write), "first-build" the first
// reconcile of each (one PipelineRun created and one status update each). ns/op is per reconcile.
func BenchmarkReconcile1000Pools(b *testing.B) {
	for _, tc := range []struct {
		name     string
		promoted bool
	}{{"steady", true}, {"first-build", false}} {
		b.Run(tc.name, func(b *testing.B) {
			objs, keys := pools(b, 1000, tc.promoted)
			env := newTestEnv(b, objs, testCfg, nil)
			ctx := logtesting.TestContextWithLogger(b)
			ctx = withQuietLogger(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := env.reconciler.Reconcile(ctx, keys[i%len(keys)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func withQuietLogger(ctx context.Context) context.Context {
	return logging.WithLogger(ctx, zap.NewNop().Sugar())
}
