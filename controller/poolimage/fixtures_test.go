package poolimage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcofake "github.com/openshift/client-go/machineconfiguration/clientset/versioned/fake"
	mcolisters "github.com/openshift/client-go/machineconfiguration/listers/machineconfiguration/v1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonfake "github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	tektonlisters "github.com/tektoncd/pipeline/pkg/client/listers/pipeline/v1"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	clientgotesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/controller"
	logtesting "knative.dev/pkg/logging/testing"
	pkgreconciler "knative.dev/pkg/reconciler"
	. "knative.dev/pkg/reconciler/testing"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/metrics"
	"github.com/ocl-pipelines/ocl-pipelines/controller/secrets"
	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	layeringfake "github.com/ocl-pipelines/ocl-pipelines/pkg/client/clientset/versioned/fake"
	poolimagereconciler "github.com/ocl-pipelines/ocl-pipelines/pkg/client/injection/reconciler/layering/v1alpha1/poolimage"
	listers "github.com/ocl-pipelines/ocl-pipelines/pkg/client/listers/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/mco"
)

const (
	ns         = "ocl"
	piName     = "worker"
	poolName   = "worker"
	baseV1     = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	baseV2     = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	extV1      = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:eeee111111111111111111111111111111111111111111111111111111111111"
	extV2      = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:eeee222222222222222222222222222222222222222222222222222222222222"
	digestA    = "sha256:aaaa000000000000000000000000000000000000000000000000000000000000"
	digestB    = "sha256:bbbb000000000000000000000000000000000000000000000000000000000000"
	pushRepo   = "registry.example.com/os/worker"
	dashboard  = "https://tekton.example.com"
	retryToken = "2026-11-24T09:00:00Z"
)

var (
	now     = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	testCfg = &config.Config{Generator: generator.Config{BuildahImage: "localhost:5000/buildah:1", ToolsImage: "localhost:5000/tools:1"},
		DashboardURL: dashboard, DefaultPullSecret: "global-pull-secret"}
)

// poolImage is the PoolImage of the tests, mutated by opts.
func poolImage(opts ...func(*v1alpha1.PoolImage)) *v1alpha1.PoolImage {
	pi := builders.PoolImage(ns, piName, builders.WithPool(poolName),
		builders.WithContainerfile("FROM configs AS final\nRUN echo hi > /etc/hi\n"),
		builders.WithPushSpec(pushRepo+":latest"), builders.WithPushSecret("push"),
		builders.WithStored("pi-uid", metav1.NewTime(now.Add(-time.Hour))), builders.Defaulted())
	for _, o := range opts {
		o(pi)
	}
	return pi
}

func withContainerfile(c string) func(*v1alpha1.PoolImage) {
	return func(pi *v1alpha1.PoolImage) { pi.Spec.Containerfile[0].Content = c }
}

// inputs are the generator inputs the reconciler resolves from the default cluster objects.
func inputs(base, ext string) generator.Inputs {
	return generator.Inputs{BaseImage: base, ExtensionsImage: ext, Arch: v1alpha1.ArchAMD64, Config: testCfg.Generator}
}

