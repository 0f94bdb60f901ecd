package upgrade

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	configv1 "github.com/openshift/api/config/v1"
	configlisters "github.com/openshift/client-go/config/listers/config/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/release"
)

const (
	img417 = "quay.io/openshift-release-dev/ocp-release@sha256:4170000000000000000000000000000000000000000000000000000000000000"
	img418 = "quay.io/openshift-release-dev/ocp-release@sha256:4180000000000000000000000000000000000000000000000000000000000000"
	img419 = "quay.io/openshift-release-dev/ocp-release@sha256:4190000000000000000000000000000000000000000000000000000000000000"
	img420 = "quay.io/openshift-release-dev/ocp-release@sha256:4200000000000000000000000000000000000000000000000000000000000000"
)

func cv(desired *configv1.Update, available ...configv1.Release) *configv1.ClusterVersion {
	return &configv1.ClusterVersion{ObjectMeta: metav1.ObjectMeta{Name: ClusterVersionName},
		Spec:   configv1.ClusterVersionSpec{DesiredUpdate: desired},
		Status: configv1.ClusterVersionStatus{Desired: configv1.Release{Version: "4.17.0", Image: img417}, AvailableUpdates: available}}
}

func TestPick(t *testing.T) {
	offered := []configv1.Release{{Version: "4.18.10", Image: img418}, {Version: "4.19.2", Image: img419}, {Version: "4.18.9", Image: img418}}
	for _, c := range []struct {
		name     string
		cv       *configv1.ClusterVersion
		want     string
		targeted bool
	}{
		{"nothing offered", cv(nil), "", false},
		{"the newest offered", cv(nil, offered...), img419, false},
		{"targeted by image", cv(&configv1.Update{Image: img420}, offered...), img420, true},
		{"targeted by version only", cv(&configv1.Update{Version: "4.18.10"}, offered...), img418, true},
		{"targeted and started (desired is current)", cv(&configv1.Update{Image: img417}, offered...), "", false},
		{"unparsable versions last", cv(nil, configv1.Release{Version: "nightly", Image: img420}, configv1.Release{Version: "4.18.1", Image: img418}), img418, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, targeted := pick(c.cv)
			got := ""
			if r != nil {
				got = r.Image
			}
			if got != c.want || targeted != c.targeted {
				t.Errorf("pick = %q, targeted %v; want %q, %v", got, targeted, c.want, c.targeted)
			}
		})
	}
}

func TestNextReadsEachReleaseOnceWithThePullSecret(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	lister := configlisters.NewClusterVersionLister(idx)
	synced := func() bool { return true }
	kube := fake.NewSimpleClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "openshift-config", Name: "pull-secret"},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz"}}}`)}})
	var calls atomic.Int32
	var fail atomic.Bool
	fail.Store(true)
	read := make(chan struct{}, 10)
	var mu sync.Mutex
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	c := NewFromLister(lister, synced, kube, Options{PullSecretNamespace: "openshift-config", PullSecretName: "pull-secret",
		OnChange: func() { read <- struct{}{} },
		Resolve: func(_ context.Context, image string, kc authn.Keychain) (release.OSImages, error) {
			calls.Add(1)
			ref, _ := name.ParseReference(image)
			a, err := kc.Resolve(ref.Context())
			if err != nil {
				return release.OSImages{}, err
			}
			cfg, _ := a.Authorization()
			if cfg.Auth != "dXNlcjpwYXNz" && cfg.Username != "user" {
				return release.OSImages{}, errors.New("not the pull secret's credentials")
			}
			if fail.Load() {
				return release.OSImages{}, errors.New("registry unavailable")
			}
			return release.OSImages{Version: "4.19.2", BaseOS: "quay.io/os@sha256:1"}, nil
		}})
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := context.Background()
	// next waits for the background read that a call to Next started, then asks again.
	next := func() (*Candidate, error) {
		if got, err := c.Next(ctx); !errors.Is(err, ErrReading) {
			return got, err
		}
		select {
		case <-read:
		case <-time.After(30 * time.Second):
			t.Fatal("the background read never reported")
		}
		return c.Next(ctx)
	}

	if got, err := c.Next(ctx); got != nil || err != nil {
		t.Fatalf("without a ClusterVersion: %+v, %v", got, err)
	}
	if err := idx.Add(cv(nil, configv1.Release{Version: "4.19.2", Image: img419})); err != nil {
		t.Fatal(err)
	}
	if _, err := next(); err == nil || !strings.Contains(err.Error(), "release 4.19.2 ("+img419+"): registry unavailable") {
		t.Fatalf("a failing read: err = %v", err)
	}
	fail.Store(false)
	if _, err := c.Next(ctx); err == nil || errors.Is(err, ErrReading) || calls.Load() != 1 {
		t.Fatalf("within a minute of a failure: err = %v after %d reads, want the cached failure", err, calls.Load())
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	got, err := next()
	if err != nil || got.Version != "4.19.2" || got.Image != img419 || got.OS.BaseOS != "quay.io/os@sha256:1" || got.Targeted {
		t.Fatalf("Next = %+v, %v", got, err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d reads of the release image, want 2 (one failed, one succeeded, then cached)", calls.Load())
	}
}

func TestAvailable(t *testing.T) {
	kube := fake.NewSimpleClientset()
	if Available(kube.Discovery()) {
		t.Error("Available without the API")
	}
	kube.Resources = []*metav1.APIResourceList{{GroupVersion: "config.openshift.io/v1", APIResources: []metav1.APIResource{{Name: "clusterversions"}}}}
	if !Available(kube.Discovery()) {
		t.Error("not Available with the API")
	}
}
