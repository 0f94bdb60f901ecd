package steps

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// FetchBaseDigest resolves BASE_IMAGE for TARGET_ARCH and pins it by digest: a multi-arch index
// resolves to its linux/TARGET_ARCH image; a single image must be for TARGET_ARCH. It writes the
// results BASE_IMAGE (repository@sha256:digest) and BASE_IMAGE_DIGEST.
func FetchBaseDigest(ctx context.Context, e Env) error {
	in, err := e.require(contract.ParamBaseImage, contract.ParamTargetArch)
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(in[contract.ParamBaseImage], e.nameOptions()...)
	if err != nil {
		return fmt.Errorf("BASE_IMAGE %q: %w", in[contract.ParamBaseImage], err)
	}
	opts, err := e.remoteOptions(ctx, contract.WorkspaceBasePullSecret)
	if err != nil {
		return err
	}
	arch := in[contract.ParamTargetArch]
	e.logf("fetch-base-digest: resolving %s for linux/%s", ref, arch)
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		e.logf("fetch-base-digest: FAILED: cannot read %s: %v", ref, err)
		e.logf("fetch-base-digest: check that the image exists and that spec.baseImagePullSecret can pull from %s", ref.Context().RegistryStr())
		return errStage
	}

	digest := desc.Digest
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return fmt.Errorf("read index %s: %w", ref, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return fmt.Errorf("read index manifest %s: %w", ref, err)
		}
		var found *v1.Descriptor
		var offered []string
		for i := range m.Manifests {
			d := &m.Manifests[i]
			if d.Platform == nil {
				continue
			}
			offered = append(offered, d.Platform.OS+"/"+d.Platform.Architecture)
			if d.Platform.OS == "linux" && d.Platform.Architecture == arch && found == nil {
				found = d
			}
		}
		if found == nil {
			e.logf("fetch-base-digest: FAILED: %s has no linux/%s image (it has %v)", ref, arch, offered)
			return errStage
		}
		e.logf("fetch-base-digest: %s is a multi-arch index; using its linux/%s image", ref, arch)
		digest = found.Digest
	} else {
		img, err := desc.Image()
		if err != nil {
			return fmt.Errorf("read image %s: %w", ref, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return fmt.Errorf("read config of %s: %w", ref, err)
		}
		if cfg.Architecture != arch {
			e.logf("fetch-base-digest: FAILED: %s is built for %s/%s but the pool's nodes are %s", ref, cfg.OS, cfg.Architecture, arch)
			return errStage
		}
	}
	pinned := ref.Context().Digest(digest.String())
	if d, ok := ref.(name.Digest); ok && d.DigestStr() != digest.String() {
		e.logf("fetch-base-digest: %s resolves to %s for linux/%s", ref, digest, arch)
	}
	if err := e.writeResult(contract.ResultBaseImage, pinned.String()); err != nil {
		return err
	}
	if err := e.writeResult(contract.ResultBaseImageDigest, digest.String()); err != nil {
		return err
	}
	e.logf("fetch-base-digest: pinned %s", pinned)
	return nil
}
