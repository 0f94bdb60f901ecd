package poolimage

// The simulated world of the model-based test (model_test.go): an in-memory API server, informer
// caches that lag behind it, the controller as NewController wires it, and stand-ins for Tekton,
// the registry, the MCO, the CVO, the dashboard and the admins. Everything is deterministic
// given the events; the world runs inside a testing/synctest bubble so that time.Now (which
// knative's condition timestamps, the tracker's leases and the reconciler's clock.RealClock
// read) is the world clock, advanced only by the events.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"sort"
	"strconv"
	"strings"
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
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/version"
	corelisters "k8s.io/client-go/listers/core/v1"
	clientgotesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/logging"
	pkgreconciler "knative.dev/pkg/reconciler"
	"knative.dev/pkg/tracker"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	"github.com/ocl-pipelines/ocl-pipelines/controller/metrics"
	"github.com/ocl-pipelines/ocl-pipelines/controller/upgrade"
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
	"github.com/ocl-pipelines/ocl-pipelines/pkg/release"
)

// modelActor is who made a write to the simulated API server: the ground truth the invariants
// judge by (who last paused a pool, who created a run).
type modelActor string

// The actors of the world.
const (
	actorController modelActor = "controller"
	actorAdmin      modelActor = "admin"
	actorTekton     modelActor = "tekton"
	actorMCO        modelActor = "mco"
	actorCVO        modelActor = "cvo"
	actorDashboard  modelActor = "dashboard"
)

// modelKind is a kind of object the simulated API server stores.
type modelKind string

// The kinds of the world; ClusterVersion is only read by the UpgradeCandidates stand-in.
const (
	mkPoolImage        modelKind = "PoolImage"
	mkPipelineRun      modelKind = "PipelineRun"
	mkTaskRun          modelKind = "TaskRun"
	mkMachineConfig    modelKind = "MachineConfig"
	mkPool             modelKind = "MachineConfigPool"
	mkControllerConfig modelKind = "ControllerConfig"
	mkSecret           modelKind = "Secret"
	mkConfigMap        modelKind = "ConfigMap"
	mkNode             modelKind = "Node"
	mkClusterVersion   modelKind = "ClusterVersion"
	// mkPipeline has no informer (the controller reads Pipelines from the API server).
	mkPipeline modelKind = "Pipeline"
)

// modelKinds lists the kinds in a fixed order (the "deliver" event's N indexes it).
var modelKinds = []modelKind{mkPoolImage, mkPipelineRun, mkTaskRun, mkMachineConfig, mkPool,
	mkControllerConfig, mkSecret, mkConfigMap, mkNode, mkClusterVersion}

// modelResources maps the resource of a client action to its kind.
var modelResources = map[string]modelKind{
	"poolimages": mkPoolImage, "pipelineruns": mkPipelineRun, "taskruns": mkTaskRun,
	"machineconfigs": mkMachineConfig, "machineconfigpools": mkPool, "controllerconfigs": mkControllerConfig,
	"secrets": mkSecret, "configmaps": mkConfigMap, "nodes": mkNode, "pipelines": mkPipeline,
}

func modelGroupResource(k modelKind) schema.GroupResource {
	switch k {
	case mkPoolImage:
		return schema.GroupResource{Group: layering.GroupName, Resource: "poolimages"}
	case mkPipelineRun:
		return schema.GroupResource{Group: "tekton.dev", Resource: "pipelineruns"}
	case mkTaskRun:
		return schema.GroupResource{Group: "tekton.dev", Resource: "taskruns"}
	case mkMachineConfig:
		return schema.GroupResource{Group: mcfgv1.GroupName, Resource: "machineconfigs"}
	case mkPool:
		return schema.GroupResource{Group: mcfgv1.GroupName, Resource: "machineconfigpools"}
	case mkControllerConfig:
		return schema.GroupResource{Group: mcfgv1.GroupName, Resource: "controllerconfigs"}
	case mkClusterVersion:
		return schema.GroupResource{Group: configv1.GroupName, Resource: "clusterversions"}
	case mkPipeline:
		return schema.GroupResource{Group: "tekton.dev", Resource: "pipelines"}
	}
	return schema.GroupResource{Resource: strings.ToLower(string(k)) + "s"}
}

func modelNamespaced(k modelKind) bool {
	switch k {
	case mkPoolImage, mkPipelineRun, mkTaskRun, mkSecret, mkConfigMap, mkPipeline:
		return true
	}
	return false
}

// modelNew returns an empty object of kind k (to decode a patched object into).
func modelNew(k modelKind) runtime.Object {
	switch k {
	case mkPoolImage:
		return &v1alpha1.PoolImage{}
	case mkPipelineRun:
		return &tektonv1.PipelineRun{}
	case mkTaskRun:
		return &tektonv1.TaskRun{}
	case mkMachineConfig:
		return &mcfgv1.MachineConfig{}
	case mkPool:
		return &mcfgv1.MachineConfigPool{}
	case mkControllerConfig:
		return &mcfgv1.ControllerConfig{}
	case mkSecret:
		return &corev1.Secret{}
	case mkConfigMap:
		return &corev1.ConfigMap{}
	case mkNode:
		return &corev1.Node{}
	case mkClusterVersion:
		return &configv1.ClusterVersion{}
	case mkPipeline:
		return &tektonv1.Pipeline{}
	}
	panic("model: unknown kind " + string(k))
}

func modelMeta(o runtime.Object) metav1.Object {
	m, err := meta.Accessor(o)
	if err != nil {
		panic(err)
	}
	return m
}

// Names and images of the world.
const (
	modelNS           = "ocl"
	modelRegistryHost = "registry.example.com"
	modelArtRepo      = "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
	modelReleaseRepo  = "quay.io/openshift-release-dev/ocp-release"
	modelOtherRepo    = modelRegistryHost + "/other/worker"
	// modelRoleLabel is the MCO's machineconfiguration.openshift.io/role label.
	modelRoleLabel = "machineconfiguration.openshift.io/role"
	// modelGeneratedBy is the MCO's annotation on the MachineConfigs its controllers generate
	// (templates, rendered configs): MergeMachineConfigs skips them for osImageURL.
	modelGeneratedBy = "machineconfiguration.openshift.io/generated-by-controller-version"
	// modelTemplateFor records on a template MachineConfig the base image it was rendered for.
	modelTemplateFor = "model.ocl-pipelines.dev/template-for"
	// modelStartDelay is how long Tekton takes to start a created run.
	modelStartDelay = 2 * time.Second
	// modelRenderDelay is how long the MCO's render controller waits for MachineConfig changes
	// to settle before it renders (its informer resync and queue delay).
	modelRenderDelay = 5 * time.Second
	// modelOperatorDelay is how long after the CVO moves status.desired the MCO operator updates
	// the ControllerConfig with the release's images.
	modelOperatorDelay = 2 * time.Minute
	// modelReconcileSlack is how late past a deadline the controller may act (a reconcile).
	modelReconcileSlack = time.Minute
)

// modelPushRepos are the repositories of the PoolImages the admins create.
var modelPushRepos = map[string]string{
	"worker":   modelRegistryHost + "/os/worker",
	"worker-b": modelRegistryHost + "/os/worker-b",
	"infra":    modelRegistryHost + "/os/infra",
	"master":   modelRegistryHost + "/os/master",
}

// modelContainerfiles are the Containerfile contents an admin's edit chooses from (N mod 4):
// an edit back to an earlier content gives inputs that were built (or promoted) before.
var modelContainerfiles = []string{
	"FROM configs AS final\nRUN echo zero > /etc/model\n",
	"FROM configs AS final\nRUN echo one > /etc/model\n",
	"FROM configs AS final\nRUN echo two > /etc/model\n",
	"FROM configs AS final\nRUN echo three > /etc/model\n",
}

// modelRelease is an OpenShift release of the world: its payload image and its OS images.
type modelRelease struct {
	Version, Image, Base, Ext string
}

func modelReleaseN(n int) modelRelease {
	h := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	v := fmt.Sprintf("4.18.%d", n)
	return modelRelease{Version: v, Image: modelReleaseRepo + "@sha256:" + h("release-"+v),
		Base: modelArtRepo + "@sha256:" + h("rhel-coreos-"+v), Ext: modelArtRepo + "@sha256:" + h("extensions-"+v)}
}

// modelKey names an object of the simulated API server.
type modelKey struct {
	Kind      modelKind
	Namespace string
	Name      string
}

func (k modelKey) cacheKey() string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

// modelChange is a write not yet delivered to the informer caches; obj nil is a deletion.
type modelChange struct {
	key modelKey
	obj runtime.Object
}

// modelRun is the world's ground truth about one PipelineRun (by UID): who created it, what
// it pushed, whether its verify task really ran.
type modelRun struct {
	UID, Namespace, Name string
	Creator              modelActor
	// Owner is the PoolImage (namespace/name) the run builds for: the reconcile's key for the
	// controller's runs, else the run's poolimage annotation.
	Owner                   string
	Pool, Hash, Trigger     string
	Release, Retry          string
	WantRepo                string // repository of the owner's spec.imagePushSpec at creation
	Image, CurrentTag, Arch string // the IMAGE, CURRENT_TAG and TARGET_ARCH params
	HasVerify               bool
	// OwnTag says the push step pushes IMAGE-<run id> (its RUN_ID environment), PushedURL is
	// what it pushed.
	OwnTag              bool
	PushedURL           string
	Stage               int // 0 created, 1 started, 2 pushed, 3 done
	Digest              string
	Verified, Succeeded bool
	Cancelled           bool
	RerunOfPromoted     bool
	// CopyOf is the UID of the run whose spec this one copied unchanged (the dashboard's
	// re-run): its spec is the one the controller rendered when the source is the controller's.
	CopyOf    string
	CreatedAt time.Time
}

// modelManifest is an image manifest in the registry.
type modelManifest struct {
	Repo, RunUID, Arch string
	Gone               bool
}

// modelRegistry is the registry: repositories with tags, and manifests by digest. A push
// creates a new digest and moves its tag; GC deletes the manifests no tag points to.
type modelRegistry struct {
	tags      map[string]map[string]string
	manifests map[string]*modelManifest
	pushes    int
}

func (g *modelRegistry) push(repo, tag, runUID, arch string) string {
	g.pushes++
	d := fmt.Sprintf("sha256:%064x", g.pushes)
	g.manifests[d] = &modelManifest{Repo: repo, RunUID: runUID, Arch: arch}
	g.tag(repo, tag, d)
	return d
}

func (g *modelRegistry) tag(repo, tag, digest string) {
	if g.tags[repo] == nil {
		g.tags[repo] = map[string]string{}
	}
	g.tags[repo][tag] = digest
}

// tagged reports whether a tag of repo points at digest.
func (g *modelRegistry) tagged(repo, digest string) bool {
	for _, d := range g.tags[repo] {
		if d == digest {
			return true
		}
	}
	return false
}

func (g *modelRegistry) gc() {
	for d, m := range g.manifests {
		if !m.Gone && !g.tagged(m.Repo, d) {
			m.Gone = true
		}
	}
}

// splitImage splits repository:tag (tag may be empty).
func splitImage(image string) (repo, tag string) {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i], image[i+1:]
	}
	return image, ""
}

