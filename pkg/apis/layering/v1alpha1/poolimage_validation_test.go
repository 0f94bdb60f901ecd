package v1alpha1

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validPoolImage() *PoolImage {
	return &PoolImage{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "ocl"},
		Spec: PoolImageSpec{
			MachineConfigPool: MachineConfigPoolReference{Name: "worker"},
			Containerfile:     []Containerfile{{Content: "FROM configs AS final\nRUN true\n"}},
			ImagePushSpec:     "registry.example.com/os/worker:latest",
			PushSecret:        &SecretReference{Name: "push"},
		},
	}
}

func i32(v int32) *int32 { return &v }

func TestValidateValid(t *testing.T) {
	for _, path := range []string{"default", "defaulted", "everything"} {
		pi := validPoolImage()
		switch path {
		case "defaulted":
			pi.SetDefaults(context.Background())
		case "everything":
			pi.Spec.BaseImagePullSecret = &SecretReference{Name: "pull"}
			pi.Spec.BaseImage = "quay.io/openshift/rhcos@sha256:" + strings.Repeat("a", 64)
			pi.Spec.ExtensionsImage = "quay.io/openshift/ext@sha256:" + strings.Repeat("b", 64)
			pi.Spec.Entitlements = &Entitlements{Secret: &SecretReference{Name: "e"}, ActivationKey: &SecretReference{Name: "k"},
				YumRepos: &ConfigMapReference{Name: "r"}, RPMGPG: &SecretReference{Name: "g"}}
			pi.Spec.Pipeline = &PipelineOptions{
				Params:             []Param{{Name: "STORAGE_DRIVER", Value: "overlay"}, {Name: "TOOLS_IMAGE", Value: "localhost:5000/tools:1"}},
				ServiceAccountName: "builder",
				Retries:            &Retries{Push: i32(10), Verify: i32(0)},
				Cache:              &Cache{Repository: "registry.example.com/os/cache"},
			}
			pi.Spec.Containerfile = append(pi.Spec.Containerfile, Containerfile{Arch: ArchARM64, Content: "RUN true"})
			pi.Spec.Retention = &Retention{Keep: i32(100)}
		}
		if err := pi.Validate(context.Background()); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", path, err)
		}
	}
}

