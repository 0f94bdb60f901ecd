package generator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"knative.dev/pkg/apis"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

const defaultPipelineTimeout = time.Hour

// Inputs are the cluster facts a build depends on, resolved by the caller: the controller reads
// them from its listers, the CLI takes them as flags. Nothing here is secret: Secrets are
// referenced by name and mounted into the build, never read.
type Inputs struct {
	// BaseImage is the base OS image pinned by digest (repository@sha256:<hex>): the
	// ControllerConfig's baseOSContainerImage, or spec.baseImage resolved. Required.
	BaseImage string
	// ExtensionsImage is the CoreOS extensions image, pinned by digest; empty for none.
	ExtensionsImage string
	// Arch is the pool's node architecture; empty means amd64.
	Arch v1alpha1.Arch
	// DefaultEntitlementSecret reports that a Secret named etc-pki-entitlement exists in the
	// PoolImage's namespace; it is wired in when spec.entitlements.secret is unset.
	DefaultEntitlementSecret bool
	// YumReposSHA256 is the sha256 of the data of the ConfigMap spec.entitlements.yumRepos
	// names (see ContentSHA256). It decides which packages RUN steps see.
	YumReposSHA256 string
	// TrustedCA is the cluster's additional trust bundle, when there is one, baked into the
	// image and trusted by RUN steps.
	TrustedCA *TrustedCA
	// Proxy is the cluster's proxy, used by buildah and RUN steps.
	Proxy Proxy
	// DefaultPullSecret names the Secret that pulls the base image when
	// spec.baseImagePullSecret is unset (the controller's copy of the global pull secret).
	DefaultPullSecret string
	// Trigger says why the build starts. It is recorded in an annotation and is not a build
	// input; empty records none.
	Trigger Trigger
	// Changed lists what changed against the promoted image (ChangedInputs), for the run's
	// description (RunDescription); not a build input.
	Changed []string
	// Config is the platform team's defaults.
	Config Config
}

// Trigger says why a build starts; the run's trigger annotation (layering.TriggerAnnotation)
// records it.
type Trigger string

// The triggers of the builds the controller starts.
const (
	// TriggerSpec is a build of new inputs: a new PoolImage, or a change of its spec or of what
	// it depends on.
	TriggerSpec Trigger = "spec"
	// TriggerUpgrade is a rebuild on the new base image of a release the cluster upgraded to.
	TriggerUpgrade Trigger = "upgrade"
	// TriggerRetry is a re-run of the same inputs, asked for with the retry annotation.
	TriggerRetry Trigger = "retry"
	// TriggerAutoRetry is the one automatic retry of a failed rebuild on a new base image.
	TriggerAutoRetry Trigger = "auto-retry"
	// TriggerPrebuild is a build for a release the cluster is about to upgrade to.
	TriggerPrebuild Trigger = "prebuild"
)

// RunDescription is a run's layering.DescriptionAnnotation, which the dashboard's and `tkn
// pipelinerun describe`'s annotations show: the pool, why the build runs and what changed
// against the promoted image, in one line.
func RunDescription(pool string, trigger Trigger, changed []string) string {
	what := map[Trigger]string{
		TriggerSpec:      "Build",
		TriggerUpgrade:   "Rebuild on the release's new base image",
		TriggerRetry:     "Retry (the PoolImage's retry annotation)",
		TriggerAutoRetry: "Automatic retry of the rebuild on a new base image",
		TriggerPrebuild:  "Prebuild for the next release",
	}[trigger]
	if what == "" {
		what = "Build (" + string(trigger) + ")"
	}
	change := "changed: " + strings.Join(changed, ", ")
	switch {
	case len(changed) > 0:
	case trigger == TriggerSpec:
		change = "first build"
	default:
		change = "same inputs"
	}
	return fmt.Sprintf("%s for MachineConfigPool %s; %s", what, pool, change)
}

// Triggers returns every trigger, for validation and help texts.
func Triggers() []Trigger {
	return []Trigger{TriggerSpec, TriggerUpgrade, TriggerRetry, TriggerAutoRetry, TriggerPrebuild}
}

