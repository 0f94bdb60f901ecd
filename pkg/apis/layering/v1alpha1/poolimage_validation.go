package v1alpha1

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/pkg/apis"
)

var _ apis.Validatable = (*PoolImage)(nil)

// Validate checks a PoolImage. Each error names the field's path and says how to fix it.
func (p *PoolImage) Validate(ctx context.Context) *apis.FieldError {
	return p.Spec.Validate(ctx).ViaField("spec")
}

// Validate checks a PoolImageSpec; paths in the returned error are relative to the spec.
func (s *PoolImageSpec) Validate(ctx context.Context) *apis.FieldError {
	var errs *apis.FieldError
	errs = errs.Also(validateDNSSubdomain(s.MachineConfigPool.Name, "the MachineConfigPool's name, e.g. worker").
		ViaField("machineConfigPool", "name"))
	errs = errs.Also(validateContainerfiles(s.Containerfile).ViaField("containerfile"))
	errs = errs.Also(ValidatePushSpec(s.ImagePushSpec).ViaField("imagePushSpec"))
	errs = errs.Also(validateSecretRef(s.PushSecret).ViaField("pushSecret"))
	errs = errs.Also(validateSecretRef(s.BaseImagePullSecret).ViaField("baseImagePullSecret"))
	if s.BaseImage != "" {
		errs = errs.Also(validatePinnedSpec(s.BaseImage).ViaField("baseImage"))
	}
	if s.ExtensionsImage != "" {
		errs = errs.Also(validatePinnedSpec(s.ExtensionsImage).ViaField("extensionsImage"))
	}
	if e := s.Entitlements; e != nil {
		var ee *apis.FieldError
		ee = ee.Also(validateSecretRef(e.Secret).ViaField("secret"))
		ee = ee.Also(validateSecretRef(e.ActivationKey).ViaField("activationKey"))
		if e.YumRepos != nil {
			ee = ee.Also(validateObjectName(e.YumRepos.Name, "ConfigMap").ViaField("yumRepos", "name"))
		}
		ee = ee.Also(validateSecretRef(e.RPMGPG).ViaField("rpmGPG"))
		errs = errs.Also(ee.ViaField("entitlements"))
	}
	if s.Pipeline != nil {
		errs = errs.Also(s.Pipeline.validate().ViaField("pipeline"))
	}
	if p := s.Promotion; p != nil {
		switch p.UpgradeStrategy {
		case "", UpgradeHoldPool, UpgradeFollow:
		default:
			errs = errs.Also(fieldErr(fmt.Sprintf("invalid value: %q", p.UpgradeStrategy),
				"use HoldPool (pause the pool until the rebuilt image is promoted) or Follow", "promotion.upgradeStrategy"))
		}
		if p.HoldTimeout != nil && p.HoldTimeout.Duration <= 0 {
			errs = errs.Also(fieldErr(fmt.Sprintf("invalid value: %s", p.HoldTimeout.Duration),
				"use a positive duration such as 2h, or leave it unset for the controller's hold-timeout", "promotion.holdTimeout"))
		}
	}
	if s.Retention != nil && s.Retention.Keep != nil {
		if k := *s.Retention.Keep; k < 1 || k > 100 {
			errs = errs.Also(apis.ErrOutOfBoundsValue(k, 1, 100, "retention.keep"))
		}
	}
	return errs
}

func fieldErr(msg, details string, path ...string) *apis.FieldError {
	return &apis.FieldError{Message: msg, Paths: path, Details: details}
}

func validateDNSSubdomain(v, what string) *apis.FieldError {
	if v == "" {
		return fieldErr("missing field(s)", "set it to "+what, apis.CurrentField)
	}
	if msgs := validation.IsDNS1123Subdomain(v); len(msgs) > 0 {
		return fieldErr(fmt.Sprintf("invalid value: %q", v), strings.Join(msgs, "; "), apis.CurrentField)
	}
	return nil
}

func validateObjectName(v, kind string) *apis.FieldError {
	return validateDNSSubdomain(v, "the name of a "+kind+" in the PoolImage's namespace")
}

func validateSecretRef(r *SecretReference) *apis.FieldError {
	if r == nil {
		return nil
	}
	return validateObjectName(r.Name, "Secret").ViaField("name")
}