// modelNode is the world's truth about a node: the rendered config and image it booted, and
// how often it rebooted for a new config (one reboot per config change, also when the change
// brings new templates and a new image together) or booted a new image.
type modelNode struct {
	Config, Image         string
	Reboots, ImageChanges int
}

// modelPause is the last spec.paused=true write of a pool.
type modelPause struct {
	Actor modelActor
	Owner string // for the controller: the PoolImage it reconciled
	Base  string // the paused-for annotation of the write
	Since time.Time
	Image string // the pool's merged osImageURL at the last check before the pause
}

// modelTimedOut is a pause the controller ended at (or after) its hold timeout, checked after
// the reconcile that ended it.
type modelTimedOut struct {
	Pool, Owner string
	Since, At   time.Time
	Image       string // the pool's merged osImageURL when it was paused
}

// modelEventRecord is an event the controller recorded on a PoolImage.
type modelEventRecord struct {
	At                    time.Time
	Key                   string
	Type, Reason, Message string
}

// modelViolation is a broken invariant.
type modelViolation struct {
	Invariant string
	Code      string
	Step      int
	Detail    string
}

// modelStats are the world's counters, reported by TestModel.
type modelStats struct {
	steps, reconciles, conflicts  int
	imageChanges, inputChanges    int
	reboots, nodeImageChanges     int
	renameRefused, renderRefusals int
	runs, prebuilds, cancels      int
	pauses, releases, holdWarns   int
}

// modelWorld is the whole simulated cluster.
type modelWorld struct {
	cfg *config.Config
	// guard is the uninstall guard every controller (across restarts) pauses under.
	guard *modelGuard
	// renameImmutable says the CRD refuses a change of spec.machineConfigPool.name.
	renameImmutable bool

	rv      int64
	uids    int
	names   int
	objs    map[modelKey]runtime.Object
	pending []modelChange

	ctl *modelController

	reg       modelRegistry
	runs      map[string]*modelRun
	runByName map[string]string // namespace/name -> UID of the newest run of that name
	nodes     map[string]*modelNode
	pauses    map[string]*modelPause
	timedOut  []modelTimedOut
	// adminReleased is, per pool, the base images a hold was waiting for when an admin unpaused
	// a pool the controller held (see poolWrite).
	adminReleased map[string][]string
	// caughtUpBase is the ControllerConfig's base image the last time the controller had
	// caught up with every change.
	caughtUpBase string
	// tokens are, per PoolImage, the retry tokens runs the controller created carried.
	tokens map[string]map[string]bool

	events      []modelEventRecord
	transitions map[string]int     // run UID + "/" + reason -> events
	metricBase  map[string]float64 // counters of previous controller lifetimes
	effective   map[string]string  // pool -> merged osImageURL at the last check

	releases     []modelRelease
	cvProgressAt time.Time
	lastMCWrite  time.Time
	retries      int

	// writer is the actor of the client writes in progress (the controller, during a reconcile)
	// and owner the PoolImage it reconciles; manager is the field manager the request names.
	writer  modelActor
	owner   string
	manager string

	step  int
	debug bool
	// focus, when set, are the only invariants the history checks.
	focus      map[string]bool
	violations []modelViolation
	stats      modelStats
}

// modelCRDRenameImmutable reads the shipped CRD: whether it refuses changes of
// spec.machineConfigPool.name (an x-kubernetes-validations rule self == oldSelf on the field or
// on machineConfigPool).
func modelCRDRenameImmutable() (bool, error) {
	b, err := os.ReadFile("../../config/300-poolimage.yaml")
	if err != nil {
		return false, err
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		return false, err
	}
	rule := func(node any) bool {
		m, _ := node.(map[string]any)
		rules, _ := m["x-kubernetes-validations"].([]any)
		for _, r := range rules {
			if rm, ok := r.(map[string]any); ok {
				if s, _ := rm["rule"].(string); strings.Join(strings.Fields(s), "") == "self==oldSelf" {
					return true
				}
			}
		}
		return false
	}
	props := func(node any, name string) any {
		m, _ := node.(map[string]any)
		p, _ := m["properties"].(map[string]any)
		return p[name]
	}
	for _, v := range crd.Spec.Versions {
		mcp := props(props(v.Schema.OpenAPIV3Schema, "spec"), "machineConfigPool")
		if rule(mcp) || rule(props(mcp, "name")) {
			return true, nil
		}
	}
	return false, nil
}

// newModelWorld builds the empty cluster (pool worker with two amd64 nodes on its rendered
// config, the ControllerConfig of release 4.18.0, the push and default pull secrets, a
// ClusterVersion with no update offered) and starts the controller.
func newModelWorld(renameImmutable bool) *modelWorld {
	cfg := config.Defaults()
	w := &modelWorld{cfg: cfg, renameImmutable: renameImmutable,
		objs: map[modelKey]runtime.Object{}, reg: modelRegistry{tags: map[string]map[string]string{}, manifests: map[string]*modelManifest{}},
		runs: map[string]*modelRun{}, runByName: map[string]string{}, nodes: map[string]*modelNode{},
		pauses: map[string]*modelPause{}, adminReleased: map[string][]string{}, tokens: map[string]map[string]bool{},
		transitions: map[string]int{}, metricBase: map[string]float64{}, effective: map[string]string{},
		releases: []modelRelease{modelReleaseN(0)}}
	w.guard = &modelGuard{w: w}
	r0 := w.releases[0]
	w.mustCreate(actorMCO, &mcfgv1.ControllerConfig{ObjectMeta: metav1.ObjectMeta{Name: mco.ControllerConfigName},
		Spec: mcfgv1.ControllerConfigSpec{BaseOSContainerImage: r0.Base, BaseOSExtensionsContainerImage: r0.Ext, Proxy: &configv1.ProxyStatus{}}})
	w.mustCreate(actorCVO, &configv1.ClusterVersion{ObjectMeta: metav1.ObjectMeta{Name: upgrade.ClusterVersionName},
		Status: configv1.ClusterVersionStatus{Desired: configv1.Release{Version: r0.Version, Image: r0.Image}}})
	for _, name := range []string{"push", cfg.DefaultPullSecret} {
		w.mustCreate(actorAdmin, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: modelNS},
			Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}})
	}
	w.addPool("worker", &metav1.LabelSelector{MatchLabels: map[string]string{modelRoleLabel: "worker"}})
	w.addNode("worker-0", "amd64", false)
	w.addNode("worker-1", "amd64", false)
	w.renderAll(true)
	w.nodeStep(true)
	w.pending = nil
	w.ctl = newModelController(w)
	return w
}

// addPool creates a pool, its template MachineConfig 00-<pool> and nothing else.
func (w *modelWorld) addPool(name string, sel *metav1.LabelSelector) {
	w.mustCreate(actorMCO, &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: mcfgv1.MachineConfigPoolSpec{MachineConfigSelector: sel,
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"node-role.kubernetes.io/" + name: ""}}}})
	w.mustCreate(actorMCO, w.templateMC(name))
}

// templateMC is the MCO's template MachineConfig of a pool for the ControllerConfig's base.
func (w *modelWorld) templateMC(pool string) *mcfgv1.MachineConfig {
	return &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "00-" + pool,
		Labels:      map[string]string{modelRoleLabel: pool},
		Annotations: map[string]string{modelGeneratedBy: "model", modelTemplateFor: w.cc().Spec.BaseOSContainerImage}},
		Spec: mcfgv1.MachineConfigSpec{KernelArguments: []string{"template=" + w.cc().Spec.BaseOSContainerImage[len(w.cc().Spec.BaseOSContainerImage)-8:]}}}
}

func (w *modelWorld) addNode(name, arch string, infra bool) {
	l := map[string]string{"node-role.kubernetes.io/worker": "", corev1.LabelArchStable: arch}
	if infra {
		l["node-role.kubernetes.io/infra"] = ""
	}
	w.mustCreate(actorAdmin, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}})
	w.nodes[name] = &modelNode{}
}

// ---- the API server ----

func (w *modelWorld) now() time.Time { return time.Now() }

func (w *modelWorld) get(k modelKind, ns, name string) runtime.Object {
	return w.objs[modelKey{k, ns, name}]
}

func (w *modelWorld) poolImage(ns, name string) *v1alpha1.PoolImage {
	o, _ := w.get(mkPoolImage, ns, name).(*v1alpha1.PoolImage)
	return o
}

func (w *modelWorld) pool(name string) *mcfgv1.MachineConfigPool {
	o, _ := w.get(mkPool, "", name).(*mcfgv1.MachineConfigPool)
	return o
}

func (w *modelWorld) mc(name string) *mcfgv1.MachineConfig {
	o, _ := w.get(mkMachineConfig, "", name).(*mcfgv1.MachineConfig)
	return o
}

func (w *modelWorld) cc() *mcfgv1.ControllerConfig {
	o, _ := w.get(mkControllerConfig, "", mco.ControllerConfigName).(*mcfgv1.ControllerConfig)
	return o
}

func (w *modelWorld) cv() *configv1.ClusterVersion {
	o, _ := w.get(mkClusterVersion, "", upgrade.ClusterVersionName).(*configv1.ClusterVersion)
	return o
}

// list returns the objects of a kind sorted by key (read-only).
func (w *modelWorld) list(k modelKind) []runtime.Object {
	var keys []modelKey
	for key := range w.objs {
		if key.Kind == k {
			keys = append(keys, key)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].cacheKey() < keys[j].cacheKey() })
	out := make([]runtime.Object, 0, len(keys))
	for _, key := range keys {
		out = append(out, w.objs[key])
	}
	return out
}

func (w *modelWorld) pools() []*mcfgv1.MachineConfigPool {
	var out []*mcfgv1.MachineConfigPool
	for _, o := range w.list(mkPool) {
		out = append(out, o.(*mcfgv1.MachineConfigPool))
	}
	return out
}

func (w *modelWorld) sortedNodes() []*corev1.Node {
	var out []*corev1.Node
	for _, o := range w.list(mkNode) {
		out = append(out, o.(*corev1.Node))
	}
	return out
}