// TrustedCA is a ConfigMap, in the PoolImage's namespace, holding a PEM trust bundle.
type TrustedCA struct {
	// ConfigMapName names the ConfigMap.
	ConfigMapName string
	// Key is the data key of the bundle; empty means ca-bundle.crt.
	Key string
	// SHA256 is the sha256 of the bundle (see ContentSHA256); it changes the image.
	SHA256 string
}

// Proxy is the cluster-wide proxy configuration.
type Proxy struct {
	// HTTPProxy is the proxy URL for HTTP requests.
	HTTPProxy string `json:"httpProxy,omitempty"`
	// HTTPSProxy is the proxy URL for HTTPS requests.
	HTTPSProxy string `json:"httpsProxy,omitempty"`
	// NoProxy lists the hosts and domains that bypass the proxy.
	NoProxy string `json:"noProxy,omitempty"`
}

// credentials names the first proxy URL with a user or password in it.
func (p Proxy) credentials() (string, bool) {
	for _, u := range []struct{ field, url string }{{"httpProxy", p.HTTPProxy}, {"httpsProxy", p.HTTPSProxy}} {
		if parsed, err := url.Parse(u.url); err == nil && parsed.User != nil {
			return u.field, true
		}
		if strings.Contains(u.url, "@") { // unparsable, but looks like user@host
			return u.field, true
		}
	}
	return "", false
}

// ContentSHA256 returns the hex sha256 of a ConfigMap's data, independent of key order; use it
// for Inputs.YumReposSHA256 and TrustedCA.SHA256.
func ContentSHA256(data map[string]string) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(data[k]), data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// plan is the normalized description of one build: everything Render and InputsHash need, with
// defaults applied and order fixed. Fields tagged json are build inputs and enter the hash.
type plan struct {
	// Hashed inputs.
	Version         int    `json:"v"`
	Pool            string `json:"pool"`
	Arch            string `json:"arch"`
	BaseImage       string `json:"baseImage"`
	ExtensionsImage string `json:"extensionsImage,omitempty"`
	Containerfile   string `json:"containerfile"`
	PushRepository  string `json:"pushRepository"`
	Entitlement     string `json:"entitlement,omitempty"`
	ActivationKey   string `json:"activationKey,omitempty"`
	YumRepos        string `json:"yumRepos,omitempty"`
	YumReposSHA256  string `json:"yumReposSHA256,omitempty"`
	RPMGPG          string `json:"rpmGPG,omitempty"`
	ImageFormat     string `json:"imageFormat"`

	// Not hashed since hash version 2: used only while the image builds, they do not change
	// its content. The trust bundle is mounted into RUN steps (the MCO writes the cluster's
	// trust bundle onto the nodes itself), the proxy is the build's environment; the network
	// operator rewrites the injected bundle early in every upgrade, and a hash of it would
	// rebuild (and reboot) every pool on the old base in the middle of the upgrade.
	TrustedCASHA256 string `json:"-"`
	Proxy           Proxy  `json:"-"`

	// Not build inputs: where and how the build runs.
	namespace   string
	poolImage   string
	currentTag  string
	pushSecret  string
	pullSecret  string
	trustedCA   *TrustedCA
	cacheRepo   string
	proxySecret string
	trigger     string
	changed     []string
	cfg         Config
	params      map[string]string
	opts        *v1alpha1.PipelineOptions
	retries     retries
	serviceAcct string
}

type retries struct{ fetch, push, verify, promote int }

// hashVersion changes when the meaning of the hash changes. Images built under an earlier
// version are not rebuilt for that alone: LegacyInputsHashes gives their hashes of the same
// inputs, and a controller that finds one of them promoted adopts the new hash.
const hashVersion = 2

