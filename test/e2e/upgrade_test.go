//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// renderDelay is the MCO render controller's batching delay (pkg/controller/render: renderDelay).
const renderDelay = 5 * time.Second

// config is one rendered configuration of pool worker: the release's templates (named by the
// base image the ControllerConfig carried) and the OS image.
type renderedConfig struct{ name, template, image string }

// renderer stands in for the MCO's template, render and node controllers for pool worker,
// following the MCO's code (openshift/machine-config-operator, main of 2026-08).
// Templates: the template MachineConfig 00-worker-e2e follows the ControllerConfig's base image
// (a new release brings new templates); like the MCO's own templates it is annotated
// generated-by-controller-version. Render (pkg/controller/render, renderDelay; the merge of
// pkg/controller/common/helpers.go MergeMachineConfigs): a change of the pool's MachineConfigs is
// rendered renderDelay after it is first seen; the MachineConfigs the pool's
// machineConfigSelector selects are merged in the MCO's order (worker-role ones first, then the
// others, each by name); osImageURL starts as the ControllerConfig's baseOSContainerImage
// (GetDefaultBaseImageContainer), and the last non-empty osImageURL of a MachineConfig not
// annotated generated-by-controller-version wins. The rendered MachineConfig (annotated like the
// MCO's) is set as the pool's spec.configuration, also while the pool is paused. Nodes
// (pkg/controller/node): an unpaused pool whose configuration changed rolls it out (one drain
// and reboot per rolled config); a paused pool rolls nothing.
type renderer struct {
	t       *testing.T
	mu      sync.Mutex
	all     []renderedConfig
	rolled  []renderedConfig
	pending bool // a change is seen and not rendered yet
	stop    context.CancelFunc
	done    chan struct{}
}

// templateMC is the stand-in of the MCO's template MachineConfig of pool worker (00-worker).
const templateMC = "00-worker-e2e"

// templateAnnotation names the release whose templates a MachineConfig holds.
const templateAnnotation = "e2e.ocl-pipelines.dev/template"

// desired keeps the template MachineConfig in step with the ControllerConfig (the MCO's template
// controller) and returns the configuration the pool's MachineConfigs merge into.
func (r *renderer) desired(ctx context.Context) (renderedConfig, error) {
	cc, err := clients.mco.MachineconfigurationV1().ControllerConfigs().Get(ctx, "machine-config-controller", metav1.GetOptions{})
	if err != nil {
		return renderedConfig{}, err
	}
	tmpl, err := clients.mco.MachineconfigurationV1().MachineConfigs().Get(ctx, templateMC, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		tmpl = &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: templateMC,
			Labels: map[string]string{"machineconfiguration.openshift.io/role": "worker"},
			Annotations: map[string]string{templateAnnotation: cc.Spec.BaseOSContainerImage,
				generatedByAnnotation: "e2e-standin"}}}
		if _, err := clients.mco.MachineconfigurationV1().MachineConfigs().Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
			return renderedConfig{}, err
		}
	case err != nil:
		return renderedConfig{}, err
	case tmpl.Annotations[templateAnnotation] != cc.Spec.BaseOSContainerImage:
		tmpl.Annotations[templateAnnotation] = cc.Spec.BaseOSContainerImage
		if _, err := clients.mco.MachineconfigurationV1().MachineConfigs().Update(ctx, tmpl, metav1.UpdateOptions{}); err != nil {
			return renderedConfig{}, err
		}
	}
	out := renderedConfig{image: cc.Spec.BaseOSContainerImage}
	pool, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "worker", metav1.GetOptions{})
	if err != nil {
		return renderedConfig{}, err
	}
	sel, err := metav1.LabelSelectorAsSelector(pool.Spec.MachineConfigSelector)
	if err != nil {
		return renderedConfig{}, err
	}
	mcs, err := clients.mco.MachineconfigurationV1().MachineConfigs().List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return renderedConfig{}, err
	}
	items := mcs.Items
	sort.SliceStable(items, func(i, j int) bool {
		wi, wj := items[i].Labels["machineconfiguration.openshift.io/role"] == "worker", items[j].Labels["machineconfiguration.openshift.io/role"] == "worker"
		if wi != wj {
			return wi
		}
		return items[i].Name < items[j].Name
	})
	for _, mc := range items {
		if t := mc.Annotations[templateAnnotation]; t != "" {
			out.template = t
		}
		if _, generated := mc.Annotations[generatedByAnnotation]; !generated && mc.Spec.OSImageURL != "" {
			out.image = mc.Spec.OSImageURL
		}
	}
	return out, nil
}

