package v1alpha1

import (
	"context"

	"knative.dev/pkg/apis"
)

var _ apis.Defaultable = (*PoolImage)(nil)

// SetDefaults fills in the defaults of unset fields. Defaulting never changes a build's inputs
// hash: a spec with its defaults spelled out builds the same image.
func (p *PoolImage) SetDefaults(ctx context.Context) {
	p.Spec.SetDefaults(ctx)
}

// SetDefaults fills in the defaults of unset spec fields.
func (s *PoolImageSpec) SetDefaults(context.Context) {
	for i := range s.Containerfile {
		if s.Containerfile[i].Arch == "" {
			s.Containerfile[i].Arch = ArchNoArch
		}
	}
	// retention.keep stays unset: the controller's retention-keep (config-ocl-pipelines) applies,
	// so a platform team can change it for every pool at once.
}

// RetentionKeep returns retention.keep, or DefaultRetentionKeep (the controller uses its own
// configured default instead).
func (s *PoolImageSpec) RetentionKeep() int32 {
	if s.Retention == nil || s.Retention.Keep == nil {
		return DefaultRetentionKeep
	}
	return *s.Retention.Keep
}

// PromotionPaused reports whether promotion.paused is set.
func (s *PoolImageSpec) PromotionPaused() bool {
	return s.Promotion != nil && s.Promotion.Paused
}

// Strategy returns promotion.upgradeStrategy, HoldPool when unset.
func (s *PoolImageSpec) Strategy() UpgradeStrategy {
	if s.Promotion == nil || s.Promotion.UpgradeStrategy == "" {
		return UpgradeHoldPool
	}
	return s.Promotion.UpgradeStrategy
}

// ContainerfileFor returns the Containerfile content for arch: the entry for that arch, else the
// noarch entry. ok is false when neither exists.
func (s *PoolImageSpec) ContainerfileFor(arch Arch) (content string, ok bool) {
	var noarch *string
	for i := range s.Containerfile {
		cf := &s.Containerfile[i]
		switch cf.Arch {
		case arch:
			return cf.Content, true
		case ArchNoArch, "":
			noarch = &cf.Content
		}
	}
	if noarch != nil {
		return *noarch, true
	}
	return "", false
}