// pipelineRuns returns the stored runs, oldest first.
func (w *modelWorld) pipelineRuns() []*tektonv1.PipelineRun {
	var out []*tektonv1.PipelineRun
	for _, o := range w.list(mkPipelineRun) {
		out = append(out, o.(*tektonv1.PipelineRun))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreationTimestamp.Equal(&out[j].CreationTimestamp) {
			return out[i].CreationTimestamp.Before(&out[j].CreationTimestamp)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func keyOf(o runtime.Object) modelKey {
	m := modelMeta(o)
	return modelKey{kindOf(o), m.GetNamespace(), m.GetName()}
}

func kindOf(o runtime.Object) modelKind {
	switch o.(type) {
	case *v1alpha1.PoolImage:
		return mkPoolImage
	case *tektonv1.PipelineRun:
		return mkPipelineRun
	case *tektonv1.TaskRun:
		return mkTaskRun
	case *mcfgv1.MachineConfig:
		return mkMachineConfig
	case *mcfgv1.MachineConfigPool:
		return mkPool
	case *mcfgv1.ControllerConfig:
		return mkControllerConfig
	case *corev1.Secret:
		return mkSecret
	case *corev1.ConfigMap:
		return mkConfigMap
	case *corev1.Node:
		return mkNode
	case *configv1.ClusterVersion:
		return mkClusterVersion
	case *tektonv1.Pipeline:
		return mkPipeline
	}
	panic(fmt.Sprintf("model: unknown object %T", o))
}

// write stores obj under key (nil deletes it) as actor: the global resourceVersion moves, the
// change waits for delivery to the informer caches, and the world observes who wrote what.
func (w *modelWorld) write(actor modelActor, key modelKey, obj runtime.Object) {
	old := w.objs[key]
	w.rv++
	if np, ok := obj.(*mcfgv1.MachineConfigPool); ok {
		w.managePaused(actor, old, np)
	}
	if obj != nil {
		modelMeta(obj).SetResourceVersion(strconv.FormatInt(w.rv, 10))
		w.objs[key] = obj
	} else {
		delete(w.objs, key)
	}
	var snap runtime.Object
	if obj != nil {
		snap = obj.DeepCopyObject()
	}
	if key.Kind != mkPipeline { // no informer watches Pipelines
		w.pending = append(w.pending, modelChange{key: key, obj: snap})
	}
	if w.debug {
		what := "update"
		switch {
		case old == nil:
			what = "create"
		case obj == nil:
			what = "delete"
		}
		fmt.Printf("\t\t%s %s %s %s\n", actor, what, key.Kind, key.cacheKey())
	}
	w.observe(actor, key, old, obj)
}

// modelManagers are the field managers of the actors' writes when a request names none.
var modelManagers = map[modelActor]string{actorController: ControllerName, actorAdmin: "kubectl-edit",
	actorTekton: "tekton-pipelines-controller", actorMCO: "machine-config-controller", actorCVO: "cluster-version-operator",
	actorDashboard: "tekton-dashboard"}

// managePaused keeps a pool's managedFields as the API server does for spec.paused (the only
// field modelled): an update that changes it gives it to the writer's field manager.
func (w *modelWorld) managePaused(actor modelActor, old runtime.Object, pool *mcfgv1.MachineConfigPool) {
	op, _ := old.(*mcfgv1.MachineConfigPool)
	if op != nil && op.Spec.Paused == pool.Spec.Paused {
		pool.ManagedFields = op.ManagedFields
		return
	}
	if op == nil && !pool.Spec.Paused {
		pool.ManagedFields = nil
		return
	}
	manager := w.manager
	if manager == "" {
		manager = modelManagers[actor]
	}
	now := metav1.NewTime(w.now())
	pool.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate,
		APIVersion: mcfgv1.GroupVersion.String(), Time: &now, FieldsType: "FieldsV1",
		FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:paused":{}}}`)}}
}

func (w *modelWorld) conflict(k modelKind, name string) error {
	w.stats.conflicts++
	return apierrors.NewConflict(modelGroupResource(k), name,
		errors.New("the object has been modified; please apply your changes to the latest version and try again"))
}

// create stores a new object as the API server does: generateName, uid, creationTimestamp
// (the world clock), generation 1, no status for a PoolImage; AlreadyExists for a taken name.
func (w *modelWorld) create(actor modelActor, obj runtime.Object, ns string) (runtime.Object, error) {
	obj = obj.DeepCopyObject()
	k := kindOf(obj)
	m := modelMeta(obj)
	if modelNamespaced(k) && m.GetNamespace() == "" {
		m.SetNamespace(ns)
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		w.names++
		m.SetName(fmt.Sprintf("%sx%04d", m.GetGenerateName(), w.names))
	}
	if m.GetName() == "" {
		return nil, apierrors.NewBadRequest("name or generateName is required")
	}
	key := keyOf(obj)
	if _, ok := w.objs[key]; ok {
		return nil, apierrors.NewAlreadyExists(modelGroupResource(k), m.GetName())
	}
	w.uids++
	m.SetUID(types.UID(fmt.Sprintf("uid-%d", w.uids)))
	m.SetCreationTimestamp(metav1.NewTime(w.now()))
	m.SetGeneration(1)
	m.SetDeletionTimestamp(nil)
	if pi, ok := obj.(*v1alpha1.PoolImage); ok {
		pi.Status = v1alpha1.PoolImageStatus{}
	}
	w.write(actor, key, obj)
	return obj.DeepCopyObject(), nil
}

func (w *modelWorld) mustCreate(actor modelActor, obj runtime.Object) runtime.Object {
	out, err := w.create(actor, obj, modelMeta(obj).GetNamespace())
	if err != nil {
		panic(err)
	}
	return out
}

// update replaces an object, refusing a stale resourceVersion (Conflict). A PoolImage's status
// is its subresource: an update keeps it (and bumps generation on a spec change), an update of
// status changes only it. The CRD's rules are applied to PoolImage spec changes.
func (w *modelWorld) update(actor modelActor, obj runtime.Object, status bool) (runtime.Object, error) {
	k := kindOf(obj)
	m := modelMeta(obj)
	key := keyOf(obj)
	cur, ok := w.objs[key]
	if !ok {
		return nil, apierrors.NewNotFound(modelGroupResource(k), m.GetName())
	}
	cm := modelMeta(cur)
	if rv := m.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
		return nil, w.conflict(k, m.GetName())
	}
	if uid := m.GetUID(); uid != "" && uid != cm.GetUID() {
		return nil, w.conflict(k, m.GetName())
	}
	next := obj.DeepCopyObject()
	if cp, ok := cur.(*v1alpha1.PoolImage); ok {
		np := next.(*v1alpha1.PoolImage)
		if status {
			out := cp.DeepCopy()
			out.Status = *np.Status.DeepCopy()
			next = out
		} else {
			np.Status = *cp.Status.DeepCopy()
			if w.renameImmutable && np.Spec.MachineConfigPool.Name != cp.Spec.MachineConfigPool.Name {
				w.stats.renameRefused++
				return nil, apierrors.NewInvalid(schema.GroupKind{Group: layering.GroupName, Kind: "PoolImage"}, m.GetName(), nil)
			}
			if !equality.Semantic.DeepEqual(np.Spec, cp.Spec) {
				np.Generation = cp.Generation + 1
			} else {
				np.Generation = cp.Generation
			}
		}
	} else {
		modelMeta(next).SetGeneration(cm.GetGeneration())
	}
	nm := modelMeta(next)
	nm.SetUID(cm.GetUID())
	nm.SetCreationTimestamp(cm.GetCreationTimestamp())
	nm.SetDeletionTimestamp(cm.GetDeletionTimestamp())
	if nm.GetDeletionTimestamp() != nil && len(nm.GetFinalizers()) == 0 {
		w.write(actor, key, nil)
		return next, nil
	}
	// A write that changes nothing is not one: the resourceVersion stays, no watch event.
	nm.SetResourceVersion(cm.GetResourceVersion())
	if equality.Semantic.DeepEqual(cur, next) {
		return next, nil
	}
	w.write(actor, key, next)
	return next.DeepCopyObject(), nil
}

// patch applies a JSON merge patch (RFC 7386). A metadata.resourceVersion in the patch is a
// precondition, as on the real API server: a stale one is a Conflict.
func (w *modelWorld) patch(actor modelActor, k modelKind, ns, name string, pt types.PatchType, data []byte) (runtime.Object, error) {
	if pt != types.MergePatchType {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("model: patch type %s is not modelled", pt))
	}
	cur, ok := w.objs[modelKey{k, ns, name}]
	if !ok {
		return nil, apierrors.NewNotFound(modelGroupResource(k), name)
	}
	var p map[string]any
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if md, ok := p["metadata"].(map[string]any); ok {
		if rv, ok := md["resourceVersion"].(string); ok && rv != modelMeta(cur).GetResourceVersion() {
			return nil, w.conflict(k, name)
		}
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return nil, err
	}
	var orig map[string]any
	if err := json.Unmarshal(b, &orig); err != nil {
		return nil, err
	}
	if b, err = json.Marshal(modelMergePatch(orig, p)); err != nil {
		return nil, err
	}
	next := modelNew(k)
	if err := json.Unmarshal(b, next); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	modelMeta(next).SetResourceVersion("")
	return w.update(actor, next, false)
}

// modelMergePatch applies an RFC 7386 merge patch.
func modelMergePatch(orig, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	om, _ := orig.(map[string]any)
	out := map[string]any{}
	for k, v := range om {
		out[k] = v
	}
	for k, v := range pm {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = modelMergePatch(out[k], v)
	}
	return out
}

// remove deletes an object: a PoolImage with finalizers gets a deletionTimestamp; a
// PipelineRun's TaskRuns are garbage collected with it (owner references).
func (w *modelWorld) remove(actor modelActor, k modelKind, ns, name string) error {
	key := modelKey{k, ns, name}
	cur, ok := w.objs[key]
	if !ok {
		return apierrors.NewNotFound(modelGroupResource(k), name)
	}
	m := modelMeta(cur)
	if len(m.GetFinalizers()) > 0 {
		if m.GetDeletionTimestamp() == nil {
			next := cur.DeepCopyObject()
			now := metav1.NewTime(w.now())
			modelMeta(next).SetDeletionTimestamp(&now)
			w.write(actor, key, next)
		}
		return nil
	}
	w.write(actor, key, nil)
	if k == mkPipelineRun {
		for _, o := range w.list(mkTaskRun) {
			tr := o.(*tektonv1.TaskRun)
			for _, ref := range tr.OwnerReferences {
				if ref.UID == m.GetUID() {
					w.write(actorTekton, keyOf(tr), nil)
				}
			}
		}
	}
	return nil
}

// react serves every verb of the fake clientsets from the world's store, as the controller.
func (w *modelWorld) react(action clientgotesting.Action) (bool, runtime.Object, error) {
	k, ok := modelResources[action.GetResource().Resource]
	if !ok {
		return true, nil, fmt.Errorf("model: resource %s is not modelled", action.GetResource())
	}
	actor := w.writer
	if actor == "" {
		actor = actorController
	}
	ns := action.GetNamespace()
	w.manager = ""
	defer func() { w.manager = "" }()
	switch a := action.(type) {
	case clientgotesting.PatchActionImpl:
		w.manager = a.PatchOptions.FieldManager
	case clientgotesting.UpdateActionImpl:
		w.manager = a.UpdateOptions.FieldManager
	case clientgotesting.CreateActionImpl:
		w.manager = a.CreateOptions.FieldManager
	}
	switch action.GetVerb() {
	case "get":
		name := action.(clientgotesting.GetAction).GetName()
		o, ok := w.objs[modelKey{k, ns, name}]
		if !ok {
			return true, nil, apierrors.NewNotFound(modelGroupResource(k), name)
		}
		return true, o.DeepCopyObject(), nil
	case "list":
		sel := action.(clientgotesting.ListAction).GetListRestrictions().Labels
		return true, w.listObject(k, ns, sel), nil
	case "create":
		o, err := w.create(actor, action.(clientgotesting.CreateAction).GetObject(), ns)
		return true, o, err
	case "update":
		o, err := w.update(actor, action.(clientgotesting.UpdateAction).GetObject(), action.GetSubresource() == "status")
		return true, o, err
	case "patch":
		a := action.(clientgotesting.PatchAction)
		o, err := w.patch(actor, k, ns, a.GetName(), a.GetPatchType(), a.GetPatch())
		return true, o, err
	case "delete":
		return true, nil, w.remove(actor, k, ns, action.(clientgotesting.DeleteAction).GetName())
	}
	return true, nil, fmt.Errorf("model: verb %s is not modelled", action.GetVerb())
}

// listObject is the typed list of a kind for a client's List.
func (w *modelWorld) listObject(k modelKind, ns string, sel labels.Selector) runtime.Object {
	var items []runtime.Object
	for _, o := range w.list(k) {
		m := modelMeta(o)
		if (ns == "" || m.GetNamespace() == ns) && (sel == nil || sel.Matches(labels.Set(m.GetLabels()))) {
			items = append(items, o.DeepCopyObject())
		}
	}
	switch k {
	case mkPoolImage:
		l := &v1alpha1.PoolImageList{}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*v1alpha1.PoolImage))
		}
		return l
	case mkPipelineRun:
		l := &tektonv1.PipelineRunList{}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*tektonv1.PipelineRun))
		}
		return l
	case mkTaskRun:
		l := &tektonv1.TaskRunList{}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*tektonv1.TaskRun))
		}
		return l
	case mkMachineConfig:
		l := &mcfgv1.MachineConfigList{}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*mcfgv1.MachineConfig))
		}
		return l
	case mkPool:
		l := &mcfgv1.MachineConfigPoolList{}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*mcfgv1.MachineConfigPool))
		}
		return l
	case mkControllerConfig:
		l := &mcfgv1.ControllerConfigList{}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*mcfgv1.ControllerConfig))
		}
		return l
	}
	return &metav1.List{}
}