// generatedByAnnotation marks the MCO's own MachineConfigs; their osImageURL does not count.
const generatedByAnnotation = "machineconfiguration.openshift.io/generated-by-controller-version"

func startRenderer(t *testing.T) *renderer {
	ctx, cancel := context.WithCancel(context.Background())
	r := &renderer{t: t, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		var current renderedConfig
		var due time.Time
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			want, err := r.desired(ctx)
			if err != nil {
				continue
			}
			r.mu.Lock()
			r.pending = want.template != current.template || want.image != current.image
			r.mu.Unlock()
			if want.template != current.template || want.image != current.image {
				now := time.Now()
				if due.IsZero() {
					due = now.Add(renderDelay)
					if current.name == "" {
						due = now
					}
				}
				if now.After(due) {
					n++
					want.name = fmt.Sprintf("rendered-worker-e2e-%d", n)
					mc := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: want.name,
						Annotations: map[string]string{"e2e.ocl-pipelines.dev/template": want.template, generatedByAnnotation: "e2e-standin"}},
						Spec: mcfgv1.MachineConfigSpec{OSImageURL: want.image}}
					if _, err := clients.mco.MachineconfigurationV1().MachineConfigs().Create(ctx, mc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
						continue
					}
					patch := fmt.Sprintf(`{"spec":{"configuration":{"name":%q}}}`, want.name)
					if _, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Patch(ctx, "worker", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
						continue
					}
					current, due = want, time.Time{}
					r.mu.Lock()
					r.all = append(r.all, want)
					r.mu.Unlock()
				}
			}
			pool, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "worker", metav1.GetOptions{})
			if err != nil || pool.Spec.Paused {
				continue
			}
			r.mu.Lock()
			if c := pool.Spec.Configuration.Name; c != "" && (len(r.rolled) == 0 || r.rolled[len(r.rolled)-1].name != c) {
				for _, rc := range r.all {
					if rc.name == c {
						r.rolled = append(r.rolled, rc)
					}
				}
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		r.stop()
		<-r.done
		ctx := context.Background()
		_, _ = clients.mco.MachineconfigurationV1().MachineConfigPools().Patch(ctx, "worker", types.MergePatchType, []byte(`{"spec":{"configuration":null}}`), metav1.PatchOptions{})
		for _, rc := range r.all {
			_ = clients.mco.MachineconfigurationV1().MachineConfigs().Delete(ctx, rc.name, metav1.DeleteOptions{})
		}
		_ = clients.mco.MachineconfigurationV1().MachineConfigs().Delete(ctx, templateMC, metav1.DeleteOptions{})
	})
	return r
}

// rolledSince returns the configurations nodes rolled out after the first n.
func (r *renderer) rolledSince(n int) []renderedConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]renderedConfig(nil), r.rolled[n:]...)
}

func (r *renderer) rolledCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rolled)
}

// standinRelease builds stand-in base and extensions images for tag, and a stand-in release
// payload image whose image-references names them; it returns the three references.
func standinRelease(t *testing.T, tag string) (base, ext, release string) {
	t.Helper()
	registry := os.Getenv("OCL_E2E_REGISTRY")
	cmd := exec.Command("bash", filepath.Join(root, "test/images/build-standin-images.sh"), registry, tag)
	cmd.Env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+localState(t, "images/storage.conf"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build stand-in images %s: %v", tag, err)
	}
	refs := strings.Fields(string(out))
	base, ext = refs[0], refs[1]
	doc := fmt.Sprintf(`{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"4.99.%s"},"spec":{"tags":[`+
		`{"name":"rhel-coreos","from":{"kind":"DockerImage","name":%q}},{"name":"rhel-coreos-extensions","from":{"kind":"DockerImage","name":%q}}]}}`, tag, base, ext)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "release-manifests/image-references", Mode: 0o644, Size: int64(len(doc)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, doc); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(registry+"/standin/release:"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push the stand-in release: %v", err)
	}
	d, _ := img.Digest()
	return base, ext, registry + "/standin/release@" + d.String()
}