func hashOf(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs) string {
	t.Helper()
	pr, err := generator.Render(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	h := pr.Labels[layering.InputsHashLabel]
	specDigests.Store(h, generator.SpecDigest(&pr.Spec))
	return h
}

// pipelineOf is the Pipeline the run of pi on in references (generator.RenderPipeline).
func pipelineOf(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs) *tektonv1.Pipeline {
	t.Helper()
	pl, err := generator.RenderPipeline(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// specDigests maps an inputs hash the tests computed to the spec digest of its rendered run, so
// expected statuses get the specSHA256 the reconciler records (status fills it in).
var specDigests sync.Map

// specDigestOf returns the spec digest of the run of inputs hash h (hashOf recorded it).
func specDigestOf(h string) string {
	if d, ok := specDigests.Load(h); ok {
		return d.(string)
	}
	return ""
}

func summaryOf(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs, changed ...string) *v1alpha1.BuildInputs {
	t.Helper()
	s, err := generator.Summary(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	s.Changed = changed
	return s
}

// wantRun is the PipelineRun the reconciler should create.
//
// Its description names what changed: nothing for a spec build or a retry, and for a build on a
// new base (upgrade, auto-retry, prebuild) both base images, as every upgrade of the tables
// changes them (withChanged says otherwise).
func wantRun(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs, trigger generator.Trigger, token string) *tektonv1.PipelineRun {
	t.Helper()
	in.Trigger = trigger
	if in.Changed == nil && (trigger == generator.TriggerUpgrade || trigger == generator.TriggerAutoRetry || trigger == generator.TriggerPrebuild) {
		in.Changed = []string{"baseImage", "extensionsImage"}
	}
	pr, err := generator.Render(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	pr.Name = generator.RetryRunName(poolName, hashOf(t, pi, in), token)
	if token != "" {
		pr.Annotations[layering.RetryAnnotation] = token
	}
	return pr
}

// wantPipeline is the Pipeline the reconciler creates before the first run of pi on in: the
// rendered one, marked as the controller's and as used now.
func wantPipeline(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs) *tektonv1.Pipeline {
	t.Helper()
	pl := pipelineOf(t, pi, in)
	pl.Labels["app.kubernetes.io/managed-by"] = layering.ManagedByValue
	pl.Annotations[layering.PipelineUsedAnnotation] = now.UTC().Format(time.RFC3339)
	return pl
}

// withChanged is pr described as a build of what changed.
func withChanged(pr *tektonv1.PipelineRun, changed ...string) *tektonv1.PipelineRun {
	pr.Annotations[layering.DescriptionAnnotation] = generator.RunDescription(pr.Labels[layering.PoolLabel], generator.Trigger(pr.Annotations[layering.TriggerAnnotation]), changed)
	return pr
}

// run is a PipelineRun of the pool in the given state (status Unknown = running).
func run(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs, name string, created time.Time, state corev1.ConditionStatus, results ...string) *tektonv1.PipelineRun {
	t.Helper()
	pr := wantRun(t, pi, in, "spec", "")
	if name != "" {
		pr.Name = name
	}
	pr.CreationTimestamp = metav1.NewTime(created)
	pr.UID = types.UID("uid-" + pr.Name)
	pr.Status.StartTime = &metav1.Time{Time: created}
	// Tekton copies the run's pipeline into its status when it first reconciles it.
	pr.Status.PipelineSpec = pr.Spec.PipelineSpec.DeepCopy()
	reason := "Running"
	switch state {
	case corev1.ConditionTrue:
		reason = "Succeeded"
		pr.Status.CompletionTime = &metav1.Time{Time: created.Add(5 * time.Minute)}
	case corev1.ConditionFalse:
		reason = "Failed"
		pr.Status.CompletionTime = &metav1.Time{Time: created.Add(time.Minute)}
	}
	pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: state, Reason: reason, Message: "Tasks Completed: 4"})
	for i := 0; i+1 < len(results); i += 2 {
		pr.Status.Results = append(pr.Status.Results, tektonv1.PipelineRunResult{Name: results[i], Value: *tektonv1.NewStructuredValues(results[i+1])})
	}
	return pr
}

// reportPatch is the patch that records a run's outcome as reported (ReportedAnnotation).
func reportPatch(name, outcome string) clientgotesting.PatchActionImpl {
	return clientgotesting.PatchActionImpl{
		ActionImpl: clientgotesting.ActionImpl{Namespace: ns, Verb: "patch", Resource: tektonv1.SchemeGroupVersion.WithResource("pipelineruns")},
		Name:       name, PatchType: "application/merge-patch+json",
		Patch: []byte(fmt.Sprintf(`{"metadata":{"annotations":{"layering.ocl-pipelines.dev/reported":"uid-%s/%s"},"resourceVersion":""}}`, name, outcome)),
	}
}

// retryRecordPatch is the patch that records token as honoured on PoolImage worker.
func retryRecordPatch(token string) clientgotesting.PatchActionImpl {
	return clientgotesting.PatchActionImpl{
		ActionImpl: clientgotesting.ActionImpl{Namespace: ns, Verb: "patch", Resource: v1alpha1.SchemeGroupVersion.WithResource("poolimages")},
		Name:       piName, PatchType: "application/merge-patch+json",
		Patch: []byte(fmt.Sprintf(`{"metadata":{"annotations":{"layering.ocl-pipelines.dev/retry-honoured":%q},"resourceVersion":""}}`, token)),
	}
}

// reportedRun is pr with its outcome recorded as reported.
func reportedRun(pr *tektonv1.PipelineRun, outcome string) *tektonv1.PipelineRun {
	pr = pr.DeepCopy()
	pr.Annotations[layering.ReportedAnnotation] = string(pr.UID) + "/" + outcome
	return pr
}

// tagRun is the TaskRun that moves the push spec's tag to image once it is promoted.
func tagRun(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs, image string) *tektonv1.TaskRun {
	t.Helper()
	tr, err := generator.RenderTag(pi, in, image)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func succeededRun(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs, created time.Time, digest string) *tektonv1.PipelineRun {
	return run(t, pi, in, "", created, corev1.ConditionTrue,
		contract.ResultImageURL, pushRepo+":"+hashOf(t, pi, in), contract.ResultImageDigest, digest)
}

func pool(opts ...func(*mcfgv1.MachineConfigPool)) *mcfgv1.MachineConfigPool {
	p := &mcfgv1.MachineConfigPool{
		ObjectMeta: metav1.ObjectMeta{Name: poolName},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"machineconfiguration.openshift.io/role": "worker"}},
			NodeSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/worker": ""}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func controllerConfig(base, ext string) *mcfgv1.ControllerConfig {
	return &mcfgv1.ControllerConfig{
		ObjectMeta: metav1.ObjectMeta{Name: mco.ControllerConfigName},
		Spec: mcfgv1.ControllerConfigSpec{BaseOSContainerImage: base, BaseOSExtensionsContainerImage: ext,
			Proxy: &configv1.ProxyStatus{}},
	}
}

func secret(name string, typ corev1.SecretType) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: typ,
		Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}}
}