// newPlan validates pi and in and normalizes them. Errors are *apis.FieldError with paths
// relative to the PoolImage (spec.…) or naming the input (inputs.…).
func newPlan(pi *v1alpha1.PoolImage, in Inputs) (*plan, error) {
	if pi == nil {
		return nil, fmt.Errorf("generator: nil PoolImage")
	}
	spec := pi.Spec.DeepCopy()
	spec.SetDefaults(context.Background())
	if err := spec.Validate(context.Background()); err != nil {
		return nil, err.ViaField("spec")
	}
	cfg := in.Config.withDefaults()
	p := &plan{
		Version:   hashVersion,
		Pool:      spec.MachineConfigPool.Name,
		namespace: pi.Namespace,
		poolImage: pi.Name,
		trigger:   string(in.Trigger),
		changed:   in.Changed,
		cfg:       cfg,
		opts:      spec.Pipeline,
	}

	arch := in.Arch
	if arch == "" {
		arch = v1alpha1.ArchAMD64
	}
	if arch == v1alpha1.ArchNoArch || !slices.Contains(v1alpha1.Arches(), arch) {
		return nil, &apis.FieldError{Message: fmt.Sprintf("invalid value: %q", arch), Paths: []string{"inputs.arch"},
			Details: "the pool's architecture must be one of amd64, arm64, ppc64le, s390x"}
	}
	p.Arch = string(arch)
	content, ok := spec.ContainerfileFor(arch)
	if !ok {
		return nil, &apis.FieldError{Message: fmt.Sprintf("no Containerfile for arch %s", arch), Paths: []string{"spec.containerfile"},
			Details: fmt.Sprintf("add an entry with arch %s or noarch", arch)}
	}
	p.Containerfile = content

	if err := pinnedDigest(in.BaseImage, "inputs.baseImage"); err != nil {
		return nil, err
	}
	p.BaseImage = in.BaseImage
	if in.ExtensionsImage != "" {
		if err := pinnedDigest(in.ExtensionsImage, "inputs.extensionsImage"); err != nil {
			return nil, err
		}
		p.ExtensionsImage = in.ExtensionsImage
	}

	tag, err := name.NewTag(spec.ImagePushSpec, name.StrictValidation)
	if err != nil { // unreachable after Validate; kept for safety
		return nil, apis.ErrInvalidValue(spec.ImagePushSpec, "spec.imagePushSpec", err.Error())
	}
	p.PushRepository = tag.Context().Name()
	p.currentTag = tag.TagStr()

	if spec.PushSecret != nil {
		p.pushSecret = spec.PushSecret.Name
	}
	p.pullSecret = in.DefaultPullSecret
	if spec.BaseImagePullSecret != nil {
		p.pullSecret = spec.BaseImagePullSecret.Name
	}
	if e := spec.Entitlements; e != nil {
		if e.Secret != nil {
			p.Entitlement = e.Secret.Name
		}
		if e.ActivationKey != nil {
			p.ActivationKey = e.ActivationKey.Name
		}
		if e.YumRepos != nil {
			p.YumRepos = e.YumRepos.Name
			p.YumReposSHA256 = in.YumReposSHA256
		}
		if e.RPMGPG != nil {
			p.RPMGPG = e.RPMGPG.Name
		}
	}
	if p.Entitlement == "" && in.DefaultEntitlementSecret {
		p.Entitlement = v1alpha1.DefaultEntitlementSecretName
	}
	if ca := in.TrustedCA; ca != nil {
		if ca.ConfigMapName == "" || ca.SHA256 == "" {
			return nil, &apis.FieldError{Message: "missing field(s)", Paths: []string{"inputs.trustedCA.configMapName", "inputs.trustedCA.sha256"},
				Details: "name the ConfigMap holding the trust bundle and give the sha256 of its data"}
		}
		c := *ca
		if c.Key == "" {
			c.Key = "ca-bundle.crt"
		}
		p.trustedCA = &c
		p.TrustedCASHA256 = c.SHA256
	}
	p.Proxy = in.Proxy

	p.params = map[string]string{
		contract.ParamBuildahImage:  cfg.BuildahImage,
		contract.ParamToolsImage:    cfg.ToolsImage,
		contract.ParamStorageDriver: cfg.StorageDriver,
		contract.ParamImageFormat:   cfg.ImageFormat,
		contract.ParamTLSVerify:     fmt.Sprint(*cfg.TLSVerify),
	}
	p.retries = retries{DefaultFetchRetries, DefaultPushRetries, DefaultVerifyRetries, DefaultPromoteRetries}
	p.serviceAcct = cfg.ServiceAccountName
	if o := spec.Pipeline; o != nil {
		for _, prm := range o.Params {
			p.params[prm.Name] = prm.Value
		}
		if o.ServiceAccountName != "" {
			p.serviceAcct = o.ServiceAccountName
		}
		if r := o.Retries; r != nil {
			set := func(dst *int, v *int32) {
				if v != nil {
					*dst = int(*v)
				}
			}
			set(&p.retries.fetch, r.FetchBaseDigest)
			set(&p.retries.push, r.Push)
			set(&p.retries.verify, r.Verify)
			set(&p.retries.promote, r.Promote)
		}
		if o.Cache != nil {
			p.cacheRepo = o.Cache.Repository
		}
		if o.ProxySecret != nil {
			p.proxySecret = o.ProxySecret.Name
		}
	}
	if p.proxySecret != "" {
		p.Proxy = Proxy{} // the build reads its proxy from the Secret
	} else if field, ok := p.Proxy.credentials(); ok {
		return nil, &apis.FieldError{Message: fmt.Sprintf("the cluster's proxy (%s) carries credentials", field), Paths: []string{"inputs.proxy." + field},
			Details: "they would be visible in the PipelineRun's parameters: create a Secret with the keys HTTP_PROXY, HTTPS_PROXY and NO_PROXY in the PoolImage's namespace and name it in spec.pipeline.proxySecret"}
	}
	p.ImageFormat = p.params[contract.ParamImageFormat]
	return p, nil
}

