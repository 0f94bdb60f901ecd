package secrets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	clientgotesting "k8s.io/client-go/testing"
)

func globalPullSecret(auths string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: GlobalPullSecretNamespace, Name: GlobalPullSecretName,
		Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "secret-canary"}},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{` + auths + `}}`)}}
}

func TestPullSecretHostsKeepsOnlyRegistries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var locked atomic.Bool
	kube := lockedClient(&locked, globalPullSecret(`"quay.io":{"auth":"c2VjcmV0LWNhbmFyeQ=="},"registry.example.com:5000":{"auth":"c2VjcmV0LWNhbmFyeQ=="}`))
	// The fake clientset's watch replays nothing: a deletion between the informer's list and
	// its watch would never arrive. Delete only once the watch is registered.
	watching := make(chan struct{})
	var once sync.Once
	kube.PrependWatchReactor("secrets", func(a clientgotesting.Action) (bool, watch.Interface, error) {
		w, err := kube.Tracker().Watch(a.GetResource(), a.GetNamespace())
		if err == nil {
			once.Do(func() { close(watching) })
		}
		return true, w, err
	})
	var changes atomic.Int32
	p, err := NewPullSecretHosts(ctx, kube, GlobalPullSecretNamespace, GlobalPullSecretName, func(interface{}) { changes.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		hosts, err = p.Hosts()
		return err == nil, nil
	}); err != nil {
		t.Fatalf("Hosts never known: %v", err)
	}
	if strings.Join(hosts, ",") != "quay.io,registry.example.com:5000" {
		t.Errorf("hosts = %v", hosts)
	}
	obj, _, _ := p.informer.GetStore().GetByKey(GlobalPullSecretNamespace + "/" + GlobalPullSecretName)
	if s := obj.(*corev1.Secret); strings.Contains(s.String(), "c2VjcmV0LWNhbmFyeQ") || strings.Contains(s.String(), "secret-canary") {
		t.Errorf("the cache holds credentials: %v", s)
	}
	if changes.Load() == 0 {
		t.Error("onChange was not called")
	}
	select {
	case <-watching:
	case <-time.After(30 * time.Second):
		t.Fatal("the informer never watched the pull secret")
	}
	if err := kube.CoreV1().Secrets(GlobalPullSecretNamespace).Delete(ctx, GlobalPullSecretName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		_, err = p.Hosts()
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("a deleted pull secret: Hosts error %v, want NotFound", err)
	}
}

func TestPullSecretHostsForbidden(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var locked atomic.Bool
	locked.Store(true)
	kube := lockedClient(&locked)
	p, err := NewPullSecretHosts(ctx, kube, "locked", GlobalPullSecretName, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		_, err = p.Hosts()
		return apierrors.IsForbidden(errors.Unwrap(err)), nil
	}); err != nil {
		t.Fatalf("Hosts error %v, want the refusal", err)
	}
	if !strings.Contains(err.Error(), "cannot read Secret locked/pull-secret") {
		t.Errorf("error %q does not name the Secret", err)
	}
}

// client-go may apply a transform again to an object it transformed.
func TestTrimToHostsIsIdempotent(t *testing.T) {
	once, _ := TrimToHosts(globalPullSecret(`"quay.io":{"auth":"eA=="}`))
	twice, _ := TrimToHosts(once)
	if got := HostsOf(twice.(*corev1.Secret)); len(got) != 1 || got[0] != "quay.io" {
		t.Errorf("hosts after a second transform = %v, want [quay.io]", got)
	}
	d1, _ := TrimData(secret("a", "b"))
	d2, _ := TrimData(d1)
	if d2.(*corev1.Secret).Type != corev1.SecretTypeDockerConfigJson {
		t.Errorf("TrimData twice lost the type")
	}
}

func TestHasCredentials(t *testing.T) {
	hosts := []string{"https://index.docker.io/v1/", "quay.io/team", "registry.example.com:5000", "http://plain.example.com/"}
	for repo, want := range map[string]bool{
		"docker.io/library/os":          true,
		"index.docker.io/x/os":          true,
		"quay.io/team/os":               true,
		"quay.io/team":                  true,
		"quay.io/teamx/os":              false,
		"quay.io/other/os":              false,
		"registry.example.com:5000/os":  true,
		"registry.example.com/os":       false,
		"registry.example.com:50001/os": false,
		"plain.example.com/os":          true,
	} {
		if got := HasCredentials(hosts, repo); got != want {
			t.Errorf("HasCredentials(%s) = %v, want %v", repo, got, want)
		}
	}
}