func node(name, arch string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"node-role.kubernetes.io/worker": "", corev1.LabelArchStable: arch}}}
}

// cluster is the default set of cluster objects: the pool, the ControllerConfig, a worker node
// and the push secret.
func cluster() []runtime.Object {
	return []runtime.Object{pool(), controllerConfig(baseV1, extV1), node("worker-0", "amd64"),
		secret("push", corev1.SecretTypeDockerConfigJson)}
}

func machineConfig(t testing.TB, pi *v1alpha1.PoolImage, image, ext, hash string) *mcfgv1.MachineConfig {
	t.Helper()
	mc, err := facts.DesiredMachineConfig(pi, pool(), testPromotion(image, ext, hash))
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// testPromotion is the promotion of image with ext and hash in the tests: the base image is
// the one of the release ext belongs to (baseV1 for extV1, baseV2 for extV2), the arch amd64.
func testPromotion(image, ext, hash string) facts.Promotion {
	base := baseV1
	if ext == extV2 {
		base = baseV2
	}
	return facts.Promotion{Image: image, Extensions: ext, Hash: hash, Base: base, Arch: "amd64"}
}

// status builds an expected status: initialized conditions, observed generation 1, then f;
// a promoted image is up to date with its base unless f says otherwise (MarkUpToDate).
func status(pi *v1alpha1.PoolImage, f func(*v1alpha1.PoolImageStatus)) *v1alpha1.PoolImage {
	out := pi.DeepCopy()
	st := &out.Status
	st.InitializeConditions()
	f(st)
	if b := st.LatestBuild; b != nil && b.PipelineRun != "" && b.SpecSHA256 == "" {
		b.SpecSHA256 = specDigestOf(b.InputsHash)
	}
	if u := st.Upgrade; u != nil && u.PipelineRun != "" && u.SpecSHA256 == "" {
		u.SpecSHA256 = specDigestOf(u.InputsHash)
	}
	if st.CurrentInputs != nil && st.GetCondition(v1alpha1.ConditionUpToDate) == nil {
		st.MarkUpToDate(st.CurrentInputs.BaseImage)
	}
	st.ObservedGeneration = out.Generation
	return out
}

func statusUpdate(pi *v1alpha1.PoolImage) clientgotesting.UpdateActionImpl {
	return clientgotesting.UpdateActionImpl{
		ActionImpl: clientgotesting.ActionImpl{Namespace: pi.Namespace, Verb: "update",
			Resource: v1alpha1.SchemeGroupVersion.WithResource("poolimages"), Subresource: "status"},
		Object: pi,
	}
}

// rowSettings are what a table row sets beyond its objects, typed; rows give them with
// settings(rowSettings{...}) as their OtherTestData.
type rowSettings struct {
	// Config replaces testCfg.
	Config *config.Config
	// Releases answers the reconciler's questions about the next release (prebuilds).
	Releases UpgradeCandidates
}

// rowResults is what the row's reconciler recorded, for its PostConditions (results(row)).
type rowResults struct {
	Metrics  *sdkmetric.ManualReader
	Enqueued *[]time.Duration
}

// OtherTestData keys of rowSettings and rowResults: the only two.
const (
	settingsKey = "settings"
	resultsKey  = "results"
)

// settings is the OtherTestData of a row with s.
func settings(s rowSettings) map[string]interface{} { return map[string]interface{}{settingsKey: s} }

// results returns what the row's reconciler recorded.
func results(row *TableRow) rowResults { return row.OtherTestData[resultsKey].(rowResults) }

// factory builds the generated PoolImage reconciler around our Reconciler, with fake clients
// seeded with the row's objects and listers over the same objects.
func factory(t *testing.T, row *TableRow) (controller.Reconciler, ActionRecorderList, EventList) {
	for k := range row.OtherTestData {
		if k != settingsKey && k != resultsKey {
			t.Fatalf("OtherTestData[%q]: give a row's settings with settings(rowSettings{...})", k)
		}
	}
	set, _ := row.OtherTestData[settingsKey].(rowSettings)
	// A map of the row's own: rows may share their settings' map.
	row.OtherTestData = map[string]interface{}{settingsKey: set}
	cfg := testCfg
	if set.Config != nil {
		cfg = set.Config
	}
	env := newTestEnv(t, row.Objects, cfg, row.WithReactors)
	row.OtherTestData[resultsKey] = rowResults{Metrics: env.metrics, Enqueued: env.enqueued}
	if set.Releases != nil {
		env.ours.Releases = set.Releases
	}
	return env.reconciler, env.actions, EventList{Recorder: env.recorder}
}

// fixtureScheme knows every kind a row may hold: ours, Tekton's, the MCO's and the core ones.
func fixtureScheme(tb testing.TB) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, tektonv1.AddToScheme, mcfgv1.AddToScheme, corev1.AddToScheme} {
		if err := add(s); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// testEnv is a generated reconciler over fake clients and listers.
type testEnv struct {
	reconciler controller.Reconciler
	ours       *Reconciler
	actions    ActionRecorderList
	recorder   *record.FakeRecorder
	enqueued   *[]time.Duration
	tracker    *FakeTracker
	metrics    *sdkmetric.ManualReader
	layering   *layeringfake.Clientset
	tekton     *tektonfake.Clientset
	mco        *mcofake.Clientset
}

func newTestEnv(tb testing.TB, objs []runtime.Object, cfg *config.Config, reactors []clientgotesting.ReactionFunc) *testEnv {
	return newTestEnvAt(tb, objs, cfg, reactors, now)
}

// newTestEnvAt is newTestEnv with the reconciler's clock at at.
func newTestEnvAt(tb testing.TB, objs []runtime.Object, cfg *config.Config, reactors []clientgotesting.ReactionFunc, at time.Time) *testEnv {
	ctx := logtesting.TestContextWithLogger(tb)
	indexers := map[string]cache.Indexer{}
	idx := func(kind string) cache.Indexer {
		if indexers[kind] == nil {
			ix := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
			switch kind {
			case "PipelineRun":
				ix[ByPoolIndex] = RunsByPool
			case "PoolImage":
				ix[ByPoolIndex] = PoolImagesByPool
			}
			indexers[kind] = cache.NewIndexer(cache.MetaNamespaceKeyFunc, ix)
		}
		return indexers[kind]
	}
	var layeringObjs, tektonObjs, mcoObjs []runtime.Object
	scheme := fixtureScheme(tb)
	for _, o := range objs {
		gvks, _, err := scheme.ObjectKinds(o)
		if err != nil {
			tb.Fatalf("object %T: %v", o, err)
		}
		kind := gvks[0].Kind
		// Each fake clientset holds its group's objects; core objects are only read, from listers.
		switch gvks[0].Group {
		case v1alpha1.SchemeGroupVersion.Group:
			layeringObjs = append(layeringObjs, o)
		case tektonv1.SchemeGroupVersion.Group:
			tektonObjs = append(tektonObjs, o)
		case mcfgv1.GroupVersion.Group:
			mcoObjs = append(mcoObjs, o)
		}
		var cached interface{} = o
		if kind == "PipelineRun" || kind == "TaskRun" {
			// As the informers cache them (NewController sets this transform).
			if cached, err = TrimForCache(o.DeepCopyObject()); err != nil {
				tb.Fatal(err)
			}
		}
		if err := idx(kind).Add(cached); err != nil {
			tb.Fatal(err)
		}
	}
	layeringClient := layeringfake.NewSimpleClientset(layeringObjs...)
	tektonClient := tektonfake.NewSimpleClientset(tektonObjs...)
	mcoClient := mcofake.NewClientset(mcoObjs...)
	for _, reactor := range reactors {
		tektonClient.PrependReactor("*", "*", reactor)
		mcoClient.PrependReactor("*", "*", reactor)
		layeringClient.PrependReactor("*", "*", reactor)
	}

	env := &testEnv{recorder: record.NewFakeRecorder(1000), enqueued: &[]time.Duration{}, tracker: &FakeTracker{},
		layering: layeringClient, tekton: tektonClient, mco: mcoClient}
	ctx = controller.WithEventRecorder(ctx, env.recorder)
	r := &Reconciler{
		PipelineClient:         tektonClient,
		PoolImageClient:        layeringClient,
		MCOClient:              mcoClient,
		PipelineRunIndexer:     idx("PipelineRun"),
		PoolImageIndexer:       idx("PoolImage"),
		TaskRunLister:          tektonlisters.NewTaskRunLister(idx("TaskRun")),
		PoolLister:             mcolisters.NewMachineConfigPoolLister(idx("MachineConfigPool")),
		MachineConfigLister:    mcolisters.NewMachineConfigLister(idx("MachineConfig")),
		ControllerConfigLister: mcolisters.NewControllerConfigLister(idx("ControllerConfig")),
		Secrets:                listerSecrets{corelisters.NewSecretLister(idx("Secret"))},
		ConfigMapLister:        corelisters.NewConfigMapLister(idx("ConfigMap")),
		NodeLister:             corelisters.NewNodeLister(idx("Node")),
		Tracker:                env.tracker,
		Clock:                  clocktesting.NewFakePassiveClock(at),
		EnqueueAfter:           func(_ interface{}, d time.Duration) { *env.enqueued = append(*env.enqueued, d) },
		Uninstalling: func(ctx context.Context) (bool, string, error) {
			v, _ := ctx.Value(uninstallingKey{}).(bool)
			return v, "the test says so", nil
		},
		SawDeletion: func(ctx context.Context, _ types.NamespacedName) bool {
			unseen, _ := ctx.Value(unseenKey{}).(bool)
			return !unseen
		},
	}
	env.metrics = sdkmetric.NewManualReader()
	rec, err := metrics.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(env.metrics)), metrics.Source{
		PoolImages: func() ([]*v1alpha1.PoolImage, error) {
			return listers.NewPoolImageLister(idx("PoolImage")).List(labels.Everything())
		},
		LastSuccess: r.lastSuccess,
		Now:         func() time.Time { return at },
	})
	if err != nil {
		tb.Fatal(err)
	}
	r.Metrics = rec
	env.ours = r
	env.reconciler = poolimagereconciler.NewReconciler(ctx, logtesting.TestLogger(tb), layeringClient,
		listers.NewPoolImageLister(idx("PoolImage")), env.recorder, r,
		controller.Options{ConfigStore: staticConfigStore{cfg}})
	// Act as the leader of every bucket, as the single replica of a real deployment does.
	if la, ok := env.reconciler.(pkgreconciler.LeaderAware); ok {
		if err := la.Promote(pkgreconciler.UniversalBucket(), func(pkgreconciler.Bucket, types.NamespacedName) {}); err != nil {
			tb.Fatal(err)
		}
	}
	env.actions = ActionRecorderList{layeringClient, tektonClient, mcoClient}
	return env
}