// pinnedDigest checks that ref is repository@sha256:<64 hex>.
func pinnedDigest(ref, path string) *apis.FieldError {
	if ref == "" {
		return &apis.FieldError{Message: "missing field(s)", Paths: []string{path},
			Details: "resolve the base image to repository@sha256:<digest> (the ControllerConfig's baseOSContainerImage is one)"}
	}
	if _, err := name.NewDigest(ref, name.StrictValidation); err != nil {
		return &apis.FieldError{Message: fmt.Sprintf("invalid value: %q: not pinned by digest", ref), Paths: []string{path},
			Details: "give repository@sha256:<digest>; resolve tags first (e.g. skopeo inspect --format '{{.Digest}}')"}
	}
	return nil
}

// InputsHash returns the hash of everything that determines the content of the image a
// PoolImage builds with in: the pool, architecture, base and extensions images, the
// Containerfile for that architecture, the push repository, the entitlement objects wired in
// (by name; the yum repositories by content too, as they decide which packages RUN steps
// install) and the image format.
//
// It is stable (same inputs, same hash, in any field order, with or without defaults spelled
// out) and changes for nothing else: not for what only the build's environment uses (the
// proxy, the trust bundle RUN steps trust), status, labels, retries, timeouts, service account,
// pod template, step images or a rotated Secret's content. It is 40 hex characters, usable as a
// label value and an image tag.
func InputsHash(pi *v1alpha1.PoolImage, in Inputs) (string, error) {
	p, err := newPlan(pi, in)
	if err != nil {
		return "", err
	}
	return p.hash(), nil
}