func validateContainerfiles(cfs []Containerfile) *apis.FieldError {
	if len(cfs) == 0 {
		return fieldErr("missing field(s)",
			"add at least one entry, e.g. {arch: noarch, content: \"FROM configs AS final\\nRUN ...\"}", apis.CurrentField)
	}
	var errs *apis.FieldError
	seen := map[Arch]int{}
	for i, cf := range cfs {
		arch := cf.Arch
		if arch == "" {
			arch = ArchNoArch
		}
		if !slices.Contains(Arches(), arch) {
			errs = errs.Also(fieldErr(fmt.Sprintf("invalid value: %q", cf.Arch),
				"arch must be one of noarch, amd64, arm64, ppc64le, s390x", "arch").ViaIndex(i))
		} else if j, dup := seen[arch]; dup {
			errs = errs.Also(fieldErr(fmt.Sprintf("duplicate arch %q", arch),
				fmt.Sprintf("containerfile[%d] already has arch %s; keep one entry per arch", j, arch), "arch").ViaIndex(i))
		} else {
			seen[arch] = i
		}
		errs = errs.Also(validateContent(cf.Content).ViaField("content").ViaIndex(i))
	}
	return errs
}

func validateContent(c string) *apis.FieldError {
	switch {
	case strings.TrimSpace(c) == "":
		return fieldErr("missing field(s)",
			"write the Containerfile to append to the base image, e.g. \"FROM configs AS final\\nRUN ...\"", apis.CurrentField)
	case len(c) > MaxContainerfileBytes:
		return fieldErr(fmt.Sprintf("content is %d bytes, over the limit of %d", len(c), MaxContainerfileBytes),
			"move large files into an image or RPM and COPY --from it", apis.CurrentField)
	case !utf8.ValidString(c):
		return fieldErr("content is not valid UTF-8", "save the Containerfile as UTF-8 text", apis.CurrentField)
	case strings.ContainsRune(c, 0):
		return fieldErr("content contains a NUL byte", "remove the NUL (\\0) characters from the Containerfile", apis.CurrentField)
	}
	return nil
}

// ValidatePushSpec checks an image push spec: an explicit registry host, a repository and a tag,
// and no digest. Paths in the returned error are relative to the field.
func ValidatePushSpec(spec string) *apis.FieldError {
	const example = "use host[:port]/repository:tag, e.g. registry.example.com/os/worker:latest"
	if spec == "" {
		return fieldErr("missing field(s)", example, apis.CurrentField)
	}
	if strings.Contains(spec, "@") {
		return fieldErr(fmt.Sprintf("invalid value: %q: must be a tag, not a digest", spec),
			"drop the @sha256:... part; each build is pushed under its inputs hash and the tag is moved on promotion", apis.CurrentField)
	}
	if !hasExplicitRegistry(spec) {
		return fieldErr(fmt.Sprintf("invalid value: %q: no registry host", spec),
			"nodes pull this image at first boot without defaults; "+example, apis.CurrentField)
	}
	if !strings.Contains(spec[strings.LastIndex(spec, "/")+1:], ":") {
		return fieldErr(fmt.Sprintf("invalid value: %q: no tag", spec),
			"add the tag that will name the pool's current image; "+example, apis.CurrentField)
	}
	if _, err := name.NewTag(spec, name.StrictValidation); err != nil {
		return fieldErr(fmt.Sprintf("invalid value: %q: %v", spec, err), example, apis.CurrentField)
	}
	return nil
}

func validatePullSpec(spec string) *apis.FieldError {
	return validateReference(spec, "use host[:port]/repository:tag or host[:port]/repository@sha256:<digest>")
}

func validateReference(spec, example string) *apis.FieldError {
	if !hasExplicitRegistry(spec) {
		return fieldErr(fmt.Sprintf("invalid value: %q: no registry host", spec), example, apis.CurrentField)
	}
	if _, err := name.ParseReference(spec, name.StrictValidation); err != nil {
		return fieldErr(fmt.Sprintf("invalid value: %q: %v", spec, err), example, apis.CurrentField)
	}
	return nil
}

// validatePinnedSpec checks an image reference pinned by digest: a tag could move without the
// controller noticing, and the same inputs must always build the same image.
func validatePinnedSpec(spec string) *apis.FieldError {
	if err := validateReference(spec, "use host[:port]/repository@sha256:<digest>"); err != nil {
		return err
	}
	if _, err := name.NewDigest(spec, name.StrictValidation); err != nil {
		return fieldErr(fmt.Sprintf("invalid value: %q: not pinned by digest", spec),
			"use repository@sha256:<digest> (skopeo inspect --format '{{.Digest}}' docker://IMAGE gives it); a tag could move without a rebuild", apis.CurrentField)
	}
	return nil
}