// ---- the controller ----

// modelController is one lifetime of the controller process: informer caches (filled only by
// the world's delivery events), a knative tracker, the Reconciler exactly as NewController
// builds it around them, the generated reconciler, a work queue and the UpgradeCandidates
// stand-in. A restart replaces all of it.
type modelController struct {
	w        *modelWorld
	idx      map[modelKind]cache.Indexer
	tracker  tracker.Interface
	r        *Reconciler
	rec      controllerReconciler
	recorder *record.FakeRecorder
	reader   *sdkmetric.ManualReader
	cand     *modelCandidates
	ctx      context.Context
	// due is the work queue: each key once, with the time it is due.
	due   map[string]time.Time
	fails map[string]int
}

// controllerReconciler is controller.Reconciler.
type controllerReconciler interface {
	Reconcile(ctx context.Context, key string) error
}

// modelPullSecret has credentials for the registry the PoolImages push to.
type modelPullSecret struct{}

func (modelPullSecret) Hosts() ([]string, error) { return []string{modelRegistryHost}, nil }

func newModelController(w *modelWorld) *modelController {
	c := &modelController{w: w, idx: map[modelKind]cache.Indexer{}, due: map[string]time.Time{}, fails: map[string]int{}}
	for _, k := range modelKinds {
		ix := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
		switch k {
		case mkPipelineRun:
			ix[ByPoolIndex] = RunsByPool
		case mkPoolImage:
			ix[ByPoolIndex] = PoolImagesByPool
		}
		c.idx[k] = cache.NewIndexer(cache.MetaNamespaceKeyFunc, ix)
	}
	// Listed from the API server, fully synced (sharedmain waits for the informers); the
	// ClusterVersion informer of upgrade.New is not waited for: it syncs on a later delivery.
	w.pending = nil
	for key, o := range w.objs {
		if key.Kind == mkClusterVersion {
			w.pending = append(w.pending, modelChange{key: key, obj: o.DeepCopyObject()})
			continue
		}
		if key.Kind == mkPipeline {
			continue
		}
		if err := c.idx[key.Kind].Add(modelTransform(o.DeepCopyObject())); err != nil {
			panic(err)
		}
	}
	c.cand = &modelCandidates{w: w, reads: map[string]*modelRead{}}
	c.recorder = record.NewFakeRecorder(100000)
	c.ctx = controller.WithEventRecorder(logging.WithLogger(context.Background(), zap.NewNop().Sugar()), c.recorder)
	c.tracker = tracker.New(func(k types.NamespacedName) { c.enqueue(k.String(), w.now()) }, controller.GetTrackerLease(c.ctx))

	layeringClient := layeringfake.NewSimpleClientset()
	tektonClient := tektonfake.NewSimpleClientset()
	mcoClient := mcofake.NewClientset()
	layeringClient.PrependReactor("*", "*", w.react)
	tektonClient.PrependReactor("*", "*", w.react)
	mcoClient.PrependReactor("*", "*", w.react)

	r := &Reconciler{
		PipelineClient:         tektonClient,
		PoolImageClient:        layeringClient,
		MCOClient:              mcoClient,
		PipelineRunIndexer:     c.idx[mkPipelineRun],
		PoolImageIndexer:       c.idx[mkPoolImage],
		TaskRunLister:          tektonlisters.NewTaskRunLister(c.idx[mkTaskRun]),
		PoolLister:             mcolisters.NewMachineConfigPoolLister(c.idx[mkPool]),
		MachineConfigLister:    mcolisters.NewMachineConfigLister(c.idx[mkMachineConfig]),
		ControllerConfigLister: mcolisters.NewControllerConfigLister(c.idx[mkControllerConfig]),
		ConfigMapLister:        corelisters.NewConfigMapLister(c.idx[mkConfigMap]),
		NodeLister:             corelisters.NewNodeLister(c.idx[mkNode]),
		Secrets:                listerSecrets{corelisters.NewSecretLister(c.idx[mkSecret])},
		PullSecret:             modelPullSecret{},
		Releases:               c.cand,
		Tracker:                c.tracker,
		Clock:                  clock.RealClock{},
		Guard:                  w.guard,
	}
	r.EnqueueAfter = func(obj interface{}, after time.Duration) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			c.enqueue(key, w.now().Add(after))
		}
	}
	c.reader = sdkmetric.NewManualReader()
	piLister := listers.NewPoolImageLister(c.idx[mkPoolImage])
	rec, err := metrics.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(c.reader)), metrics.Source{
		PoolImages:  func() ([]*v1alpha1.PoolImage, error) { return piLister.List(labels.Everything()) },
		LastSuccess: r.lastSuccess,
	})
	if err != nil {
		panic(err)
	}
	r.Metrics = rec
	c.r = r
	gen := poolimagereconciler.NewReconciler(c.ctx, zap.NewNop().Sugar(), layeringClient, piLister, c.recorder, r,
		controller.Options{ConfigStore: staticConfigStore{w.cfg}})
	c.rec = gen
	if la, ok := gen.(pkgreconciler.LeaderAware); ok {
		// Leader of every bucket, as the single replica: promotion enqueues every PoolImage.
		if err := la.Promote(pkgreconciler.UniversalBucket(), func(_ pkgreconciler.Bucket, k types.NamespacedName) {
			c.enqueue(k.String(), w.now())
		}); err != nil {
			panic(err)
		}
	}
	return c
}

// modelTransform is what an informer stores: runs through TrimForCache, as NewController sets,
// twice (client-go's watch-list transforms its initial objects once more at Replace).
func modelTransform(o runtime.Object) runtime.Object {
	switch o.(type) {
	case *tektonv1.PipelineRun, *tektonv1.TaskRun:
		out, err := TrimForCache(o)
		if err == nil {
			out, err = TrimForCache(out)
		}
		if err != nil {
			panic(err)
		}
		return out.(runtime.Object)
	}
	return o
}

func (c *modelController) enqueue(key string, at time.Time) {
	if cur, ok := c.due[key]; !ok || at.Before(cur) {
		c.due[key] = at
	}
}

// enqueueAllPoolImages is impl.GlobalResync of the PoolImage informer.
func (c *modelController) enqueueAllPoolImages() {
	for _, k := range c.idx[mkPoolImage].ListKeys() {
		c.enqueue(k, c.w.now())
	}
}

// popDue takes the earliest due key (ties by key), if any is due.
func (c *modelController) popDue() (string, bool) {
	now := c.w.now()
	best, found := "", false
	for k, at := range c.due {
		if at.After(now) {
			continue
		}
		if !found || at.Before(c.due[best]) || (at.Equal(c.due[best]) && k < best) {
			best, found = k, true
		}
	}
	if found {
		delete(c.due, best)
	}
	return best, found
}

// anyDue reports whether a key is due now.
func (c *modelController) anyDue() bool {
	now := c.w.now()
	for _, at := range c.due {
		if !at.After(now) {
			return true
		}
	}
	return false
}

// reconcileOne runs the generated reconciler on the next due key, handling its error as
// knative's controller.Impl.handleErr does (exponential per-key backoff, requeue-after).
func (c *modelController) reconcileOne() (ran bool) {
	key, ok := c.popDue()
	if !ok {
		return false
	}
	w := c.w
	w.stats.reconciles++
	w.writer, w.owner = actorController, key
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				w.violate("reconcile-no-panic", "panic", "reconcile of %s panicked: %v", key, p)
				err = nil
			}
		}()
		err = c.rec.Reconcile(c.ctx, key)
	}()
	w.writer, w.owner = "", ""
	c.drainEvents(key)
	if w.debug {
		fmt.Printf("\t\treconciled %s: %v\n", key, err)
	}
	if ok, delay := controller.IsRequeueKey(err); ok {
		c.enqueue(key, w.now().Add(delay))
		return true
	}
	if err == nil || controller.IsSkipKey(err) || controller.IsPermanentError(err) {
		delete(c.fails, key)
		return true
	}
	c.fails[key]++
	backoff := 5 * time.Millisecond << min(c.fails[key]-1, 20)
	c.enqueue(key, w.now().Add(min(backoff, 1000*time.Second)))
	return true
}

// drainEvents moves the fake recorder's events (type reason message) into the world's log.
func (c *modelController) drainEvents(key string) {
	for {
		select {
		case s := <-c.recorder.Events:
			parts := strings.SplitN(s, " ", 3)
			for len(parts) < 3 {
				parts = append(parts, "")
			}
			c.w.recordEvent(modelEventRecord{At: c.w.now(), Key: key, Type: parts[0], Reason: parts[1], Message: parts[2]})
			if c.w.debug {
				fmt.Printf("\t\tevent %s\n", s)
			}
		default:
			return
		}
	}
}

// counter sums a counter of this lifetime's metrics over all attributes.
func (c *modelController) collect() metricdata.ResourceMetrics {
	var rm metricdata.ResourceMetrics
	if err := c.reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	return rm
}

func modelCounter(rm metricdata.ResourceMetrics, name string) float64 {
	var sum float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, p := range d.DataPoints {
					sum += float64(p.Value)
				}
			}
		}
	}
	return sum
}

// modelCounterWhere sums the points of counter name whose attributes include attrs.
func modelCounterWhere(rm metricdata.ResourceMetrics, name string, attrs map[string]string) float64 {
	var sum float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			d, ok := m.Data.(metricdata.Sum[int64])
			if !ok || m.Name != name {
				continue
			}
		points:
			for _, p := range d.DataPoints {
				for k, want := range attrs {
					if v, ok := p.Attributes.Value(attribute.Key(k)); !ok || v.AsString() != want {
						continue points
					}
				}
				sum += float64(p.Value)
			}
		}
	}
	return sum
}

// modelMetricNames are the counters the transitions invariant compares with the events.
var modelMetricNames = []string{"ocl_pipelines_builds_started", "ocl_pipelines_builds", "ocl_pipelines_builds_superseded"}

