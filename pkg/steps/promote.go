package steps

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// Promote moves CURRENT_TAG of the image's repository to the verified IMAGE_DIGEST and writes
// the result PROMOTED_IMAGE (repository@sha256:digest). Cluster-side promotion (the pool's
// MachineConfig) is the controller's; this step needs only push rights on the repository.
func Promote(ctx context.Context, e Env) error {
	in, err := e.require(contract.ParamImageURL, contract.ParamImageDigest, contract.ParamCurrentTag)
	if err != nil {
		return err
	}
	img, err := digestRef(in[contract.ParamImageURL], in[contract.ParamImageDigest], e.nameOptions())
	if err != nil {
		return err
	}
	tag, err := name.NewTag(img.Context().Name()+":"+in[contract.ParamCurrentTag], e.nameOptions()...)
	if err != nil {
		return fmt.Errorf("CURRENT_TAG %q: %w", in[contract.ParamCurrentTag], err)
	}
	opts, err := e.remoteOptions(ctx, contract.WorkspacePushSecret)
	if err != nil {
		return err
	}
	desc, err := remote.Get(img, opts...)
	if err != nil {
		e.logf("promote: FAILED: cannot read the verified image %s: %v", img, err)
		return errStage
	}
	e.logf("promote: tagging %s as %s", img, tag)
	if err := remote.Tag(tag, desc, opts...); err != nil {
		e.logf("promote: FAILED: cannot tag %s: %v; check that the push secret can push to %s", tag, err, tag.Context())
		return errStage
	}
	if err := e.writeResult(contract.ResultPromotedImage, img.String()); err != nil {
		return err
	}
	e.logf("promote: %s now names %s", tag, img)
	return nil
}

// digestRef builds repository@digest from an image URL (repository:tag) and a digest.
func digestRef(imageURL, digest string, opts []name.Option) (name.Digest, error) {
	ref, err := name.ParseReference(imageURL, opts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("IMAGE_URL %q: %w", imageURL, err)
	}
	d, err := name.NewDigest(ref.Context().Name()+"@"+digest, opts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("IMAGE_DIGEST %q: %w", digest, err)
	}
	return d, nil
}