// LegacyInputsHashes returns the hashes that earlier hash versions gave the same inputs, newest
// first. An image promoted under one of them was built from these inputs (earlier versions
// hashed more, never less), so a controller adopts the new hash without rebuilding it.
func LegacyInputsHashes(pi *v1alpha1.PoolImage, in Inputs) ([]string, error) {
	p, err := newPlan(pi, in)
	if err != nil {
		return nil, err
	}
	// Version 1 also hashed the trust bundle's content and the proxy, in this field order.
	v1 := struct {
		Version         int    `json:"v"`
		Pool            string `json:"pool"`
		Arch            string `json:"arch"`
		BaseImage       string `json:"baseImage"`
		ExtensionsImage string `json:"extensionsImage,omitempty"`
		Containerfile   string `json:"containerfile"`
		PushRepository  string `json:"pushRepository"`
		Entitlement     string `json:"entitlement,omitempty"`
		ActivationKey   string `json:"activationKey,omitempty"`
		YumRepos        string `json:"yumRepos,omitempty"`
		YumReposSHA256  string `json:"yumReposSHA256,omitempty"`
		RPMGPG          string `json:"rpmGPG,omitempty"`
		TrustedCASHA256 string `json:"trustedCASHA256,omitempty"`
		Proxy           Proxy  `json:"proxy"`
		ImageFormat     string `json:"imageFormat"`
	}{1, p.Pool, p.Arch, p.BaseImage, p.ExtensionsImage, p.Containerfile, p.PushRepository, p.Entitlement,
		p.ActivationKey, p.YumRepos, p.YumReposSHA256, p.RPMGPG, p.TrustedCASHA256, p.Proxy, p.ImageFormat}
	return []string{digest40(v1)}, nil
}

// mountedInputs digests what reaches RUN steps only through buildah --volume (the entitlement,
// activation key, yum repositories and RPM GPG keys wired in): with a layer cache, buildah keys
// a RUN step on its text and its parent, not on mounted content, so the rendered Containerfile
// carries this digest in a step of its own before the admin's; "" when nothing is mounted.
func (p *plan) mountedInputs() string {
	if p.Entitlement == "" && p.ActivationKey == "" && p.YumRepos == "" && p.RPMGPG == "" {
		return ""
	}
	return digest40(struct {
		Entitlement, ActivationKey, YumRepos, YumReposSHA256, RPMGPG string
	}{p.Entitlement, p.ActivationKey, p.YumRepos, p.YumReposSHA256, p.RPMGPG})[:16]
}

func digest40(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // only strings and ints
		panic(fmt.Sprintf("generator: marshal: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:40]
}

func (p *plan) hash() string {
	b, err := json.Marshal(p)
	if err != nil { // plan holds only strings and ints
		panic(fmt.Sprintf("generator: marshal plan: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:40]
}

// Summary returns the status summary of the inputs of a build, without secret material.
func Summary(pi *v1alpha1.PoolImage, in Inputs) (*v1alpha1.BuildInputs, error) {
	p, err := newPlan(pi, in)
	if err != nil {
		return nil, err
	}
	return p.summary(), nil
}

func (p *plan) summary() *v1alpha1.BuildInputs {
	sum := sha256.Sum256([]byte(p.Containerfile))
	s := &v1alpha1.BuildInputs{
		BaseImage:           p.BaseImage,
		ExtensionsImage:     p.ExtensionsImage,
		Arch:                p.Arch,
		ContainerfileSHA256: hex.EncodeToString(sum[:]),
	}
	for _, e := range []struct{ kind, name string }{
		{"Secret/entitlement", p.Entitlement}, {"Secret/activationKey", p.ActivationKey},
		{"ConfigMap/yumRepos", p.YumRepos}, {"Secret/rpmGPG", p.RPMGPG},
	} {
		if e.name != "" {
			s.Entitlements = append(s.Entitlements, e.kind+"="+e.name)
		}
	}
	return s
}

// ChangedInputs names the inputs that differ between the promoted build's summary (old) and a
// new one: any of baseImage, extensionsImage, arch, containerfile, entitlements.
// A nil old (nothing promoted yet) yields nil.
func ChangedInputs(old, cur *v1alpha1.BuildInputs) []string {
	if old == nil || cur == nil {
		return nil
	}
	var changed []string
	add := func(field string, a, b string) {
		if a != b {
			changed = append(changed, field)
		}
	}
	add("baseImage", old.BaseImage, cur.BaseImage)
	add("extensionsImage", old.ExtensionsImage, cur.ExtensionsImage)
	add("arch", old.Arch, cur.Arch)
	add("containerfile", old.ContainerfileSHA256, cur.ContainerfileSHA256)
	add("entitlements", strings.Join(old.Entitlements, ","), strings.Join(cur.Entitlements, ","))
	return changed
}