// TestValidateInvalid lists bad inputs, each with the exact message an admin reads: it names the
// field's path and says how to fix it.
func TestValidateInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*PoolImage)
		want   string
	}{{
		name:   "empty pool name",
		mutate: func(p *PoolImage) { p.Spec.MachineConfigPool.Name = "" },
		want:   "missing field(s): spec.machineConfigPool.name\nset it to the MachineConfigPool's name, e.g. worker",
	}, {
		name:   "bad pool name",
		mutate: func(p *PoolImage) { p.Spec.MachineConfigPool.Name = "Worker_Pool" },
		want:   "invalid value: \"Worker_Pool\": spec.machineConfigPool.name\na lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
	}, {
		name:   "no containerfile",
		mutate: func(p *PoolImage) { p.Spec.Containerfile = nil },
		want:   "missing field(s): spec.containerfile\nadd at least one entry, e.g. {arch: noarch, content: \"FROM configs AS final\\nRUN ...\"}",
	}, {
		name:   "empty containerfile",
		mutate: func(p *PoolImage) { p.Spec.Containerfile[0].Content = " \n\t" },
		want:   "missing field(s): spec.containerfile[0].content\nwrite the Containerfile to append to the base image, e.g. \"FROM configs AS final\\nRUN ...\"",
	}, {
		name: "over-long containerfile",
		mutate: func(p *PoolImage) {
			p.Spec.Containerfile[0].Content = "RUN true\n" + strings.Repeat("#", MaxContainerfileBytes)
		},
		want: "content is 16393 bytes, over the limit of 16384: spec.containerfile[0].content\nmove large files into an image or RPM and COPY --from it",
	}, {
		name:   "NUL byte",
		mutate: func(p *PoolImage) { p.Spec.Containerfile[0].Content = "RUN true\x00" },
		want:   "content contains a NUL byte: spec.containerfile[0].content\nremove the NUL (\\0) characters from the Containerfile",
	}, {
		name:   "not UTF-8",
		mutate: func(p *PoolImage) { p.Spec.Containerfile[0].Content = "RUN echo \xff\xfe" },
		want:   "content is not valid UTF-8: spec.containerfile[0].content\nsave the Containerfile as UTF-8 text",
	}, {
		name:   "unknown arch",
		mutate: func(p *PoolImage) { p.Spec.Containerfile[0].Arch = "x86" },
		want:   "invalid value: \"x86\": spec.containerfile[0].arch\narch must be one of noarch, amd64, arm64, ppc64le, s390x",
	}, {
		name: "duplicate arch",
		mutate: func(p *PoolImage) {
			p.Spec.Containerfile = append(p.Spec.Containerfile, Containerfile{Arch: ArchNoArch, Content: "RUN true"})
		},
		want: "duplicate arch \"noarch\": spec.containerfile[1].arch\ncontainerfile[0] already has arch noarch; keep one entry per arch",
	}, {
		name:   "empty push spec",
		mutate: func(p *PoolImage) { p.Spec.ImagePushSpec = "" },
		want:   "missing field(s): spec.imagePushSpec\nuse host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest",
	}, {
		name: "push spec with digest",
		mutate: func(p *PoolImage) {
			p.Spec.ImagePushSpec = "registry.example.com/os/worker:latest@sha256:" + strings.Repeat("a", 64)
		},
		want: "invalid value: \"registry.example.com/os/worker:latest@sha256:" + strings.Repeat("a", 64) + "\": must be a tag, not a digest: spec.imagePushSpec\ndrop the @sha256:... part; each build is pushed under its inputs hash and the tag is moved on promotion",
	}, {
		name:   "push spec without tag",
		mutate: func(p *PoolImage) { p.Spec.ImagePushSpec = "registry.example.com/os/worker" },
		want:   "invalid value: \"registry.example.com/os/worker\": no tag: spec.imagePushSpec\nadd the tag that will name the pool's current image; use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest",
	}, {
		name:   "push spec without registry host",
		mutate: func(p *PoolImage) { p.Spec.ImagePushSpec = "os/worker:latest" },
		want:   "invalid value: \"os/worker:latest\": no registry host: spec.imagePushSpec\nnodes pull this image at first boot without defaults; use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest",
	}, {
		name:   "push spec with bad characters",
		mutate: func(p *PoolImage) { p.Spec.ImagePushSpec = "registry.example.com/OS/$(whoami):latest" },
		want:   "invalid value: \"registry.example.com/OS/$(whoami):latest\": repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: OS/$(whoami): spec.imagePushSpec\nuse host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest",
	}, {
		name:   "push secret without name",
		mutate: func(p *PoolImage) { p.Spec.PushSecret = &SecretReference{} },
		want:   "missing field(s): spec.pushSecret.name\nset it to the name of a Secret in the PoolImage's namespace",
	}, {
		name:   "pull secret with bad name",
		mutate: func(p *PoolImage) { p.Spec.BaseImagePullSecret = &SecretReference{Name: "-pull"} },
		want:   "invalid value: \"-pull\": spec.baseImagePullSecret.name\na lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
	}, {
		name:   "entitlement secret without name",
		mutate: func(p *PoolImage) { p.Spec.Entitlements = &Entitlements{Secret: &SecretReference{}} },
		want:   "missing field(s): spec.entitlements.secret.name\nset it to the name of a Secret in the PoolImage's namespace",
	}, {
		name:   "yum repos without name",
		mutate: func(p *PoolImage) { p.Spec.Entitlements = &Entitlements{YumRepos: &ConfigMapReference{}} },
		want:   "missing field(s): spec.entitlements.yumRepos.name\nset it to the name of a ConfigMap in the PoolImage's namespace",
	}, {
		name:   "base image without registry",
		mutate: func(p *PoolImage) { p.Spec.BaseImage = "rhcos:latest" },
		want:   "invalid value: \"rhcos:latest\": no registry host: spec.baseImage\nuse host[:port]/repository@sha256:<digest>",
	}, {
		name:   "base image by tag",
		mutate: func(p *PoolImage) { p.Spec.BaseImage = "quay.io/openshift/rhcos:4.20" },
		want:   "invalid value: \"quay.io/openshift/rhcos:4.20\": not pinned by digest: spec.baseImage\nuse repository@sha256:<digest> (skopeo inspect --format '{{.Digest}}' docker://IMAGE gives it); a tag could move without a rebuild",
	}, {
		name: "unknown param",
		mutate: func(p *PoolImage) {
			p.Spec.Pipeline = &PipelineOptions{Params: []Param{{Name: "CONTAINERFILE_BASE64", Value: "x"}}}
		},
		want: "unknown parameter \"CONTAINERFILE_BASE64\": spec.pipeline.params[0].name\nparameters that can be overridden: BUILDAH_IMAGE, TOOLS_IMAGE, STORAGE_DRIVER, IMAGE_FORMAT, TLS_VERIFY",
	}, {
		name: "duplicate param",
		mutate: func(p *PoolImage) {
			p.Spec.Pipeline = &PipelineOptions{Params: []Param{{Name: "TLS_VERIFY", Value: "true"}, {Name: "TLS_VERIFY", Value: "false"}}}
		},
		want: "duplicate parameter \"TLS_VERIFY\": spec.pipeline.params[1].name\nparams[0] already sets it; keep one",
	}, {
		name: "bad param value",
		mutate: func(p *PoolImage) {
			p.Spec.Pipeline = &PipelineOptions{Params: []Param{{Name: "STORAGE_DRIVER", Value: "btrfs"}}}
		},
		want: "invalid value: \"btrfs\": spec.pipeline.params[0].value\nSTORAGE_DRIVER must be one of vfs, overlay",
	}, {
		name:   "retries out of range",
		mutate: func(p *PoolImage) { p.Spec.Pipeline = &PipelineOptions{Retries: &Retries{Push: i32(11)}} },
		want:   "expected 0 <= 11 <= 10: spec.pipeline.retries.push",
	}, {
		name: "cache repository with tag",
		mutate: func(p *PoolImage) {
			p.Spec.Pipeline = &PipelineOptions{Cache: &Cache{Repository: "registry.example.com/cache:x"}}
		},
		want: "invalid value: \"registry.example.com/cache:x\": must not have a tag or digest: spec.pipeline.cache.repository\nuse host[:port]/repository, e.g. registry.example.com/os/cache",
	}, {
		name:   "retention zero",
		mutate: func(p *PoolImage) { p.Spec.Retention = &Retention{Keep: i32(0)} },
		want:   "expected 1 <= 0 <= 100: spec.retention.keep",
	}, {
		name:   "unknown upgrade strategy",
		mutate: func(p *PoolImage) { p.Spec.Promotion = &Promotion{UpgradeStrategy: "Hold"} },
		want:   "invalid value: \"Hold\": spec.promotion.upgradeStrategy\nuse HoldPool (pause the pool until the rebuilt image is promoted) or Follow",
	}, {
		name:   "hold timeout not positive",
		mutate: func(p *PoolImage) { p.Spec.Promotion = &Promotion{HoldTimeout: &metav1.Duration{}} },
		want:   "invalid value: 0s: spec.promotion.holdTimeout\nuse a positive duration such as 2h, or leave it unset for the controller's hold-timeout",
	}}
	if len(tests) < 15 {
		t.Fatalf("want at least 15 bad inputs, have %d", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pi := validPoolImage()
			tc.mutate(pi)
			err := pi.Validate(context.Background())
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Validate() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	pi := validPoolImage()
	pi.Spec.MachineConfigPool.Name = ""
	pi.Spec.ImagePushSpec = ""
	pi.Spec.Containerfile[0].Arch = "x86"
	err := pi.Validate(context.Background())
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, path := range []string{"spec.machineConfigPool.name", "spec.imagePushSpec", "spec.containerfile[0].arch"} {
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
	}
}
