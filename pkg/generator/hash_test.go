package generator

import (
	"regexp"
	"testing"
	"time"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline/pod"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

func hashBase() (*v1alpha1.PoolImage, Inputs) {
	pi := &v1alpha1.PoolImage{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "ocl"},
		Spec: v1alpha1.PoolImageSpec{
			MachineConfigPool: v1alpha1.MachineConfigPoolReference{Name: "worker"},
			Containerfile: []v1alpha1.Containerfile{
				{Content: "FROM configs AS final\nRUN echo noarch\n"},
				{Arch: v1alpha1.ArchARM64, Content: "FROM configs AS final\nRUN echo arm\n"},
			},
			ImagePushSpec: "registry.example.com/os/worker:latest",
			PushSecret:    &v1alpha1.SecretReference{Name: "push"},
			Entitlements: &v1alpha1.Entitlements{
				YumRepos: &v1alpha1.ConfigMapReference{Name: "repos"},
			},
		},
	}
	in := testInputs()
	in.YumReposSHA256 = ContentSHA256(map[string]string{"a.repo": "[a]", "b.repo": "[b]"})
	return pi, in
}

// TestInputsHashChangesForEveryInput mutates one build input at a time: each must change the hash.
func TestInputsHashChangesForEveryInput(t *testing.T) {
	pi0, in0 := hashBase()
	base, err := InputsHash(pi0, in0)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(base) {
		t.Fatalf("hash %q is not 40 hex characters", base)
	}
	tests := map[string]func(*v1alpha1.PoolImage, *Inputs){
		"pool":                func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.MachineConfigPool.Name = "infra" },
		"containerfile":       func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.Containerfile[0].Content += "RUN true\n" },
		"containerfile space": func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.Containerfile[0].Content += " " },
		"arch":                func(_ *v1alpha1.PoolImage, in *Inputs) { in.Arch = v1alpha1.ArchARM64 },
		"arch same content": func(p *v1alpha1.PoolImage, in *Inputs) {
			p.Spec.Containerfile = p.Spec.Containerfile[:1]
			in.Arch = v1alpha1.ArchPPC64LE
		},
		"base image":          func(_ *v1alpha1.PoolImage, in *Inputs) { in.BaseImage = testExt },
		"extensions image":    func(_ *v1alpha1.PoolImage, in *Inputs) { in.ExtensionsImage = testBase },
		"no extensions image": func(_ *v1alpha1.PoolImage, in *Inputs) { in.ExtensionsImage = "" },
		"push repository":     func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.ImagePushSpec = "registry.example.com/os/other:latest" },
		"push registry":       func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.ImagePushSpec = "mirror.example.com/os/worker:latest" },
		"cluster entitlement": func(_ *v1alpha1.PoolImage, in *Inputs) { in.DefaultEntitlementSecret = true },
		"entitlement secret": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Spec.Entitlements.Secret = &v1alpha1.SecretReference{Name: "ent"}
		},
		"activation key": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Spec.Entitlements.ActivationKey = &v1alpha1.SecretReference{Name: "key"}
		},
		"rpm gpg": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Spec.Entitlements.RPMGPG = &v1alpha1.SecretReference{Name: "gpg"}
		},
		"yum repos name": func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.Entitlements.YumRepos.Name = "other" },
		"yum repos content": func(_ *v1alpha1.PoolImage, in *Inputs) {
			in.YumReposSHA256 = ContentSHA256(map[string]string{"a.repo": "[a2]"})
		},
		"no yum repos": func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.Entitlements = nil },
		"image format param": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Spec.Pipeline = &v1alpha1.PipelineOptions{Params: []v1alpha1.Param{{Name: "IMAGE_FORMAT", Value: "docker"}}}
		},
		"image format config": func(_ *v1alpha1.PoolImage, in *Inputs) { in.Config.ImageFormat = "docker" },
	}
	checkHashes(t, base, tests, true)
}