// restart ends the controller's lifetime (its counters carry over into metricBase, as a
// Prometheus rate over a restart would) and starts a new one from the API server.
func (w *modelWorld) restart() {
	rm := w.ctl.collect()
	for _, n := range modelMetricNames {
		w.metricBase[n] += modelCounter(rm, n)
	}
	w.ctl = newModelController(w)
}

// ---- informer deliveries ----

// deliver hands the oldest pending change of kind k to its cache and handlers.
func (w *modelWorld) deliver(k modelKind) bool {
	for i, ch := range w.pending {
		if ch.key.Kind == k {
			w.pending = append(w.pending[:i:i], w.pending[i+1:]...)
			w.apply(ch)
			return true
		}
	}
	return false
}

// deliverAll delivers every pending change in write order.
func (w *modelWorld) deliverAll() {
	for len(w.pending) > 0 {
		ch := w.pending[0]
		w.pending = w.pending[1:]
		w.apply(ch)
	}
}

// drop coalesces: the oldest pending change of kind k that a later change of the same object
// supersedes is never delivered (informers are level-based: the later one brings the state).
func (w *modelWorld) drop(k modelKind) bool {
	for i, ch := range w.pending {
		if ch.key.Kind != k {
			continue
		}
		for _, later := range w.pending[i+1:] {
			if later.key == ch.key {
				w.pending = append(w.pending[:i:i], w.pending[i+1:]...)
				return true
			}
		}
	}
	return false
}

// pendingKinds lists the kinds with pending changes, in modelKinds order.
func (w *modelWorld) pendingKinds() []modelKind {
	has := map[modelKind]bool{}
	for _, ch := range w.pending {
		has[ch.key.Kind] = true
	}
	var out []modelKind
	for _, k := range modelKinds {
		if has[k] {
			out = append(out, k)
		}
	}
	return out
}

// apply updates a cache with a change and calls the handlers NewController registers.
func (w *modelWorld) apply(ch modelChange) {
	c := w.ctl
	if ch.key.Kind == mkClusterVersion {
		c.cand.cv, _ = ch.obj.(*configv1.ClusterVersion)
		c.cand.synced = true
		c.enqueueAllPoolImages() // upgrade.Options.OnChange: impl.GlobalResync(PoolImages)
		return
	}
	ix := c.idx[ch.key.Kind]
	oldObj, exists, err := ix.GetByKey(ch.key.cacheKey())
	if err != nil {
		panic(err)
	}
	var old runtime.Object
	if exists {
		old = oldObj.(runtime.Object)
	}
	switch {
	case ch.obj == nil && old == nil:
		return
	case ch.obj == nil:
		if err := ix.Delete(old); err != nil {
			panic(err)
		}
		c.handle(ch.key.Kind, old, nil)
	default:
		obj := modelTransform(ch.obj.DeepCopyObject())
		if err := ix.Update(obj); err != nil {
			panic(err)
		}
		c.handle(ch.key.Kind, old, obj)
	}
}

// resync is the informers' periodic resync: an update (old == new) of every cached object.
func (w *modelWorld) resync() {
	c := w.ctl
	for _, k := range modelKinds {
		if k == mkClusterVersion {
			continue
		}
		keys := c.idx[k].ListKeys()
		sort.Strings(keys)
		for _, key := range keys {
			o, _, _ := c.idx[k].GetByKey(key)
			c.handle(k, o.(runtime.Object), o.(runtime.Object))
		}
	}
}

// handle mirrors NewController's event handlers (they are bound to a *controller.Impl, whose
// work queue runs on goroutines and real time, so they are restated here against the world's
// queue): PoolImages enqueue themselves (and, deleted, the other claimants of their pool);
// PipelineRuns and MachineConfigs labelled managed-by=ocl-pipelines enqueue the PoolImage their
// annotations name; pools, ControllerConfig, ConfigMaps, Nodes and Secrets go through the
// tracker. old nil is an add, obj nil a delete.
func (c *modelController) handle(k modelKind, old, obj runtime.Object) {
	managed := func(o runtime.Object) bool {
		return o != nil && modelMeta(o).GetLabels()["app.kubernetes.io/managed-by"] == layering.ManagedByValue
	}
	byAnnotations := func(o runtime.Object, nsAnnotation, nameAnnotation string) {
		m := modelMeta(o)
		name, ns := m.GetAnnotations()[nameAnnotation], m.GetNamespace()
		if nsAnnotation != "" {
			ns = m.GetAnnotations()[nsAnnotation]
		}
		if name != "" && ns != "" {
			c.enqueue(ns+"/"+name, c.w.now())
		}
	}
	// cache.FilteringResourceEventHandler: an update that leaves the filter is a delete of old.
	filtered := func(f func(runtime.Object)) {
		switch {
		case obj != nil && managed(obj):
			f(obj)
		case old != nil && managed(old):
			f(old)
		}
	}
	tracked := func(gvk schema.GroupVersionKind) {
		o := obj
		if o == nil {
			o = old
		}
		controller.EnsureTypeMeta(c.tracker.OnChanged, gvk)(o)
	}
	switch k {
	case mkPoolImage:
		if obj != nil {
			key, _ := cache.MetaNamespaceKeyFunc(obj)
			c.enqueue(key, c.w.now())
			return
		}
		key, _ := cache.MetaNamespaceKeyFunc(old)
		c.enqueue(key, c.w.now())
		deleted := old.(*v1alpha1.PoolImage)
		all, _ := c.idx[mkPoolImage].ByIndex(ByPoolIndex, deleted.Spec.MachineConfigPool.Name)
		for _, o := range all {
			if pi := o.(*v1alpha1.PoolImage); pi.UID != deleted.UID {
				c.enqueue(pi.Namespace+"/"+pi.Name, c.w.now())
			}
		}
	case mkPipelineRun:
		filtered(func(o runtime.Object) { byAnnotations(o, "", layering.PoolImageLabel) })
	case mkMachineConfig:
		filtered(func(o runtime.Object) {
			byAnnotations(o, layering.MachineConfigPoolImageNamespaceAnnotation, layering.MachineConfigPoolImageNameAnnotation)
		})
	case mkPool:
		if old == nil && obj != nil {
			// NewController: a new pool re-enqueues every PoolImage (GlobalResync).
			for _, o := range c.idx[mkPoolImage].List() {
				key, _ := cache.MetaNamespaceKeyFunc(o)
				c.enqueue(key, c.w.now())
			}
		}
		tracked(mcfgv1.GroupVersion.WithKind("MachineConfigPool"))
	case mkControllerConfig:
		tracked(mcfgv1.GroupVersion.WithKind("ControllerConfig"))
	case mkConfigMap:
		tracked(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	case mkNode:
		// NewController: a node added, deleted or relabelled re-enqueues every PoolImage.
		if old == nil || obj == nil || !maps.Equal(modelMeta(old).GetLabels(), modelMeta(obj).GetLabels()) {
			for _, o := range c.idx[mkPoolImage].List() {
				key, _ := cache.MetaNamespaceKeyFunc(o)
				c.enqueue(key, c.w.now())
			}
		}
	case mkSecret:
		tracked(corev1.SchemeGroupVersion.WithKind("Secret"))
	}
}

// caughtUp reports whether the controller has seen everything and has nothing due: the point
// at which it has had its chance to act on the world.
func (w *modelWorld) caughtUp() bool {
	return len(w.pending) == 0 && !w.ctl.anyDue()
}

// settle delivers and reconciles until caught up (bounded: a controller that never settles is
// left where it is).
func (w *modelWorld) settle() {
	for i := 0; i < 200; i++ {
		w.deliverAll()
		if !w.ctl.reconcileOne() {
			break
		}
	}
	w.deliverAll()
}

// ---- UpgradeCandidates ----

// modelRead is the stand-in's read of a release image.
type modelRead struct {
	Done bool
	Err  error
	At   time.Time
}

// modelCandidates is the controller's UpgradeCandidates, with the semantics of
// controller/upgrade/upgrade.go: nil until its ClusterVersion cache synced; the targeted release
// unless it is the current one, else the newest offered; its OS images unknown (ErrReading)
// until a "release-read" event reads them; a failed read is retried after a minute.
type modelCandidates struct {
	w      *modelWorld
	synced bool
	cv     *configv1.ClusterVersion
	reads  map[string]*modelRead
}

var _ UpgradeCandidates = (*modelCandidates)(nil)

func (c *modelCandidates) Next(context.Context) (*upgrade.Candidate, error) {
	if !c.synced || c.cv == nil {
		return nil, nil
	}
	next, targeted := modelPick(c.cv)
	if next == nil {
		return nil, nil
	}
	r := c.reads[next.Image]
	if r != nil && r.Done && (r.Err == nil || c.w.now().Sub(r.At) < time.Minute) {
		if r.Err != nil {
			return nil, fmt.Errorf("release %s (%s): %w", next.Version, next.Image, r.Err)
		}
		rel, _ := c.w.releaseByImage(next.Image)
		v := next.Version
		if v == "" {
			v = rel.Version
		}
		return &upgrade.Candidate{Version: v, Image: next.Image, Targeted: targeted,
			OS: release.OSImages{Version: rel.Version, BaseOS: rel.Base, Extensions: rel.Ext}}, nil
	}
	if r == nil || r.Done {
		c.reads[next.Image] = &modelRead{}
	}
	return nil, fmt.Errorf("release %s (%s): %w", next.Version, next.Image, upgrade.ErrReading)
}

// known returns the candidate release whose images the stand-in has read, if any.
func (c *modelCandidates) known(image string) bool {
	r := c.reads[image]
	return r != nil && r.Done && r.Err == nil
}

// modelPick is upgrade.pick: the targeted release unless it is the current one, else the newest
// offered one that is not current.
func modelPick(cv *configv1.ClusterVersion) (*configv1.Release, bool) {
	current := cv.Status.Desired
	if u := cv.Spec.DesiredUpdate; u != nil && (u.Image != "" || u.Version != "") {
		r := configv1.Release{Version: u.Version, Image: u.Image}
		if r.Image == "" {
			for _, a := range cv.Status.AvailableUpdates {
				if a.Version == u.Version {
					r.Image = a.Image
				}
			}
		}
		if r.Image != "" && r.Image != current.Image {
			return &r, true
		}
		if r.Image == current.Image {
			return nil, false
		}
	}
	offered := append([]configv1.Release(nil), cv.Status.AvailableUpdates...)
	sort.SliceStable(offered, func(i, j int) bool {
		a, errA := version.ParseSemantic(offered[i].Version)
		b, errB := version.ParseSemantic(offered[j].Version)
		switch {
		case errA != nil:
			return false
		case errB != nil:
			return true
		}
		return b.LessThan(a)
	})
	for i := range offered {
		if offered[i].Image != "" && offered[i].Image != current.Image {
			return &offered[i], false
		}
	}
	return nil, false
}

func (w *modelWorld) releaseByImage(image string) (modelRelease, bool) {
	for _, r := range w.releases {
		if r.Image == image {
			return r, true
		}
	}
	return modelRelease{}, false
}

func (w *modelWorld) releaseByVersion(v string) (modelRelease, bool) {
	for _, r := range w.releases {
		if r.Version == v {
			return r, true
		}
	}
	return modelRelease{}, false
}

func (w *modelWorld) isReleaseBase(image string) bool {
	for _, r := range w.releases {
		if r.Base == image {
			return true
		}
	}
	return false
}

// ---- the MCO ----

// mergedConfig is the MCO's merge of the MachineConfigs a pool's machineConfigSelector selects
// (machine-config-operator pkg/controller/common/helpers.go, MergeMachineConfigs): the
// MachineConfigs labelled role=worker first, then the others, each group sorted by name;
// osImageURL starts as the ControllerConfig's baseOSContainerImage and the last non-empty one
// wins, skipping MachineConfigs annotated generated-by-controller-version; the same for
// baseOSExtensionsContainerImage. from is the MachineConfig whose osImageURL won (nil: the
// base); hash is the rendered config's content hash (pkg/controller/render names rendered
// configs rendered-<pool>-<hash of the merged config>).
func (w *modelWorld) mergedConfig(pool *mcfgv1.MachineConfigPool) (osImage, ext string, from *mcfgv1.MachineConfig, hash string) {
	cc := w.cc()
	sel, err := metav1.LabelSelectorAsSelector(pool.Spec.MachineConfigSelector)
	if err != nil {
		panic(err)
	}
	var worker, other []*mcfgv1.MachineConfig
	for _, o := range w.list(mkMachineConfig) {
		mc := o.(*mcfgv1.MachineConfig)
		if !sel.Matches(labels.Set(mc.Labels)) {
			continue
		}
		if mc.Labels[modelRoleLabel] == "worker" {
			worker = append(worker, mc)
		} else {
			other = append(other, mc)
		}
	}
	configs := append(worker, other...) // w.list is sorted by name
	osImage, ext = cc.Spec.BaseOSContainerImage, cc.Spec.BaseOSExtensionsContainerImage
	h := sha256.New()
	for _, mc := range configs {
		if mc.Spec.OSImageURL != "" && mc.Annotations[modelGeneratedBy] == "" {
			osImage, from = mc.Spec.OSImageURL, mc
		}
		if mc.Spec.BaseOSExtensionsContainerImage != "" {
			ext = mc.Spec.BaseOSExtensionsContainerImage
		}
		b, _ := json.Marshal(mc.Spec)
		fmt.Fprintf(h, "%s\n%s\n", mc.Name, b)
	}
	fmt.Fprintf(h, "%s\n%s\n", osImage, ext)
	return osImage, ext, from, hex.EncodeToString(h.Sum(nil))[:10]
}

// renderAll is the MCO's render controller: for each pool whose merged configuration changed
// (and MachineConfigs stayed unchanged for the render delay, unless now), a rendered
// MachineConfig rendered-<pool>-<hash> and spec.configuration pointing at it, also while the
// pool is paused. A pool with spec.osImageStream whose MachineConfigs override osImageURL is
// refused (RenderDegraded, no new rendered config), as the MCO does.
func (w *modelWorld) renderAll(now bool) {
	for _, pool := range w.pools() {
		osImage, ext, from, hash := w.mergedConfig(pool)
		degraded := pool.Spec.OSImageStream.Name != "" && from != nil
		cond := modelPoolCondition(pool, mcfgv1.MachineConfigPoolRenderDegraded)
		if degraded {
			if cond == nil || cond.Status != corev1.ConditionTrue {
				p := pool.DeepCopy()
				modelSetPoolCondition(p, mcfgv1.MachineConfigPoolCondition{Type: mcfgv1.MachineConfigPoolRenderDegraded, Status: corev1.ConditionTrue,
					Reason: "RenderFailed", Message: "cannot override MachineConfig osImageURL and set MachineConfigPool spec.osImageStream.name simultaneously",
					LastTransitionTime: metav1.NewTime(w.now())})
				w.stats.renderRefusals++
				w.mustUpdate(actorMCO, p)
			}
			continue
		}
		name := "rendered-" + pool.Name + "-" + hash
		if pool.Spec.Configuration.Name == name && (cond == nil || cond.Status != corev1.ConditionTrue) {
			continue
		}
		if !now && w.now().Sub(w.lastMCWrite) < modelRenderDelay {
			continue
		}
		if w.mc(name) == nil {
			w.mustCreate(actorMCO, &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: name,
				Annotations: map[string]string{modelGeneratedBy: "model"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineConfigPool",
					Name: pool.Name, UID: pool.UID}}},
				Spec: mcfgv1.MachineConfigSpec{OSImageURL: osImage, BaseOSExtensionsContainerImage: ext}})
		}
		p := pool.DeepCopy()
		p.Spec.Configuration.Name = name
		p.Status.Configuration.Name = name
		modelSetPoolCondition(p, mcfgv1.MachineConfigPoolCondition{Type: mcfgv1.MachineConfigPoolRenderDegraded, Status: corev1.ConditionFalse,
			LastTransitionTime: metav1.NewTime(w.now())})
		w.mustUpdate(actorMCO, p)
	}
}

