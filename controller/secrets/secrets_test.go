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
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clientgotesting "k8s.io/client-go/testing"
)

func secret(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{
			corev1.LastAppliedConfigAnnotation: `{"data":{"token":"c2VjcmV0LWNhbmFyeQ=="}}`, "keep": "me"}},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte("secret-canary")},
		StringData: map[string]string{"x": "secret-canary"},
	}
}

// lockedClient refuses list and watch of Secrets in namespace "locked" while locked is true.
func lockedClient(locked *atomic.Bool, objs ...runtime.Object) *fake.Clientset {
	kube := fake.NewSimpleClientset(objs...)
	refuse := func(a clientgotesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "locked" && locked.Load() {
			return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New(`cannot list resource "secrets" in the namespace "locked"`))
		}
		return false, nil, nil
	}
	kube.PrependReactor("list", "secrets", refuse)
	kube.PrependWatchReactor("secrets", func(a clientgotesting.Action) (bool, watch.Interface, error) {
		if a.GetNamespace() == "locked" && locked.Load() {
			return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New("cannot watch"))
		}
		return false, nil, nil
	})
	return kube
}

func TestListerServesOneNamespaceWithoutData(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var locked atomic.Bool
	kube := lockedClient(&locked, secret("team-a", "push"), secret("team-b", "other"))
	var mu sync.Mutex
	var changed []string
	set := New(ctx, kube, Options{ServiceAccount: "ocl-pipelines/ocl-pipelines-controller", OnChange: func(obj interface{}) {
		mu.Lock()
		defer mu.Unlock()
		changed = append(changed, obj.(*corev1.Secret).Name)
	}})

	l, err := set.Lister(ctx, "team-a")
	if err != nil {
		t.Fatalf("Lister(team-a): %v", err)
	}
	s, err := l.Get("push")
	if err != nil {
		t.Fatalf("Get(push): %v", err)
	}
	if s.Type != corev1.SecretTypeDockerConfigJson {
		t.Errorf("type = %q, want it kept", s.Type)
	}
	if len(s.Data) != 0 || len(s.StringData) != 0 || strings.Contains(s.String(), "secret-canary") || strings.Contains(s.String(), "c2VjcmV0LWNhbmFyeQ") {
		t.Errorf("cached Secret holds its data: %v", s)
	}
	if s.Annotations["keep"] != "me" {
		t.Errorf("other annotations dropped: %v", s.Annotations)
	}
	if _, err := l.Get("other"); !apierrors.IsNotFound(err) {
		t.Errorf("Get(other) in team-a = %v, want NotFound (it is in team-b)", err)
	}
	for _, a := range kube.Actions() {
		if (a.GetVerb() == "list" || a.GetVerb() == "watch") && a.GetNamespace() != "team-a" {
			t.Errorf("%s of Secrets in namespace %q: only team-a was asked for", a.GetVerb(), a.GetNamespace())
		}
	}
	if got := set.Namespaces(); len(got) != 1 || got[0] != "team-a" {
		t.Errorf("Namespaces() = %v, want [team-a]", got)
	}

	// A change reaches OnChange.
	if _, err := kube.CoreV1().Secrets("team-a").Create(ctx, secret("team-a", "pull"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(changed, ","), "pull"), nil
	}); err != nil {
		t.Fatalf("OnChange never saw the new Secret: %v (saw %v)", err, changed)
	}

	set.Stop("team-a")
	if got := set.Namespaces(); len(got) != 0 {
		t.Errorf("after Stop, Namespaces() = %v", got)
	}
}

func TestListerNamesTheRoleBindingUntilGranted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var locked atomic.Bool
	locked.Store(true)
	kube := lockedClient(&locked, secret("locked", "push"))
	set := New(ctx, kube, Options{ServiceAccount: "ocl-pipelines/ocl-pipelines-controller"})

	_, err := set.Lister(ctx, "locked")
	var forbidden *ForbiddenError
	if !errors.As(err, &forbidden) {
		t.Fatalf("Lister(locked) = %v, want a *ForbiddenError", err)
	}
	want := "grant it there with `oc -n locked create rolebinding ocl-pipelines-secrets --clusterrole=ocl-pipelines-secrets --serviceaccount=ocl-pipelines:ocl-pipelines-controller`"
	if !strings.Contains(err.Error(), want) || !apierrors.IsForbidden(err) {
		t.Errorf("error %q: want it to contain %q and unwrap to Forbidden", err, want)
	}

	// The admin binds the role: the informer's retry syncs and the Secret is served.
	locked.Store(false)
	var got *corev1.Secret
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		l, err := set.Lister(ctx, "locked")
		if err != nil {
			return false, nil
		}
		got, err = l.Get("push")
		return err == nil, nil
	}); err != nil {
		t.Fatalf("Secrets of the namespace never served after the grant: %v", err)
	}
	if len(got.Data) != 0 {
		t.Errorf("cached Secret holds data")
	}
}

func TestListerAfterContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	set := New(ctx, fake.NewSimpleClientset(), Options{})
	cancel()
	if _, err := set.Lister(context.Background(), "team-a"); err == nil || !strings.Contains(err.Error(), "team-a") {
		t.Errorf("Lister after the Set's context ended = %v, want an error naming the namespace", err)
	}
}

// An API error other than a refusal is returned for a retry, not reported as a missing grant.
func TestListerRetriesOtherErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube := fake.NewSimpleClientset()
	kube.PrependReactor("list", "secrets", func(clientgotesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd is busy")
	})
	set := New(ctx, kube, Options{SyncTimeout: 5 * time.Second})
	_, err := set.Lister(ctx, "team-a")
	var forbidden *ForbiddenError
	if err == nil || errors.As(err, &forbidden) || !apierrors.IsServiceUnavailable(err) ||
		!strings.Contains(err.Error(), "the Secrets of namespace team-a are not read yet") {
		t.Errorf("Lister = %v, want an unavailable error naming the namespace, not a ForbiddenError", err)
	}
}