// An explicit entitlement secret wins over the cluster's default one, whether it exists or not.
func TestInputsHashExplicitEntitlementWins(t *testing.T) {
	pi, in := hashBase()
	pi.Spec.Entitlements.Secret = &v1alpha1.SecretReference{Name: "ent"}
	a, _ := InputsHash(pi, in)
	in.DefaultEntitlementSecret = true
	b, _ := InputsHash(pi, in)
	if a != b {
		t.Errorf("the cluster's default entitlement changed the hash of a PoolImage naming its own: %s != %s", a, b)
	}
}

// TestInputsHashIgnoresNonInputs mutates everything that is not a build input: the hash must
// not change.
func TestInputsHashIgnoresNonInputs(t *testing.T) {
	pi0, in0 := hashBase()
	base, err := InputsHash(pi0, in0)
	if err != nil {
		t.Fatal(err)
	}
	two, keep := int32(2), int32(5)
	tests := map[string]func(*v1alpha1.PoolImage, *Inputs){
		"reordered containerfiles": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Spec.Containerfile[0], p.Spec.Containerfile[1] = p.Spec.Containerfile[1], p.Spec.Containerfile[0]
		},
		"defaults spelled out": func(p *v1alpha1.PoolImage, in *Inputs) {
			p.Spec.Containerfile[0].Arch = v1alpha1.ArchNoArch
			p.Spec.Retention = &v1alpha1.Retention{Keep: &keep}
			tlsVerify := true
			in.Config = Config{BuildahImage: DefaultBuildahImage, ToolsImage: DefaultToolsImage, StorageDriver: "vfs", ImageFormat: "oci", TLSVerify: &tlsVerify}
		},
		"arch spelled out":     func(_ *v1alpha1.PoolImage, in *Inputs) { in.Arch = "" },
		"other arch's content": func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.Containerfile[1].Content = "RUN changed" },
		"added other arch": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Spec.Containerfile = append(p.Spec.Containerfile, v1alpha1.Containerfile{Arch: v1alpha1.ArchS390X, Content: "RUN z"})
		},
		"status": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Status.CurrentImage = "x@sha256:1"
			p.Status.Status = duckv1.Status{ObservedGeneration: 4, Conditions: duckv1.Conditions{{Type: apis.ConditionReady}}}
		},
		"metadata": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Labels = map[string]string{"a": "b"}
			p.Generation = 7
			p.Name = "renamed"
		},
		"namespace":   func(p *v1alpha1.PoolImage, _ *Inputs) { p.Namespace = "other" },
		"push tag":    func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.ImagePushSpec = "registry.example.com/os/worker:stable" },
		"push secret": func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.PushSecret.Name = "other" },
		"pull secret": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Spec.BaseImagePullSecret = &v1alpha1.SecretReference{Name: "pull"}
		},
		"default pull secret": func(_ *v1alpha1.PoolImage, in *Inputs) { in.DefaultPullSecret = "global" },
		"trigger":             func(_ *v1alpha1.PoolImage, in *Inputs) { in.Trigger = "upgrade" },
		// The build's environment: used while the image builds, not part of it (once hashed:
		// the network operator rewrites the injected bundle early in every upgrade).
		"trusted CA":       func(_ *v1alpha1.PoolImage, in *Inputs) { in.TrustedCA = &TrustedCA{ConfigMapName: "ca", SHA256: "1"} },
		"http proxy":       func(_ *v1alpha1.PoolImage, in *Inputs) { in.Proxy.HTTPProxy = "http://proxy:3128" },
		"https proxy":      func(_ *v1alpha1.PoolImage, in *Inputs) { in.Proxy.HTTPSProxy = "http://proxy:3128" },
		"no proxy":         func(_ *v1alpha1.PoolImage, in *Inputs) { in.Proxy.NoProxy = ".cluster.local" },
		"promotion paused": func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.Promotion = &v1alpha1.Promotion{Paused: true} },
		"upgrade strategy": func(p *v1alpha1.PoolImage, _ *Inputs) {
			p.Spec.Promotion = &v1alpha1.Promotion{UpgradeStrategy: v1alpha1.UpgradeFollow, HoldTimeout: &metav1.Duration{Duration: time.Hour}}
		},
		"revert":    func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.Revert = true },
		"retention": func(p *v1alpha1.PoolImage, _ *Inputs) { p.Spec.Retention = &v1alpha1.Retention{Keep: &two} },
		"step images and drivers": func(p *v1alpha1.PoolImage, in *Inputs) {
			p.Spec.Pipeline = &v1alpha1.PipelineOptions{Params: []v1alpha1.Param{{Name: "BUILDAH_IMAGE", Value: "quay.io/b/b:2"}, {Name: "STORAGE_DRIVER", Value: "overlay"}, {Name: "TLS_VERIFY", Value: "false"}}}
			in.Config.ToolsImage = "quay.io/t/t:2"
		},
		"execution options": func(p *v1alpha1.PoolImage, in *Inputs) {
			p.Spec.Pipeline = &v1alpha1.PipelineOptions{
				ServiceAccountName: "sa", PodTemplate: &pod.PodTemplate{NodeSelector: map[string]string{"a": "b"}},
				Timeouts: &tektonv1.TimeoutFields{Pipeline: &metav1.Duration{Duration: time.Minute}},
				Retries:  &v1alpha1.Retries{Push: &two}, Cache: &v1alpha1.Cache{Repository: "registry.example.com/cache"},
			}
			in.Config.ServiceAccountName = "x"
		},
		"yum repos order": func(_ *v1alpha1.PoolImage, in *Inputs) {
			in.YumReposSHA256 = ContentSHA256(map[string]string{"b.repo": "[b]", "a.repo": "[a]"})
		},
	}
	checkHashes(t, base, tests, false)
}