func modelPoolCondition(p *mcfgv1.MachineConfigPool, t mcfgv1.MachineConfigPoolConditionType) *mcfgv1.MachineConfigPoolCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func modelSetPoolCondition(p *mcfgv1.MachineConfigPool, c mcfgv1.MachineConfigPoolCondition) {
	if cur := modelPoolCondition(p, c.Type); cur != nil {
		if cur.Status == c.Status {
			return
		}
		*cur = c
		return
	}
	p.Status.Conditions = append(p.Status.Conditions, c)
}

func (w *modelWorld) mustUpdate(actor modelActor, obj runtime.Object) {
	modelMeta(obj).SetResourceVersion("")
	if _, err := w.update(actor, obj, false); err != nil {
		panic(err)
	}
}

// poolOf is the pool the MCO assigns a node to (machine-config-operator pkg/controller/node,
// GetPoolsForNode): the pools whose nodeSelector matches it; a custom pool wins over worker;
// a node of two custom pools belongs to none.
func (w *modelWorld) poolOf(n *corev1.Node) string {
	var custom []string
	worker := false
	for _, p := range w.pools() {
		s, err := metav1.LabelSelectorAsSelector(p.Spec.NodeSelector)
		if err != nil || s.Empty() || !s.Matches(labels.Set(n.Labels)) {
			continue
		}
		if p.Name == "worker" {
			worker = true
		} else {
			custom = append(custom, p.Name)
		}
	}
	switch {
	case len(custom) == 1:
		return custom[0]
	case len(custom) == 0 && worker:
		return "worker"
	}
	return ""
}

// nodeStep is the MCO's node controller and daemons: in each unpaused pool one node
// (maxUnavailable 1) moves to the pool's spec.configuration, counting a reboot per config
// change and an image change when its osImageURL differs. all moves every node (world setup).
func (w *modelWorld) nodeStep(all bool) {
	for _, pool := range w.pools() {
		if (pool.Spec.Paused && !all) || pool.Spec.Configuration.Name == "" {
			continue
		}
		target := pool.Spec.Configuration.Name
		image := ""
		if mc := w.mc(target); mc != nil {
			image = mc.Spec.OSImageURL
		}
		for _, n := range w.sortedNodes() {
			t := w.nodes[n.Name]
			if w.poolOf(n) != pool.Name || t.Config == target {
				continue
			}
			if t.Config != "" {
				t.Reboots++
				w.stats.reboots++
				if t.Image != image {
					t.ImageChanges++
					w.stats.nodeImageChanges++
				}
			}
			t.Config, t.Image = target, image
			nn := n.DeepCopy()
			if nn.Annotations == nil {
				nn.Annotations = map[string]string{}
			}
			nn.Annotations["machineconfiguration.openshift.io/currentConfig"] = target
			nn.Annotations["machineconfiguration.openshift.io/desiredConfig"] = target
			w.mustUpdate(actorMCO, nn)
			if !all {
				break
			}
		}
	}
}

// templates is the MCO's template controller: the template MachineConfigs follow the
// ControllerConfig's base image (a new release brings new templates).
func (w *modelWorld) templates() {
	base := w.cc().Spec.BaseOSContainerImage
	for _, pool := range w.pools() {
		mc := w.mc("00-" + pool.Name)
		if mc == nil || mc.Annotations[modelTemplateFor] == base {
			continue
		}
		next := w.templateMC(pool.Name)
		next.ObjectMeta.ResourceVersion = ""
		next.UID = mc.UID
		w.mustUpdate(actorMCO, next)
	}
}

// operator is the MCO operator: some time after the CVO moved status.desired, the
// ControllerConfig carries the release's OS images.
func (w *modelWorld) operator() {
	rel, ok := w.releaseByVersion(w.cv().Status.Desired.Version)
	cc := w.cc()
	if !ok || cc.Spec.BaseOSContainerImage == rel.Base || w.now().Sub(w.cvProgressAt) < modelOperatorDelay {
		return
	}
	next := cc.DeepCopy()
	next.Spec.BaseOSContainerImage, next.Spec.BaseOSExtensionsContainerImage = rel.Base, rel.Ext
	w.mustUpdate(actorMCO, next)
	w.stats.inputChanges++
}

// ---- the CVO ----

// offer makes the update service offer a new release.
func (w *modelWorld) offer() {
	rel := modelReleaseN(len(w.releases))
	w.releases = append(w.releases, rel)
	cv := w.cv().DeepCopy()
	cv.Status.AvailableUpdates = append(cv.Status.AvailableUpdates, configv1.Release{Version: rel.Version, Image: rel.Image})
	w.mustUpdate(actorCVO, cv)
}

// accept is the admin clicking upgrade: spec.desiredUpdate is the newest offered release.
func (w *modelWorld) accept() bool {
	cv := w.cv().DeepCopy()
	next, _ := modelPick(&configv1.ClusterVersion{Status: cv.Status})
	if next == nil {
		return false
	}
	cv.Spec.DesiredUpdate = &configv1.Update{Version: next.Version, Image: next.Image}
	w.mustUpdate(actorAdmin, cv)
	return true
}

// progress is the CVO starting the upgrade it was asked for: status.desired moves to it, and
// the releases it offered before (older than it) are no longer offered.
func (w *modelWorld) progress() bool {
	cv := w.cv().DeepCopy()
	u := cv.Spec.DesiredUpdate
	if u == nil || u.Image == cv.Status.Desired.Image {
		return false
	}
	cv.Status.Desired = configv1.Release{Version: u.Version, Image: u.Image}
	var left []configv1.Release
	target, _ := version.ParseSemantic(u.Version)
	for _, a := range cv.Status.AvailableUpdates {
		if v, err := version.ParseSemantic(a.Version); err == nil && target != nil && target.LessThan(v) {
			left = append(left, a)
		}
	}
	cv.Status.AvailableUpdates = left
	w.mustUpdate(actorCVO, cv)
	w.cvProgressAt = w.now()
	return true
}

// readRelease completes the oldest requested read of a release image (fail: the read fails),
// and the stand-in reports the change (OnChange: every PoolImage is enqueued).
func (w *modelWorld) readRelease(fail bool) {
	c := w.ctl.cand
	var images []string
	for img, r := range c.reads {
		if !r.Done {
			images = append(images, img)
		}
	}
	if len(images) == 0 {
		return
	}
	sort.Strings(images)
	r := c.reads[images[0]]
	r.Done, r.At = true, w.now()
	if fail {
		r.Err = errors.New("read the pull secret openshift-config/pull-secret: secrets \"pull-secret\" is forbidden")
	}
	w.ctl.enqueueAllPoolImages() // upgrade.Options.OnChange
}

// ---- Tekton ----