// ValidateRepository checks a repository reference without tag or digest, with an explicit
// registry host.
func ValidateRepository(repo string) *apis.FieldError {
	const example = "use host[:port]/repository, e.g. registry.example.com/os/cache"
	if strings.ContainsAny(repo, "@") || strings.Contains(repo[strings.LastIndex(repo, "/")+1:], ":") {
		return fieldErr(fmt.Sprintf("invalid value: %q: must not have a tag or digest", repo), example, apis.CurrentField)
	}
	if _, err := name.NewRepository(repo, name.StrictValidation); err != nil || !hasExplicitRegistry(repo) {
		return fieldErr(fmt.Sprintf("invalid value: %q: not a repository with a registry host", repo), example, apis.CurrentField)
	}
	return nil
}

// hasExplicitRegistry reports whether a reference's first path component is a registry host
// (has a dot or a port, or is localhost), as container tools decide it.
func hasExplicitRegistry(ref string) bool {
	first, _, found := strings.Cut(ref, "/")
	if !found {
		return false
	}
	return strings.ContainsAny(first, ".:") || first == "localhost"
}

var paramRules = map[string]struct {
	allowed []string
	image   bool
}{
	"BUILDAH_IMAGE":  {image: true},
	"TOOLS_IMAGE":    {image: true},
	"STORAGE_DRIVER": {allowed: []string{"vfs", "overlay"}},
	"IMAGE_FORMAT":   {allowed: []string{"oci", "docker"}},
	"TLS_VERIFY":     {allowed: []string{"true", "false"}},
}

func (o *PipelineOptions) validate() *apis.FieldError {
	var errs *apis.FieldError
	seen := map[string]int{}
	for i, p := range o.Params {
		rule, known := paramRules[p.Name]
		switch {
		case !known:
			errs = errs.Also(fieldErr(fmt.Sprintf("unknown parameter %q", p.Name),
				"parameters that can be overridden: "+strings.Join(OverridableParams(), ", "), "name").ViaFieldIndex("params", i))
			continue
		case seen[p.Name] > 0:
			errs = errs.Also(fieldErr(fmt.Sprintf("duplicate parameter %q", p.Name),
				fmt.Sprintf("params[%d] already sets it; keep one", seen[p.Name]-1), "name").ViaFieldIndex("params", i))
			continue
		}
		seen[p.Name] = i + 1
		switch {
		case rule.image:
			errs = errs.Also(validatePullSpec(p.Value).ViaField("value").ViaFieldIndex("params", i))
		case !slices.Contains(rule.allowed, p.Value):
			errs = errs.Also(fieldErr(fmt.Sprintf("invalid value: %q", p.Value),
				p.Name+" must be one of "+strings.Join(rule.allowed, ", "), "value").ViaFieldIndex("params", i))
		}
	}
	if o.ServiceAccountName != "" {
		errs = errs.Also(validateObjectName(o.ServiceAccountName, "ServiceAccount").ViaField("serviceAccountName"))
	}
	if r := o.Retries; r != nil {
		for field, v := range map[string]*int32{"fetchBaseDigest": r.FetchBaseDigest, "push": r.Push, "verify": r.Verify, "promote": r.Promote} {
			if v != nil && (*v < 0 || *v > 10) {
				errs = errs.Also(apis.ErrOutOfBoundsValue(*v, 0, 10, field).ViaField("retries"))
			}
		}
	}
	if t := o.Timeouts; t != nil {
		for field, d := range map[string]*metav1.Duration{"pipeline": t.Pipeline, "tasks": t.Tasks, "finally": t.Finally} {
			if d != nil && d.Duration < 0 {
				errs = errs.Also(fieldErr(fmt.Sprintf("invalid value: %s: negative duration", d.Duration),
					"use a positive duration such as 1h, or 0 for no timeout", field).ViaField("timeouts"))
			}
		}
	}
	if o.Cache != nil && o.Cache.Repository != "" {
		errs = errs.Also(ValidateRepository(o.Cache.Repository).ViaField("cache", "repository"))
	}
	return errs
}