// uninstallingKey, in a row's context, makes Uninstalling report true.
type uninstallingKey struct{}

// unseenKey, in a row's context, makes SawDeletion report false.
type unseenKey struct{}

// staticConfigStore hands the reconciler a fixed config.
type staticConfigStore struct{ cfg *config.Config }

func (s staticConfigStore) ToContext(ctx context.Context) context.Context {
	return config.ToContext(ctx, s.cfg)
}

func key() string { return ns + "/" + piName }

// metricValue returns the value of the point of the metric name whose attributes include want
// (a counter's sum, a gauge's value, a histogram's count), after a collection of the row's
// reader; ok is false when there is no such point.
func metricValue(t *testing.T, row *TableRow, name string, want map[string]string) (float64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := results(row).Metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	match := func(set attribute.Set) bool {
		for k, v := range want {
			if got, ok := set.Value(attribute.Key(k)); !ok || got.AsString() != v {
				return false
			}
		}
		return true
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						return float64(p.Value), true
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						return float64(p.Value), true
					}
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						return p.Value, true
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						return float64(p.Count), true
					}
				}
			}
		}
	}
	return 0, false
}

// wantMetric is a PostCondition: the metric has a point with those attributes and that value
// (value < 0: no such point).
func wantMetric(name string, value float64, attrs map[string]string) func(*testing.T, *TableRow) {
	return func(t *testing.T, row *TableRow) {
		t.Helper()
		got, ok := metricValue(t, row, name, attrs)
		switch {
		case value < 0 && ok:
			t.Errorf("metric %s%v = %v, want no such point", name, attrs, got)
		case value >= 0 && !ok:
			t.Errorf("metric %s%v missing, want %v", name, attrs, value)
		case value >= 0 && got != value:
			t.Errorf("metric %s%v = %v, want %v", name, attrs, got, value)
		}
	}
}