// upgradeTo sets the ControllerConfig's base and extensions images, as the MCO does when the
// cluster upgrades, and returns when it did.
func upgradeTo(t *testing.T, base, ext string) time.Time {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"baseOSContainerImage":%q,"baseOSExtensionsContainerImage":%q}}`, base, ext)
	if _, err := clients.mco.MachineconfigurationV1().ControllerConfigs().Patch(context.Background(), "machine-config-controller",
		types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("upgrade the ControllerConfig: %v", err)
	}
	return time.Now()
}

// promotedOn waits until the pool's promoted image is built on base and returns it.
func promotedOn(t *testing.T, ns, base string) string {
	t.Helper()
	var image string
	eventually(t, ns, "the image on base "+base+" promoted", 4*time.Minute, func(ctx context.Context) (bool, error) {
		pi, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || pi.Status.CurrentInputs == nil || pi.Status.CurrentInputs.BaseImage != base || !pi.Status.IsReady() {
			return false, err
		}
		image = pi.Status.CurrentImage
		return true, nil
	})
	return image
}

// waitRolled waits until nodes rolled out a configuration with template and image and the
// renderer has nothing left to render, and returns what nodes rolled out after the first from.
func waitRolled(t *testing.T, r *renderer, ns string, from int, template, image string) []renderedConfig {
	t.Helper()
	var got []renderedConfig
	eventually(t, ns, "nodes on the new templates and image", 2*time.Minute, func(context.Context) (bool, error) {
		r.mu.Lock()
		pending := r.pending
		r.mu.Unlock()
		got = r.rolledSince(from)
		return !pending && len(got) > 0 && got[len(got)-1].template == template && got[len(got)-1].image == image, nil
	})
	return got
}

// TestUpgradeRollsOutOnce: with the MCO's template, render and node behaviour stood in, a cluster
// upgrade rolls each node out once, onto a configuration with both the release's new templates
// and the image rebuilt on its base. The baseline (upgradeStrategy Follow, the MCO's own
// behaviour) rolls out twice. Without a prebuild, the controller holds the pool paused while the
// image is rebuilt. With one (ClusterVersion offers a release whose payload names the new
// images), the image is built before the upgrade, UpgradeReady says so, and the upgrade promotes
// it at once: no second build, no hold.
func TestUpgradeRollsOutOnce(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-rollout"
	noQuietPeriod(t)
	newNamespace(t, ns)
	createPushSecret(t, ns, pushAuth())
	r := startRenderer(t)

	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile("FROM configs AS final\nRUN echo rollout > /etc/rollout && ostree container commit\n"), builders.WithPushSpec(os.Getenv("OCL_E2E_REGISTRY")+"/os/rollout:latest"), builders.WithPushSecret("push"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePoolImage(t, ns) })
	cc, err := clients.mco.MachineconfigurationV1().ControllerConfigs().Get(ctx, "machine-config-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := promotedOn(t, ns, cc.Spec.BaseOSContainerImage)
	waitRolled(t, r, ns, 0, cc.Spec.BaseOSContainerImage, first)

	// 0. The baseline, Follow (the MCO's own behaviour): nodes take the new templates on the old
	// image, then the rebuilt image: two rollouts.
	update(t, ns, func(p *v1alpha1.PoolImage) {
		p.Spec.Promotion = &v1alpha1.Promotion{UpgradeStrategy: v1alpha1.UpgradeFollow}
	})
	base5, ext5, _ := standinRelease(t, "5")
	from := r.rolledCount()
	upgradeTo(t, base5, ext5)
	followed := promotedOn(t, ns, base5)
	rolled := waitRolled(t, r, ns, from, base5, followed)
	if len(rolled) != 2 || rolled[0].image != first || rolled[0].template != base5 {
		t.Errorf("with Follow, nodes rolled out %+v after the upgrade, want 2: the new templates on %s, then the new image", rolled, first)
	}
	t.Logf("Follow: nodes rolled out %d configurations after the upgrade", len(rolled))
	fmt.Printf("bench: upgrade.rollouts_follow=%d\n", len(rolled)) // make bench-build reads these
	update(t, ns, func(p *v1alpha1.PoolImage) { p.Spec.Promotion = nil })

	// 1. No prebuild: the pool is held while the image is rebuilt.
	base3, ext3, _ := standinRelease(t, "3")
	from = r.rolledCount()
	runsBefore := countRuns(t, ns)
	start := upgradeTo(t, base3, ext3)
	held := false
	eventually(t, ns, "the pool held", time.Minute, func(ctx context.Context) (bool, error) {
		pool, err := clients.mco.MachineconfigurationV1().MachineConfigPools().Get(ctx, "worker", metav1.GetOptions{})
		held = err == nil && pool.Spec.Paused && pool.Annotations[layering.PausedByAnnotation] == ns+"/worker"
		return held, err
	})
	second := promotedOn(t, ns, base3)
	withoutPrebuild := time.Since(start)
	rolled = waitRolled(t, r, ns, from, base3, second)
	if len(rolled) != 1 {
		t.Errorf("without a prebuild, nodes rolled out %d configurations after the upgrade, want 1 (templates and image together): %+v", len(rolled), rolled)
	}
	if n := countRuns(t, ns) - runsBefore; n != 1 {
		t.Errorf("the upgrade started %d builds, want 1", n)
	}
	r.mu.Lock()
	intermediate := len(r.all)
	r.mu.Unlock()
	t.Logf("without a prebuild: base change → promotion %s; %d configurations rendered in all, nodes rolled %d after the upgrade", withoutPrebuild.Round(time.Second), intermediate, len(rolled))
	fmt.Printf("bench: upgrade.rollouts_held=%d\nbench: upgrade.rebuild_promotion_seconds=%.1f\n", len(rolled), withoutPrebuild.Seconds())

	// 2. With a prebuild: ClusterVersion offers release 4.99.4.
	base4, ext4, release4 := standinRelease(t, "4")
	version := &configv1.ClusterVersion{ObjectMeta: metav1.ObjectMeta{Name: "version"},
		Spec: configv1.ClusterVersionSpec{ClusterID: "6a7f3c2e-1d44-4a0b-9a5e-0c5b2f1e8d90", Channel: "stable-4.99"}}
	created, err := clients.config.ConfigV1().ClusterVersions().Create(ctx, version, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ClusterVersion: %v", err)
	}
	t.Cleanup(func() {
		_ = clients.config.ConfigV1().ClusterVersions().Delete(context.Background(), "version", metav1.DeleteOptions{})
	})
	created.Status = configv1.ClusterVersionStatus{Desired: configv1.Release{Version: "4.99.3", Image: "stand-in"}, VersionHash: "e2e", ObservedGeneration: 1,
		AvailableUpdates: []configv1.Release{{Version: "4.99.4", Image: release4}}}
	if _, err := clients.config.ConfigV1().ClusterVersions().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("ClusterVersion status: %v", err)
	}
	var prebuilt string
	eventually(t, ns, "UpgradeReady for 4.99.4", 4*time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := got.Status.GetCondition(v1alpha1.ConditionUpgradeReady)
		if c != nil && c.IsFalse() {
			return false, fmt.Errorf("the prebuild failed: %s", c.Message)
		}
		if c == nil || !c.IsTrue() || got.Status.Upgrade == nil || got.Status.Upgrade.Release != "4.99.4" || got.Status.Upgrade.BaseImage != base4 {
			return false, nil
		}
		prebuilt = got.Status.Upgrade.Image
		return true, nil
	})
	if got := poolImage(t, ns).Status.CurrentImage; got != second {
		t.Errorf("the prebuild promoted %s before the upgrade", got)
	}
	from = r.rolledCount()
	runsBefore = countRuns(t, ns)
	heldBefore := countEvents(t, ns, v1alpha1.ReasonPoolHeld)
	start = upgradeTo(t, base4, ext4)
	third := promotedOn(t, ns, base4)
	withPrebuild := time.Since(start)
	if third != prebuilt {
		t.Errorf("the upgrade promoted %s, want the prebuilt %s", third, prebuilt)
	}
	rolled = waitRolled(t, r, ns, from, base4, third)
	if len(rolled) != 1 {
		t.Errorf("with a prebuild, nodes rolled out %d configurations after the upgrade, want 1: %+v", len(rolled), rolled)
	}
	if n := countRuns(t, ns) - runsBefore; n != 0 {
		t.Errorf("the upgrade started %d builds, want none: the prebuilt image is reused", n)
	}
	if n := countEvents(t, ns, v1alpha1.ReasonPoolHeld) - heldBefore; n != 0 {
		t.Errorf("the pool was held %d times with a prebuilt image, want 0", n)
	}
	t.Logf("with a prebuild: base change → promotion %s (without: %s)", withPrebuild.Round(10*time.Millisecond), withoutPrebuild.Round(time.Second))
	fmt.Printf("bench: upgrade.rollouts_prebuilt=%d\nbench: upgrade.prebuilt_promotion_seconds=%.2f\n", len(rolled), withPrebuild.Seconds())
	if !held {
		t.Error("the pool was never held during the rebuild")
	}
}

func countRuns(t *testing.T, ns string) int {
	t.Helper()
	l, err := clients.tekton.TektonV1().PipelineRuns(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

func countEvents(t *testing.T, ns, reason string) int {
	t.Helper()
	l, err := clients.kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=" + reason})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range l.Items {
		n += int(e.Count)
		if e.Count == 0 {
			n++
		}
	}
	return n
}
