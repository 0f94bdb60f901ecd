package secrets

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// ReaderClusterRole is the ClusterRole (config/200-clusterrole.yaml) that a RoleBinding in a
// PoolImage's namespace grants to the controller's ServiceAccount.
const ReaderClusterRole = "ocl-pipelines-secrets"

// DefaultSyncTimeout is how long Lister waits for a new namespace's informer to sync.
const DefaultSyncTimeout = 10 * time.Second

// ForbiddenError says the controller may not list or watch the Secrets of a namespace.
type ForbiddenError struct {
	// Namespace is the namespace whose Secrets the controller may not read.
	Namespace string
	// ServiceAccount is the controller's ServiceAccount as namespace/name.
	ServiceAccount string
	// Err is the API server's answer.
	Err error
}

// Error names the namespace and the command that creates the RoleBinding that fixes it (oc
// and kubectl spell a ServiceAccount namespace:name).
func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("the controller may not read Secrets in namespace %s (%v): grant it there with `oc -n %s create rolebinding %s --clusterrole=%s --serviceaccount=%s`",
		e.Namespace, e.Err, e.Namespace, ReaderClusterRole, ReaderClusterRole, strings.Replace(e.ServiceAccount, "/", ":", 1))
}

// Unwrap returns the API server's answer.
func (e *ForbiddenError) Unwrap() error { return e.Err }

// Set holds one Secret informer per namespace, started on first use and stopped by Stop or
// when the context given to New is done. It is safe for concurrent use.
type Set struct {
	ctx            context.Context
	kube           kubernetes.Interface
	serviceAccount string
	onChange       func(obj interface{})
	syncTimeout    time.Duration

	mu   sync.Mutex
	byNS map[string]*namespaceInformer
}

type namespaceInformer struct {
	informer cache.SharedIndexInformer
	lister   corelisters.SecretLister
	stop     context.CancelFunc

	mu      sync.Mutex
	lastErr error
}

// Options configure a Set.
type Options struct {
	// ServiceAccount is the controller's ServiceAccount as namespace/name, for the fix in a
	// ForbiddenError.
	ServiceAccount string
	// OnChange is called with every Secret added, updated or deleted in a watched namespace
	// (the controller passes its tracker's OnChanged).
	OnChange func(obj interface{})
	// SyncTimeout bounds the wait for a new namespace's informer; DefaultSyncTimeout if zero.
	SyncTimeout time.Duration
}

// New returns an empty Set; informers run until ctx is done.
func New(ctx context.Context, kube kubernetes.Interface, opts Options) *Set {
	if opts.SyncTimeout == 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	return &Set{ctx: ctx, kube: kube, serviceAccount: opts.ServiceAccount, onChange: opts.OnChange,
		syncTimeout: opts.SyncTimeout, byNS: map[string]*namespaceInformer{}}
}

// Lister returns the Secrets of namespace, starting its informer and waiting for it to sync if
// this is the first call for that namespace. It returns a *ForbiddenError if the API server
// refuses the controller the Secrets of that namespace, and another error if the informer did
// not sync in time (the caller retries).
func (s *Set) Lister(ctx context.Context, namespace string) (corelisters.SecretNamespaceLister, error) {
	ni, err := s.informer(namespace)
	if err != nil {
		return nil, err
	}
	if !ni.informer.HasSynced() {
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, s.syncTimeout, true, func(context.Context) (bool, error) {
			return ni.informer.HasSynced() || ni.err() != nil, nil
		})
		if ferr := ni.forbidden(namespace, s.serviceAccount); ferr != nil {
			return nil, ferr
		}
		if !ni.informer.HasSynced() {
			// The poll ended without a sync: on the informer's last error, or on the timeout.
			cause := ni.err()
			if cause == nil {
				cause = err
			}
			return nil, fmt.Errorf("the Secrets of namespace %s are not read yet: %w", namespace, cause)
		}
	}
	return ni.lister.Secrets(namespace), nil
}

// Namespaces returns the namespaces whose Secrets are watched.
func (s *Set) Namespaces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byNS))
	for ns := range s.byNS {
		out = append(out, ns)
	}
	return out
}

// Stop stops the informer of namespace, if one runs (its last PoolImage is gone).
func (s *Set) Stop(namespace string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ni, ok := s.byNS[namespace]; ok {
		ni.stop()
		delete(s.byNS, namespace)
	}
}

func (s *Set) informer(namespace string) (*namespaceInformer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ni, ok := s.byNS[namespace]; ok {
		return ni, nil
	}
	if err := s.ctx.Err(); err != nil {
		return nil, fmt.Errorf("start the Secret informer of namespace %s: %w", namespace, err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(s.kube, 0, informers.WithNamespace(namespace))
	inf := factory.Core().V1().Secrets()
	ni := &namespaceInformer{informer: inf.Informer(), lister: inf.Lister()}
	if err := ni.informer.SetTransform(TrimData); err != nil {
		return nil, fmt.Errorf("set the Secret informer's transform: %w", err)
	}
	if err := ni.informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		ni.setErr(err)
	}); err != nil {
		return nil, fmt.Errorf("set the Secret informer's error handler: %w", err)
	}
	if s.onChange != nil {
		if _, err := ni.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    s.onChange,
			UpdateFunc: func(_, obj interface{}) { s.onChange(obj) },
			DeleteFunc: s.onChange,
		}); err != nil {
			return nil, fmt.Errorf("add the Secret informer's handler: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ni.stop = cancel
	go ni.informer.RunWithContext(ctx)
	s.byNS[namespace] = ni
	return ni, nil
}

func (ni *namespaceInformer) setErr(err error) {
	ni.mu.Lock()
	defer ni.mu.Unlock()
	ni.lastErr = err
}

func (ni *namespaceInformer) err() error {
	ni.mu.Lock()
	defer ni.mu.Unlock()
	return ni.lastErr
}

// forbidden returns a *ForbiddenError while the informer is unsynced and its last error was a
// refusal; once synced (a RoleBinding was added), Secrets are served again.
func (ni *namespaceInformer) forbidden(namespace, sa string) error {
	if ni.informer.HasSynced() {
		return nil
	}
	if err := ni.err(); err != nil && (apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)) {
		return &ForbiddenError{Namespace: namespace, ServiceAccount: sa, Err: err}
	}
	return nil
}

// TrimData is the informers' transform: it keeps a Secret's metadata and type and drops its
// data, so no Secret content is ever held in the controller's memory.
func TrimData(obj interface{}) (interface{}, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	out := &corev1.Secret{TypeMeta: s.TypeMeta, ObjectMeta: s.ObjectMeta, Type: s.Type, Immutable: s.Immutable}
	out.ManagedFields = nil
	if _, ok := out.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		// kubectl apply keeps the whole Secret, data included, in this annotation.
		ann := make(map[string]string, len(out.Annotations))
		for k, v := range out.Annotations {
			if k != corev1.LastAppliedConfigAnnotation {
				ann[k] = v
			}
		}
		out.Annotations = ann
	}
	return out, nil
}

// RoleBinding returns the RoleBinding that lets serviceAccount (namespace/name) read the
// Secrets of namespace: what the ForbiddenError's command creates.
func RoleBinding(namespace, serviceAccount string) *rbacv1.RoleBinding {
	saNS, saName, _ := strings.Cut(serviceAccount, "/")
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ReaderClusterRole, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ReaderClusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNS, Name: saName}},
	}
}
