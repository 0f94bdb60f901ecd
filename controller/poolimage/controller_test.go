package poolimage

import (
	"encoding/json"
	"maps"
	"testing"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/configmap"
	. "knative.dev/pkg/reconciler/testing"

	// Fake clients and informers for injection.
	_ "github.com/ocl-pipelines/ocl-pipelines/pkg/client/injection/client/fake"
	fakepoolimageinformer "github.com/ocl-pipelines/ocl-pipelines/pkg/client/injection/informers/layering/v1alpha1/poolimage/fake"
	_ "github.com/ocl-pipelines/ocl-pipelines/pkg/client/mco/injection/client/fake"
	_ "github.com/ocl-pipelines/ocl-pipelines/pkg/client/mco/injection/informers/machineconfiguration/v1/controllerconfig/fake"
	_ "github.com/ocl-pipelines/ocl-pipelines/pkg/client/mco/injection/informers/machineconfiguration/v1/machineconfig/fake"
	_ "github.com/ocl-pipelines/ocl-pipelines/pkg/client/mco/injection/informers/machineconfiguration/v1/machineconfigpool/fake"
	_ "github.com/tektoncd/pipeline/pkg/client/injection/client/fake"
	_ "github.com/tektoncd/pipeline/pkg/client/injection/informers/pipeline/v1/pipelinerun/fake"
	_ "github.com/tektoncd/pipeline/pkg/client/injection/informers/pipeline/v1/taskrun/fake"
	_ "knative.dev/pkg/client/injection/kube/client/fake"
	_ "knative.dev/pkg/client/injection/kube/informers/core/v1/configmap/fake"
	_ "knative.dev/pkg/client/injection/kube/informers/core/v1/node/fake"
	_ "knative.dev/pkg/client/injection/kube/informers/core/v1/secret/fake"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

// TestNewController wires the controller with injection's fake clients and informers and checks
// that the objects it creates and the PoolImages competing for a pool enqueue the right keys.
func TestNewController(t *testing.T) {
	ctx, _ := SetupFakeContext(t)
	cmw := configmap.NewStaticWatcher(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: config.Name, Namespace: "ocl-pipelines"},
		Data: map[string]string{config.KeyQuietPeriod: "1m"}})
	impl := NewController(ctx, cmw)
	if impl == nil || impl.Reconciler == nil {
		t.Fatal("NewController returned no controller")
	}
	queue := impl.WorkQueue()

	run := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "ocl-worker-1", Namespace: ns,
		Annotations: map[string]string{layering.PoolImageLabel: piName}}}
	enqueueByAnnotations(impl, "", layering.PoolImageLabel)(run)
	enqueueByAnnotations(impl, "", layering.PoolImageLabel)(&tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: ns}})
	enqueueByAnnotations(impl, "", layering.PoolImageLabel)("not an object")
	if queue.Len() != 1 {
		t.Fatalf("queue length %d after a run of ours, an unrelated run and a bad object; want 1", queue.Len())
	}
	mc := machineConfig(t, poolImage(func(p *v1alpha1.PoolImage) { p.Namespace, p.Name = "team-a", "os" }), "r@sha256:1", "", "h")
	enqueueByAnnotations(impl, layering.MachineConfigPoolImageNamespaceAnnotation, layering.MachineConfigPoolImageNameAnnotation)(mc)
	if queue.Len() != 2 {
		t.Fatalf("queue length %d after a MachineConfig of ours; want 2", queue.Len())
	}

	// When a PoolImage is deleted, the others claiming its pool are re-enqueued.
	idx := fakepoolimageinformer.Get(ctx).Informer().GetIndexer()
	other := poolImage(func(p *v1alpha1.PoolImage) { p.Namespace, p.Name, p.UID = "team-b", "younger", "younger-uid" })
	unrelated := poolImage(func(p *v1alpha1.PoolImage) {
		p.Namespace, p.Name, p.UID, p.Spec.MachineConfigPool.Name = "team-c", "infra", "infra-uid", "infra"
	})
	for _, o := range []*v1alpha1.PoolImage{other, unrelated} {
		if err := idx.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	rec := &Reconciler{PoolImageIndexer: idx}
	enqueueClaimants(rec, impl, cache.DeletedFinalStateUnknown{Key: key(), Obj: poolImage()})
	if queue.Len() != 3 {
		t.Fatalf("queue length %d after deleting a PoolImage with one competing claimant; want 3", queue.Len())
	}
	enqueueClaimants(rec, impl, "not a PoolImage")
	if queue.Len() != 3 {
		t.Fatalf("queue length %d after a bad object; want 3", queue.Len())
	}
}

// TrimForCache keeps what the reconciler reads of a run and drops the embedded specs: a
// reconcile over trimmed runs makes the same decisions (the table tests' runs carry no
// Tekton-copied spec), and the cached object is a fraction of the run's size.
func TestTrimForCache(t *testing.T) {
	pi := poolImage()
	in := inputs(baseV1, extV1)
	pr := succeededRun(t, pi, in, now, digestA)
	pr.Spec.Status = tektonv1.PipelineRunSpecStatusCancelled
	pr.Status.ChildReferences = []tektonv1.ChildStatusReference{{Name: "x-build", PipelineTaskName: "build"}}
	pr.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "tekton"}}
	full, _ := json.Marshal(pr)
	got, err := TrimForCache(pr.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	tr := got.(*tektonv1.PipelineRun)
	small, _ := json.Marshal(tr)
	if tr.Spec.PipelineSpec != nil || tr.Status.PipelineSpec != nil || len(tr.Spec.Params) > 0 || tr.ManagedFields != nil {
		t.Error("the embedded pipeline, params or managed fields were kept")
	}
	if d := specDigest(tr); d != generator.SpecDigest(&pr.Spec) {
		t.Errorf("cached spec digest %q, want generator.SpecDigest of the run's spec", d)
	}
	// Idempotent: client-go transforms a watch-list's initial objects twice.
	if again, _ := TrimForCache(tr.DeepCopy()); specDigest(again.(*tektonv1.PipelineRun)) != specDigest(tr) {
		t.Errorf("a second TrimForCache changed the digest to %q", specDigest(again.(*tektonv1.PipelineRun)))
	}
	// A digest on an object that still has its spec is recomputed, not trusted.
	forged := pr.DeepCopy()
	forged.Status.Annotations = map[string]string{layering.SpecDigestAnnotation: "forged"}
	if f, _ := TrimForCache(forged); specDigest(f.(*tektonv1.PipelineRun)) != generator.SpecDigest(&pr.Spec) {
		t.Error("a digest in the status of a full run was kept")
	}
	if tr.Name != pr.Name || !maps.Equal(tr.Labels, pr.Labels) || !maps.Equal(tr.Annotations, pr.Annotations) ||
		tr.Spec.Status != pr.Spec.Status || !succeeded(tr) || tr.Status.CompletionTime == nil || len(tr.Status.ChildReferences) != 1 {
		t.Errorf("a field the reconciler reads was dropped: %+v", tr)
	}
	if img, err := runImage(poolImage(), tr); err != nil || img != pushRepo+"@"+digestA {
		t.Errorf("runImage of the trimmed run = %q, %v", img, err)
	}
	if len(small)*10 > len(full) {
		t.Errorf("trimmed run is %d bytes of %d; want under a tenth", len(small), len(full))
	}
	t.Logf("run %d bytes, cached %d bytes", len(full), len(small))
}
