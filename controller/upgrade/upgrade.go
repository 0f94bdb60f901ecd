package upgrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	configv1 "github.com/openshift/api/config/v1"
	configclient "github.com/openshift/client-go/config/clientset/versioned"
	configinformers "github.com/openshift/client-go/config/informers/externalversions"
	configlisters "github.com/openshift/client-go/config/listers/config/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/registryauth"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/release"
)

// ClusterVersionName is the name of the cluster's one ClusterVersion.
const ClusterVersionName = "version"

// resolveTimeout bounds the read of one release image.
const resolveTimeout = 30 * time.Second

// retryAfter is how long a release that could not be read is not read again.
const retryAfter = time.Minute

// Candidate is the release the cluster is about to upgrade to.
type Candidate struct {
	// Version is the release's version, e.g. 4.18.3.
	Version string
	// Image is the release payload image.
	Image string
	// Targeted is true when spec.desiredUpdate asks for it, false when it is only offered.
	Targeted bool
	// OS are the release's OS and extensions images.
	OS release.OSImages
}

// Resolver reads a release's OS images (release.Resolve in production).
type Resolver func(ctx context.Context, image string, kc authn.Keychain) (release.OSImages, error)

// Candidates answers which release comes next and with which OS images.
type Candidates struct {
	lister         configlisters.ClusterVersionLister
	synced         cache.InformerSynced
	kube           kubernetes.Interface
	pullSecretNS   string
	pullSecretName string
	resolve        Resolver
	now            func() time.Time

	onChange func()

	mu      sync.Mutex
	cache   map[string]resolved
	reading map[string]bool
}

// ErrReading says the candidate release's images are being read; OnChange is called when they
// are known.
var ErrReading = errors.New("reading the release image")

type resolved struct {
	os  release.OSImages
	err error
	at  time.Time
}

// Options configure Candidates.
type Options struct {
	// PullSecretNamespace and PullSecretName name the dockerconfigjson Secret the release image
	// is read with (the cluster's global pull secret).
	PullSecretNamespace, PullSecretName string
	// Resolve reads a release; release.Resolve if nil.
	Resolve Resolver
	// OnChange is called when ClusterVersion changes.
	OnChange func()
}

// Available reports whether the API server serves config.openshift.io/v1 ClusterVersions.
func Available(d discovery.DiscoveryInterface) bool {
	l, err := d.ServerResourcesForGroupVersion(configv1.GroupVersion.String())
	if err != nil {
		return false
	}
	for _, r := range l.APIResources {
		if r.Name == "clusterversions" {
			return true
		}
	}
	return false
}

// New watches ClusterVersion through config until ctx is done.
func New(ctx context.Context, config configclient.Interface, kube kubernetes.Interface, opts Options) (*Candidates, error) {
	factory := configinformers.NewSharedInformerFactory(config, 0)
	inf := factory.Config().V1().ClusterVersions()
	if opts.OnChange != nil {
		if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(interface{}) { opts.OnChange() },
			UpdateFunc: func(_, _ interface{}) { opts.OnChange() },
			DeleteFunc: func(interface{}) { opts.OnChange() },
		}); err != nil {
			return nil, fmt.Errorf("watch ClusterVersion: %w", err)
		}
	}
	c := NewFromLister(inf.Lister(), inf.Informer().HasSynced, kube, opts)
	go inf.Informer().RunWithContext(ctx)
	return c, nil
}

// NewFromLister answers from a ClusterVersion lister (tests, and New).
func NewFromLister(lister configlisters.ClusterVersionLister, synced cache.InformerSynced, kube kubernetes.Interface, opts Options) *Candidates {
	resolve := opts.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, image string, kc authn.Keychain) (release.OSImages, error) {
			return release.Resolve(ctx, image, kc)
		}
	}
	return &Candidates{lister: lister, synced: synced, kube: kube, pullSecretNS: opts.PullSecretNamespace,
		pullSecretName: opts.PullSecretName, resolve: resolve, now: time.Now, onChange: opts.OnChange,
		cache: map[string]resolved{}, reading: map[string]bool{}}
}

// Next returns the release the cluster is about to upgrade to, with its OS images, or nil when
// there is none (no ClusterVersion, nothing targeted or offered). The images of a release are
// read once, in the background: until they are known Next returns an error wrapping
// ErrReading, and OnChange is called when they are. A failure is retried after a minute.
func (c *Candidates) Next(ctx context.Context) (*Candidate, error) {
	if !c.synced() {
		return nil, nil
	}
	cv, err := c.lister.Get(ClusterVersionName)
	if apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("get ClusterVersion %s: %w", ClusterVersionName, err)
	}
	next, targeted := pick(cv)
	if next == nil {
		return nil, nil
	}
	os, err := c.osImages(next.Image)
	if err != nil {
		return nil, fmt.Errorf("release %s (%s): %w", next.Version, next.Image, err)
	}
	if next.Version == "" {
		next.Version = os.Version
	}
	return &Candidate{Version: next.Version, Image: next.Image, Targeted: targeted, OS: os}, nil
}

// pick returns the release spec.desiredUpdate targets when it is not the current one, else the
// newest available update.
func pick(cv *configv1.ClusterVersion) (*configv1.Release, bool) {
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
			return nil, false // the upgrade to it has started: ControllerConfig follows
		}
	}
	offered := append([]configv1.Release(nil), cv.Status.AvailableUpdates...)
	sort.SliceStable(offered, func(i, j int) bool { return newer(offered[i].Version, offered[j].Version) })
	for i := range offered {
		if offered[i].Image != "" && offered[i].Image != current.Image {
			return &offered[i], false
		}
	}
	return nil, false
}

// newer reports whether version a sorts after b (semantic versions; unparsable ones last).
func newer(a, b string) bool {
	va, errA := version.ParseSemantic(a)
	vb, errB := version.ParseSemantic(b)
	switch {
	case errA != nil:
		return false
	case errB != nil:
		return true
	}
	return vb.LessThan(va)
}

func (c *Candidates) osImages(image string) (release.OSImages, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.cache[image]; ok && (r.err == nil || c.now().Sub(r.at) < retryAfter) {
		return r.os, r.err
	}
	if !c.reading[image] {
		// Read in the background: a slow registry must not hold up the reconciles that ask.
		c.reading[image] = true
		go c.read(image)
	}
	return release.OSImages{}, ErrReading
}

// read reads a release's OS images into the cache and reports the change.
func (c *Candidates) read(image string) {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	var os release.OSImages
	kc, err := c.keychain(ctx)
	if err == nil {
		os, err = c.resolve(ctx, image, kc)
	}
	c.mu.Lock()
	c.cache[image] = resolved{os: os, err: err, at: c.now()}
	delete(c.reading, image)
	c.mu.Unlock()
	if c.onChange != nil {
		c.onChange()
	}
}

// keychain reads the pull secret at the moment it is needed; its credentials are not kept.
func (c *Candidates) keychain(ctx context.Context) (authn.Keychain, error) {
	s, err := c.kube.CoreV1().Secrets(c.pullSecretNS).Get(ctx, c.pullSecretName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read the pull secret %s/%s: %w", c.pullSecretNS, c.pullSecretName, err)
	}
	kc, err := registryauth.Keychain(bytes.NewReader(s.Data[corev1.DockerConfigJsonKey]))
	if err != nil {
		return nil, fmt.Errorf("the pull secret %s/%s: %w", c.pullSecretNS, c.pullSecretName, err)
	}
	return kc, nil
}