// runParam returns a run's parameter.
func runParam(pr *tektonv1.PipelineRun, name string) string {
	for _, p := range pr.Spec.Params {
		if p.Name == name {
			return p.Value.StringVal
		}
	}
	return ""
}

// runPushesOwnTag reports whether the run's push step pushes a tag of its own (the RUN_ID
// environment of pkg/generator's push step).
func runPushesOwnTag(pr *tektonv1.PipelineRun) bool {
	spec := runPipeline(pr)
	if spec == nil {
		return false
	}
	for _, t := range spec.Tasks {
		if t.Name != contract.TaskBuild || t.TaskSpec == nil {
			continue
		}
		for _, st := range t.TaskSpec.Steps {
			for _, e := range st.Env {
				if st.Name == contract.StepPush && e.Name == "RUN_ID" {
					return true
				}
			}
		}
	}
	return false
}

// runPipeline is what a run runs: its embedded pipeline (every run of the world embeds one).
func runPipeline(pr *tektonv1.PipelineRun) *tektonv1.PipelineSpec { return pr.Spec.PipelineSpec }

func runHasVerify(pr *tektonv1.PipelineRun) bool {
	spec := runPipeline(pr)
	if spec == nil {
		return false
	}
	for _, t := range spec.Tasks {
		if t.Name == contract.TaskVerify {
			return true
		}
	}
	return false
}

// activeRuns are the stored runs Tekton has not finished, oldest first.
func (w *modelWorld) activeRuns() []*tektonv1.PipelineRun {
	var out []*tektonv1.PipelineRun
	for _, pr := range w.pipelineRuns() {
		if !pr.IsDone() {
			out = append(out, pr)
		}
	}
	return out
}

// tagRuns are the stored TaskRuns that no PipelineRun owns (the controller's tag TaskRuns)
// and Tekton has not finished, oldest first.
func (w *modelWorld) tagRuns() []*tektonv1.TaskRun {
	var out []*tektonv1.TaskRun
	for _, o := range w.list(mkTaskRun) {
		tr := o.(*tektonv1.TaskRun)
		if len(tr.OwnerReferences) == 0 && !tr.IsDone() {
			out = append(out, tr)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreationTimestamp.Before(&out[j].CreationTimestamp) })
	return out
}

// tagRun runs a standalone TaskRun of the promote task: CURRENT_TAG moves to IMAGE_URL's
// digest (fail: it fails).
func (w *modelWorld) tagRun(tr *tektonv1.TaskRun, fail bool) {
	if w.now().Sub(tr.CreationTimestamp.Time) < modelStartDelay {
		return
	}
	next := tr.DeepCopy()
	now := metav1.NewTime(w.now())
	next.Status.StartTime, next.Status.CompletionTime = &now, &now
	param := func(n string) string {
		for _, p := range tr.Spec.Params {
			if p.Name == n {
				return p.Value.StringVal
			}
		}
		return ""
	}
	repo, digest, _ := strings.Cut(param("IMAGE_URL"), "@")
	switch {
	case fail || digest == "" || param("CURRENT_TAG") == "":
		next.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: "Failed",
			Message: "\"step-promote\" exited with code 1"})
	default:
		w.reg.tag(repo, param("CURRENT_TAG"), digest)
		next.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"})
	}
	w.mustUpdate(actorTekton, next)
}

// tekton moves one unfinished run one stage: created -> started (after the start delay) ->
// pushed (the build task pushes IMAGE: a new digest, the tag moves) -> succeeded (verify, then
// promote moves CURRENT_TAG; a run whose spec lost the verify task "succeeds" unverified) or
// failed (before the push: task build, step build; after it: task verify). A run whose
// spec.status is Cancelled finishes as Cancelled.
func (w *modelWorld) tekton(n int, fail bool) {
	runs, tags := w.activeRuns(), w.tagRuns()
	if len(runs)+len(tags) == 0 {
		return
	}
	if i := n % (len(runs) + len(tags)); i >= len(runs) {
		w.tagRun(tags[i-len(runs)], fail)
		return
	}
	pr := runs[n%(len(runs)+len(tags))].DeepCopy()
	t := w.runs[string(pr.UID)]
	now := metav1.NewTime(w.now())
	if pr.Spec.Status != "" {
		t.Cancelled = true
		pr.Status.CompletionTime = &now
		pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse,
			Reason: "Cancelled", Message: fmt.Sprintf("PipelineRun %q was cancelled", pr.Name)})
		t.Stage = 3
		w.mustUpdate(actorTekton, pr)
		return
	}
	switch t.Stage {
	case 0:
		if w.now().Sub(pr.CreationTimestamp.Time) < modelStartDelay {
			return
		}
		pr.Status.StartTime = &now
		pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionUnknown, Reason: "Running",
			Message: "Tasks Completed: 0 (Failed: 0, Cancelled 0), Incomplete: 4, Skipped: 0"})
		t.Stage = 1
	case 1:
		if fail {
			w.finishRun(pr, t, contract.TaskBuild, contract.StepBuild)
			return
		}
		repo, tag := splitImage(t.Image)
		if t.OwnTag {
			// pkg/generator/scripts/push.sh: IMAGE-<first 12 characters of the TaskRun's uid>.
			w.uids++
			tag += fmt.Sprintf("-%08x%04x", w.uids, w.uids)
		}
		t.PushedURL = repo + ":" + tag
		t.Digest = w.reg.push(repo, tag, t.UID, t.Arch)
		t.Stage = 2
		pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionUnknown, Reason: "Running",
			Message: "Tasks Completed: 2 (Failed: 0, Cancelled 0), Incomplete: 2, Skipped: 0"})
	case 2:
		if fail && t.HasVerify {
			w.finishRun(pr, t, contract.TaskVerify, "verify")
			return
		}
		w.finishRun(pr, t, "", "")
		return
	}
	w.mustUpdate(actorTekton, pr)
}

// finishRun completes a run: failed in task/step, or (task "") succeeded with its results.
func (w *modelWorld) finishRun(pr *tektonv1.PipelineRun, t *modelRun, task, step string) {
	now := metav1.NewTime(w.now())
	pr.Status.CompletionTime = &now
	t.Stage = 3
	tasks := []string{contract.TaskFetchBaseDigest, contract.TaskBuild}
	if task == contract.TaskVerify || (task == "" && t.HasVerify) {
		tasks = append(tasks, contract.TaskVerify)
	}
	if task == "" {
		tasks = append(tasks, contract.TaskPromote)
	}
	for _, name := range tasks {
		tr := &tektonv1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: pr.Name + "-" + name, Namespace: pr.Namespace,
			Labels:          map[string]string{"tekton.dev/pipelineRun": pr.Name, "tekton.dev/pipelineTask": name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "tekton.dev/v1", Kind: "PipelineRun", Name: pr.Name, UID: pr.UID}}}}
		tr.Status.StartTime, tr.Status.CompletionTime = pr.Status.StartTime, &now
		if name == task {
			tr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: "Failed",
				Message: fmt.Sprintf("%q exited with code 1", "step-"+step)})
			tr.Status.Steps = []tektonv1.StepState{{Name: step, ContainerState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}
		} else {
			tr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"})
		}
		if _, err := w.create(actorTekton, tr, pr.Namespace); err == nil {
			pr.Status.ChildReferences = append(pr.Status.ChildReferences, tektonv1.ChildStatusReference{
				TypeMeta: runtime.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "TaskRun"}, Name: tr.Name, PipelineTaskName: name})
		}
	}
	if task != "" {
		pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: "Failed",
			Message: fmt.Sprintf("Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 1; task %s failed", task)})
		w.mustUpdate(actorTekton, pr)
		return
	}
	t.Succeeded, t.Verified = true, t.HasVerify
	repo, _ := splitImage(t.Image)
	if t.CurrentTag != "" {
		w.reg.tag(repo, t.CurrentTag, t.Digest)
	}
	pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded",
		Message: "Tasks Completed: 4 (Failed: 0, Cancelled 0), Skipped: 0"})
	pr.Status.Results = []tektonv1.PipelineRunResult{
		{Name: contract.ResultImageURL, Value: *tektonv1.NewStructuredValues(t.PushedURL)},
		{Name: contract.ResultImageDigest, Value: *tektonv1.NewStructuredValues(t.Digest)},
	}
	w.mustUpdate(actorTekton, pr)
}

// ---- events and transitions ----

// modelEventRun is the run an event names: the failure's logs command, else "PipelineRun <name>"
// (reconciler.go and runs.go phrase BuildStarted, BuildSucceeded, BuildFailed, Superseded so).
func modelEventRun(e modelEventRecord) string {
	msg := e.Message
	if i := strings.Index(msg, "tkn pipelinerun logs "); i >= 0 && (e.Reason == v1alpha1.ReasonBuildFailed || e.Reason == v1alpha1.ReasonPrebuildFailed) {
		return strings.Fields(msg[i+len("tkn pipelinerun logs "):])[0]
	}
	if i := strings.Index(msg, "PipelineRun "); i >= 0 {
		f := strings.Fields(msg[i+len("PipelineRun "):])
		if len(f) > 0 {
			name := strings.TrimRight(f[0], ":;,")
			if j := strings.LastIndex(name, "/"); j >= 0 {
				name = name[j+1:]
			}
			return name
		}
	}
	return ""
}

// recordEvent logs a controller event and counts the transitions it reports per run.
func (w *modelWorld) recordEvent(e modelEventRecord) {
	w.events = append(w.events, e)
	if e.Reason == v1alpha1.ReasonHoldReleased {
		w.stats.holdWarns++
	}
	// A prebuild's outcome (PrebuildSucceeded, PrebuildFailed) is the same transition of its run.
	reason := e.Reason
	switch reason {
	case v1alpha1.ReasonBuildStarted, v1alpha1.ReasonBuildSucceeded, v1alpha1.ReasonBuildFailed, v1alpha1.ReasonSuperseded:
	case v1alpha1.ReasonPrebuildSucceeded:
		reason = v1alpha1.ReasonBuildSucceeded
	case v1alpha1.ReasonPrebuildFailed:
		reason = v1alpha1.ReasonBuildFailed
	default:
		return
	}
	name := modelEventRun(e)
	ns, _, _ := strings.Cut(e.Key, "/")
	uid := w.runByName[ns+"/"+name]
	if uid == "" {
		// The event names no run the world knows: counted, but as a run of its own.
		uid = fmt.Sprintf("unparsed:%d", len(w.events))
	}
	k := uid + "/" + reason
	w.transitions[k]++
	if w.transitions[k] > 1 {
		w.violate("transitions-counted-once", reason, "%s event #%d for PipelineRun %s (%s): %s %q", reason, w.transitions[k], name, uid, e.Reason, e.Message)
	}
}

// violate records a broken invariant, unless the history looks at others only (focus) or
// MODEL_SKIP names it.
func (w *modelWorld) violate(inv, code, format string, args ...any) {
	if !w.focused(inv) || modelSkip["all"] || modelSkip[inv] || modelSkip[inv+"/"+code] {
		return
	}
	w.violations = append(w.violations, modelViolation{Invariant: inv, Code: code, Step: w.step, Detail: fmt.Sprintf(format, args...)})
}

// focused reports whether the history checks invariant inv.
func (w *modelWorld) focused(inv string) bool {
	return len(w.focus) == 0 || w.focus[inv] || inv == invReconcileNoPanic
}