func eventf(typ, reason, format string, args ...interface{}) string {
	return Eventf(typ, reason, format, args...)
}

// lockedNS is a namespace whose Secrets the controller may not read.
const lockedNS = "locked"

// listerSecrets serves every namespace's Secrets from one lister, as a controller granted
// them, except lockedNS's.
type listerSecrets struct{ corelisters.SecretLister }

func (l listerSecrets) Lister(_ context.Context, ns string) (corelisters.SecretNamespaceLister, error) {
	if ns == lockedNS {
		return nil, &secrets.ForbiddenError{Namespace: ns, ServiceAccount: "ocl-pipelines/ocl-pipelines-controller",
			Err: apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New(`User "system:serviceaccount:ocl-pipelines:ocl-pipelines-controller" cannot list resource "secrets" in API group "" in the namespace "locked"`))}
	}
	return l.Secrets(ns), nil
}

// promotedA is the pool's state before an upgrade: PoolImage worker's image A, built on baseV1
// two hours ago, is promoted through mcA.
func promotedA(t testing.TB) (imageA string, mcA *mcfgv1.MachineConfig, promoted func(*v1alpha1.PoolImageStatus)) {
	pi, in := poolImage(), inputs(baseV1, extV1)
	h := hashOf(t, pi, in)
	name, sum := generator.RunName(poolName, h), summaryOf(t, pi, in)
	imageA = pushRepo + "@" + digestA
	return imageA, machineConfig(t, pi, imageA, extV1, h), func(st *v1alpha1.PoolImageStatus) {
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: name, InputsHash: h, Inputs: sum, Image: imageA,
			StartTime: &metav1.Time{Time: now.Add(-2 * time.Hour)}, CompletionTime: &metav1.Time{Time: now.Add(-2*time.Hour + 5*time.Minute)}}
		st.MarkBuildSucceeded(imageA)
		st.MarkPromoted(imageA)
	}
}

// firstBuildUpdate is the status update of a reconcile that starts the first build of pi for in:
// the run named after the inputs hash, AwaitingBuild then Building.
func firstBuildUpdate(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs) clientgotesting.UpdateActionImpl {
	t.Helper()
	h := hashOf(t, pi, in)
	n := generator.RunName(poolName, h)
	return statusUpdate(status(pi, func(st *v1alpha1.PoolImageStatus) {
		st.LatestBuild = &v1alpha1.BuildStatus{PipelineRun: n, InputsHash: h, Inputs: summaryOf(t, pi, in)}
		st.MarkAwaitingBuild()
		st.MarkBuilding(n)
	}))
}

// firstBuildEvent is the BuildStarted event of that reconcile.
func firstBuildEvent(t testing.TB, pi *v1alpha1.PoolImage, in generator.Inputs) string {
	t.Helper()
	h := hashOf(t, pi, in)
	return eventf(corev1.EventTypeNormal, "BuildStarted", "PipelineRun %s builds the image of MachineConfigPool worker (trigger: spec, inputs %s; changed: first build)",
		generator.RunName(poolName, h), h)
}
