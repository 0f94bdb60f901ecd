package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// The cluster's global pull secret: the credentials every node uses, also at first boot.
const (
	GlobalPullSecretNamespace = "openshift-config"
	GlobalPullSecretName      = "pull-secret"
)

// hostsKey is where TrimToHosts keeps the registries of a pull secret, one per line.
const hostsKey = "ocl-pipelines.hosts"

// PullSecretHosts watches one dockerconfigjson Secret (the cluster's global pull secret) and
// keeps only the registries it has credentials for, never the credentials. It needs get, list
// and watch on that one Secret (resourceNames), nothing else in its namespace.
type PullSecretHosts struct {
	informer cache.SharedIndexInformer
	ns, name string

	mu      sync.Mutex
	lastErr error
}

// NewPullSecretHosts starts watching Secret namespace/name until ctx is done; onChange is
// called on every change of it.
func NewPullSecretHosts(ctx context.Context, kube kubernetes.Interface, namespace, name string, onChange func(obj interface{})) (*PullSecretHosts, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	p := &PullSecretHosts{informer: factory.Core().V1().Secrets().Informer(), ns: namespace, name: name}
	if err := p.informer.SetTransform(TrimToHosts); err != nil {
		return nil, fmt.Errorf("set the pull secret informer's transform: %w", err)
	}
	if err := p.informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.lastErr = err
	}); err != nil {
		return nil, fmt.Errorf("set the pull secret informer's error handler: %w", err)
	}
	if onChange != nil {
		if _, err := p.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: onChange, UpdateFunc: func(_, obj interface{}) { onChange(obj) }, DeleteFunc: onChange,
		}); err != nil {
			return nil, fmt.Errorf("add the pull secret informer's handler: %w", err)
		}
	}
	go p.informer.RunWithContext(ctx)
	return p, nil
}

// Hosts returns the registries the pull secret has credentials for. The error says why they
// are unknown: the informer has not synced (or may not read the Secret), or the Secret does not
// exist.
func (p *PullSecretHosts) Hosts() ([]string, error) {
	if !p.informer.HasSynced() {
		p.mu.Lock()
		err := p.lastErr
		p.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("cannot read Secret %s/%s: %w", p.ns, p.name, err)
		}
		return nil, fmt.Errorf("secret %s/%s is not read yet", p.ns, p.name)
	}
	obj, ok, err := p.informer.GetStore().GetByKey(p.ns + "/" + p.name)
	if err != nil {
		return nil, fmt.Errorf("read Secret %s/%s: %w", p.ns, p.name, err)
	}
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("secrets"), p.ns+"/"+p.name)
	}
	return HostsOf(obj.(*corev1.Secret)), nil
}

// HostsOf returns the registries TrimToHosts kept from a pull secret.
func HostsOf(s *corev1.Secret) []string {
	v := string(s.Data[hostsKey])
	if v == "" {
		return nil
	}
	return strings.Split(v, "\n")
}

// TrimToHosts is the pull secret informer's transform: it replaces a dockerconfigjson Secret's
// data by the sorted list of registries it has credentials for. Like every informer transform
// it may be given an object it has already transformed (client-go re-applies it): such an
// object is returned as it is.
func TrimToHosts(obj interface{}) (interface{}, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	if _, done := s.Data[hostsKey]; done && len(s.Data) == 1 {
		return s, nil
	}
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	hosts := []string{}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err == nil {
		for h := range cfg.Auths {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	out := &corev1.Secret{TypeMeta: s.TypeMeta, ObjectMeta: s.ObjectMeta, Type: s.Type,
		Data: map[string][]byte{hostsKey: []byte(strings.Join(hosts, "\n"))}}
	out.ManagedFields = nil
	out.Annotations = nil
	return out, nil
}

// HasCredentials reports whether a pull secret with credentials for hosts (auths keys, as
// written: host, host:port, host/path, with or without https://) covers repository
// (host[:port]/path). Docker Hub's names are treated as one.
func HasCredentials(hosts []string, repository string) bool {
	repo := normalizeRegistry(repository)
	for _, h := range hosts {
		k := normalizeRegistry(h)
		if k == "" {
			continue
		}
		if repo == k || strings.HasPrefix(repo, k+"/") {
			return true
		}
	}
	return false
}

func normalizeRegistry(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	s = strings.TrimSuffix(s, "/v1")
	s = strings.TrimSuffix(s, "/v2")
	for _, hub := range []string{"index.docker.io", "registry-1.docker.io"} {
		if s == hub || strings.HasPrefix(s, hub+"/") {
			s = "docker.io" + strings.TrimPrefix(s, hub)
		}
	}
	return s
}