// ---- ground truth of the inputs ----

// worldInputsHash is the inputs hash of pi's build on base/ext as the world knows its cluster
// (the same facts resolve reads, from the API server instead of the caches).
func (w *modelWorld) worldInputsHash(pi *v1alpha1.PoolImage, base, ext string) string {
	in := generator.Inputs{Config: w.cfg.Generator, BaseImage: base, ExtensionsImage: ext}
	if pi.Spec.BaseImage != "" {
		in.BaseImage = pi.Spec.BaseImage
	}
	if pi.Spec.ExtensionsImage != "" {
		in.ExtensionsImage = pi.Spec.ExtensionsImage
	}
	if p := w.cc().Spec.Proxy; p != nil {
		in.Proxy = generator.Proxy{HTTPProxy: p.HTTPProxy, HTTPSProxy: p.HTTPSProxy, NoProxy: p.NoProxy}
	}
	in.Arch = v1alpha1.ArchAMD64
	if pool := w.pool(pi.Spec.MachineConfigPool.Name); pool != nil {
		if arches := w.nodeArches(pool.Spec.NodeSelector); len(arches) == 1 {
			in.Arch = v1alpha1.Arch(arches[0])
		}
	}
	if pi.Spec.BaseImagePullSecret == nil && w.get(mkSecret, pi.Namespace, w.cfg.DefaultPullSecret) != nil {
		in.DefaultPullSecret = w.cfg.DefaultPullSecret
	}
	in.DefaultEntitlementSecret = w.get(mkSecret, pi.Namespace, v1alpha1.DefaultEntitlementSecretName) != nil
	if cm, ok := w.get(mkConfigMap, pi.Namespace, facts.TrustedCAConfigMapName).(*corev1.ConfigMap); ok && strings.TrimSpace(cm.Data["ca-bundle.crt"]) != "" {
		in.TrustedCA = &generator.TrustedCA{ConfigMapName: cm.Name, Key: "ca-bundle.crt",
			SHA256: generator.ContentSHA256(map[string]string{"ca-bundle.crt": cm.Data["ca-bundle.crt"]})}
	}
	h, err := generator.InputsHash(pi, in)
	if err != nil {
		return ""
	}
	return h
}

// nodeArches are the architectures of the nodes a selector matches (all nodes if none do).
func (w *modelWorld) nodeArches(sel *metav1.LabelSelector) []string {
	s := labels.Everything()
	if sel != nil {
		s, _ = metav1.LabelSelectorAsSelector(sel)
	}
	set := map[string]bool{}
	for _, n := range w.sortedNodes() {
		if s.Matches(labels.Set(n.Labels)) {
			set[n.Labels[corev1.LabelArchStable]] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// ---- admins and the dashboard ----

// createPoolImage is an admin creating a PoolImage.
func (w *modelWorld) createPoolImage(name string) {
	pool := "worker"
	switch name {
	case "infra":
		pool = "infra"
	case "master":
		pool = "master"
		w.addMaster()
	}
	repo, ok := modelPushRepos[name]
	if !ok || w.pool(pool) == nil || w.poolImage(modelNS, name) != nil {
		return
	}
	pi := builders.PoolImage(modelNS, name, builders.WithPool(pool), builders.WithContainerfile(modelContainerfiles[0]),
		builders.WithPushSpec(repo+":latest"), builders.WithPushSecret("push"))
	pi.Spec.Containerfile[0].Arch = v1alpha1.ArchNoArch
	w.mustCreate(actorAdmin, pi)
	w.stats.inputChanges++
}

// editPoolImage is an admin's unconditional update of a PoolImage (kubectl edit retried).
func (w *modelWorld) editPoolImage(name string, f func(*v1alpha1.PoolImage)) bool {
	pi := w.poolImage(modelNS, name)
	if pi == nil || pi.DeletionTimestamp != nil {
		return false
	}
	next := pi.DeepCopy()
	f(next)
	if equalObjects(pi, next) {
		return false
	}
	next.ResourceVersion = ""
	_, err := w.update(actorAdmin, next, false)
	return err == nil
}

func equalObjects(a, b *v1alpha1.PoolImage) bool {
	return equality.Semantic.DeepEqual(a.Spec, b.Spec) && equality.Semantic.DeepEqual(a.Annotations, b.Annotations)
}

func (w *modelWorld) editContainerfile(name string, n int) {
	content := modelContainerfiles[((n%4)+4)%4]
	w.editPoolImage(name, func(pi *v1alpha1.PoolImage) { pi.Spec.Containerfile[0].Content = content })
}

// containerfile is the Containerfile content of a PoolImage ("" if there is none).
func (w *modelWorld) containerfile(name string) string {
	if pi := w.poolImage(modelNS, name); pi != nil && pi.DeletionTimestamp == nil {
		return pi.Spec.Containerfile[0].Content
	}
	return ""
}

// adminMC is an admin's MachineConfig for a pool: a new rendered config, not a new image.
func (w *modelWorld) adminMC(pool string, n int) {
	if w.pool(pool) == nil {
		return
	}
	mc := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "50-" + pool + "-admin", Labels: map[string]string{modelRoleLabel: pool}},
		Spec: mcfgv1.MachineConfigSpec{KernelArguments: []string{fmt.Sprintf("model.admin=%d", n%4)}}}
	if cur := w.mc(mc.Name); cur != nil {
		next := cur.DeepCopy()
		next.Spec = mc.Spec
		w.mustUpdate(actorAdmin, next)
		return
	}
	w.mustCreate(actorAdmin, mc)
}

// trustedCA writes the PoolImages' namespace's trusted-ca ConfigMap.
func (w *modelWorld) trustedCA(n int) {
	cur, _ := w.get(mkConfigMap, modelNS, facts.TrustedCAConfigMapName).(*corev1.ConfigMap)
	if n == 0 {
		if cur != nil {
			_ = w.remove(actorAdmin, mkConfigMap, modelNS, facts.TrustedCAConfigMapName)
		}
		return
	}
	data := map[string]string{}
	if n < 3 {
		data["ca-bundle.crt"] = fmt.Sprintf("-----BEGIN CERTIFICATE-----\nbW9kZWwtY2Et%d\n-----END CERTIFICATE-----\n", n)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: facts.TrustedCAConfigMapName, Namespace: modelNS,
		Labels: map[string]string{"config.openshift.io/inject-trusted-cabundle": "true"}}, Data: data}
	if cur != nil {
		next := cur.DeepCopy()
		next.Data = data
		w.mustUpdate(actorAdmin, next)
		return
	}
	w.mustCreate(actorAdmin, cm)
}

// addInfra creates the custom pool infra, selecting the worker MachineConfigs too, and its
// node (which keeps the worker label, so the MCO assigns it to infra).
func (w *modelWorld) addInfra(arm64 bool) {
	if w.pool("infra") != nil {
		return
	}
	w.addPool("infra", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: modelRoleLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"worker", "infra"}}}})
	arch := "amd64"
	if arm64 {
		arch = "arm64"
	}
	w.addNode("infra-0", arch, true)
}

// modelMasterPool is the MCO's control-plane pool.
const modelMasterPool = "master"

// addMaster is the MCO's pool master (it selects role master MachineConfigs only) with node
// master-0, which has no worker label.
func (w *modelWorld) addMaster() {
	if w.pool(modelMasterPool) != nil {
		return
	}
	w.addPool(modelMasterPool, &metav1.LabelSelector{MatchLabels: map[string]string{modelRoleLabel: modelMasterPool}})
	w.mustCreate(actorAdmin, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "master-0", Labels: map[string]string{
		"node-role.kubernetes.io/master": "", corev1.LabelArchStable: "amd64"}}})
	w.nodes["master-0"] = &modelNode{}
}

// rerun is the dashboard's re-run (a copy of labels, annotations and spec, with generateName,
// no owner references and no status) or, edit, its edit-and-run: without the verify task, or
// (otherRepo) pushing IMAGE to another repository.
func (w *modelWorld) rerun(n int, edit, otherRepo bool) {
	runs := w.pipelineRuns()
	if len(runs) == 0 {
		return
	}
	src := runs[n%len(runs)]
	cp := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{GenerateName: src.Name + "-r-", Namespace: src.Namespace,
		Labels: copyMap(src.Labels), Annotations: copyMap(src.Annotations)}, Spec: *src.Spec.DeepCopy()}
	cp.Spec.Status = ""
	if edit && otherRepo {
		_, tag := splitImage(runParam(cp, "IMAGE"))
		for i := range cp.Spec.Params {
			if cp.Spec.Params[i].Name == "IMAGE" {
				cp.Spec.Params[i].Value = *tektonv1.NewStructuredValues(modelOtherRepo + ":" + tag)
			}
		}
	} else if spec := runPipeline(src); edit && spec != nil {
		cp.Spec.PipelineSpec = spec.DeepCopy()
		cp.Spec.PipelineSpec.Tasks = withoutVerifyTasks(spec.Tasks)
	}
	obj, err := w.create(actorDashboard, cp, src.Namespace)
	if err == nil && !edit {
		if t := w.runs[string(modelMeta(obj).GetUID())]; t != nil {
			t.CopyOf = string(src.UID)
		}
	}
}

// editPipeline is an admin's edit in place of the N-th Pipeline the controller made: without the
// verify task (Flag: deleted instead).
func (w *modelWorld) editPipeline(n int, remove bool) {
	var pls []*tektonv1.Pipeline
	for _, o := range w.list(mkPipeline) {
		pls = append(pls, o.(*tektonv1.Pipeline))
	}
	if len(pls) == 0 {
		return
	}
	pl := pls[n%len(pls)].DeepCopy()
	if remove {
		_ = w.remove(actorAdmin, mkPipeline, pl.Namespace, pl.Name)
		return
	}
	pl.Spec.Tasks = withoutVerifyTasks(pl.Spec.Tasks)
	w.mustUpdate(actorAdmin, pl)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// foreignRun is a run with our labels someone wrote from scratch (promoted: of the promoted
// inputs of PoolImage worker, else of inputs nobody declared).
func (w *modelWorld) foreignRun(promoted bool) {
	pi := w.poolImage(modelNS, "worker")
	if pi == nil {
		return
	}
	hash := "feedfacefeedfacefeedfacefeedfacefeedface"
	if promoted {
		if hash = pi.Status.CurrentInputsHash; hash == "" {
			return
		}
	}
	repo, tag := splitImage(pi.Spec.ImagePushSpec)
	pr := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{GenerateName: "manual-", Namespace: modelNS,
		Labels:      generator.Labels(pi.Name, pi.Spec.MachineConfigPool.Name, hash),
		Annotations: map[string]string{layering.PoolImageLabel: pi.Name, layering.PoolLabel: pi.Spec.MachineConfigPool.Name}},
		Spec: tektonv1.PipelineRunSpec{PipelineSpec: generator.PipelineSpec(w.cfg.Generator), Params: tektonv1.Params{
			{Name: "IMAGE", Value: *tektonv1.NewStructuredValues(repo + ":" + hash)},
			{Name: "CURRENT_TAG", Value: *tektonv1.NewStructuredValues(tag)},
			{Name: "TARGET_ARCH", Value: *tektonv1.NewStructuredValues("amd64")}}}}
	_, _ = w.create(actorDashboard, pr, modelNS)
}