func TestContentSHA256(t *testing.T) {
	a := ContentSHA256(map[string]string{"ab": "c"})
	b := ContentSHA256(map[string]string{"a": "bc"})
	if a == b {
		t.Error("key/value boundaries are not part of the content hash")
	}
	if ContentSHA256(nil) != ContentSHA256(map[string]string{}) {
		t.Error("nil and empty data hash differently")
	}
}

func TestChangedInputs(t *testing.T) {
	pi, in := hashBase()
	old, err := Summary(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := ChangedInputs(nil, old); got != nil {
		t.Errorf("first build: changed = %v", got)
	}
	pi.Spec.Containerfile[0].Content += "RUN more\n"
	in.BaseImage = testExt
	in.DefaultEntitlementSecret = true
	cur, _ := Summary(pi, in)
	got := ChangedInputs(old, cur)
	want := []string{"baseImage", "containerfile", "entitlements"}
	if len(got) != len(want) {
		t.Fatalf("changed = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("changed = %v, want %v", got, want)
		}
	}
	if cur.Entitlements[0] != "Secret/entitlement=etc-pki-entitlement" || cur.Entitlements[1] != "ConfigMap/yumRepos=repos" {
		t.Errorf("entitlements summary = %v", cur.Entitlements)
	}
}

// checkHashes applies each mutation to hashBase and checks whether the hash differs from base.
func checkHashes(t *testing.T, base string, tests map[string]func(*v1alpha1.PoolImage, *Inputs), wantChange bool) {
	t.Helper()
	for name, mutate := range tests {
		pi, in := hashBase()
		mutate(pi, &in)
		h, err := InputsHash(pi, in)
		switch {
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case wantChange && h == base:
			t.Errorf("%s did not change the hash %s", name, h)
		case !wantChange && h != base:
			t.Errorf("%s changed the hash: %s, want %s", name, h, base)
		}
	}
}

// TestLegacyInputsHashes: the hash of version 1 (which hashed the trust bundle and the proxy) of
// the same inputs, so a controller adopts images promoted under it without a rebuild.
func TestLegacyInputsHashes(t *testing.T) {
	pi, in := hashBase()
	in.TrustedCA = &TrustedCA{ConfigMapName: "ca", SHA256: "1"}
	in.Proxy.HTTPProxy = "http://proxy:3128"
	got, err := LegacyInputsHashes(pi, in)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := InputsHash(pi, in)
	if len(got) != 1 || len(got[0]) != 40 || got[0] == now {
		t.Fatalf("legacy hashes %v (current %s)", got, now)
	}
	in.Proxy.HTTPProxy = "http://other:3128"
	again, _ := LegacyInputsHashes(pi, in)
	if again[0] == got[0] {
		t.Error("the version 1 hash does not cover the proxy, as version 1 did")
	}
}
