package release

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ImageReferencesPath is where a release payload image keeps its image references.
const ImageReferencesPath = "release-manifests/image-references"

// The image-references tags of the OS images, newest naming first.
var (
	osTags         = []string{"rhel-coreos", "rhel-coreos-10", "rhel-coreos-9", "rhel-coreos-8"}
	extensionsTags = []string{"rhel-coreos-extensions", "rhel-coreos-10-extensions", "rhel-coreos-9-extensions", "rhel-coreos-8-extensions"}
)

// OSImages are the images of a release that a pool's image depends on.
type OSImages struct {
	// Version is the release's version (image-references metadata.name), e.g. 4.18.3.
	Version string
	// BaseOS is the OS image, repository@sha256:digest (ControllerConfig baseOSContainerImage).
	BaseOS string
	// Extensions is the extensions image (baseOSExtensionsContainerImage); empty if none.
	Extensions string
}

// imageStream is the part of an ImageStream that image-references uses.
type imageStream struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Tags []struct {
			Name string `json:"name"`
			From struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"from"`
		} `json:"tags"`
	} `json:"spec"`
}

// ParseImageReferences returns the OS images named by an image-references document.
func ParseImageReferences(b []byte) (OSImages, error) {
	var is imageStream
	if err := json.Unmarshal(b, &is); err != nil {
		return OSImages{}, fmt.Errorf("parse %s: %w", ImageReferencesPath, err)
	}
	if is.Kind != "ImageStream" {
		return OSImages{}, fmt.Errorf("%s is a %q, want an ImageStream", ImageReferencesPath, is.Kind)
	}
	tags := map[string]string{}
	for _, t := range is.Spec.Tags {
		if t.From.Kind == "DockerImage" && t.From.Name != "" {
			tags[t.Name] = t.From.Name
		}
	}
	out := OSImages{Version: is.Metadata.Name}
	for _, t := range osTags {
		if out.BaseOS = tags[t]; out.BaseOS != "" {
			break
		}
	}
	for _, t := range extensionsTags {
		if out.Extensions = tags[t]; out.Extensions != "" {
			break
		}
	}
	if out.BaseOS == "" {
		return OSImages{}, fmt.Errorf("%s has no OS image (tags %s)", ImageReferencesPath, strings.Join(osTags, ", "))
	}
	for _, ref := range []string{out.BaseOS, out.Extensions} {
		if ref == "" {
			continue
		}
		if _, err := name.NewDigest(ref); err != nil {
			return OSImages{}, fmt.Errorf("%s: %s is not pinned by digest: %w", ImageReferencesPath, ref, err)
		}
	}
	return out, nil
}

// Resolve reads the OS images of the release payload image releaseImage (pull spec, by digest
// or tag) with the credentials of kc. It reads the image's layers from the top until it finds
// image-references, so it does not download the whole payload.
func Resolve(ctx context.Context, releaseImage string, kc authn.Keychain, opts ...remote.Option) (OSImages, error) {
	ref, err := name.ParseReference(releaseImage)
	if err != nil {
		return OSImages{}, fmt.Errorf("release image %q: %w", releaseImage, err)
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}, opts...)
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return OSImages{}, fmt.Errorf("read release image %s: %w", releaseImage, err)
	}
	b, err := findFile(img, ImageReferencesPath)
	if err != nil {
		return OSImages{}, fmt.Errorf("release image %s: %w", releaseImage, err)
	}
	return ParseImageReferences(b)
}

// errNotFound says a layer does not hold the file.
var errNotFound = errors.New("not found")

// findFile returns the content of file in img, looking at the top layer first; a whiteout of it
// in a layer ends the search.
func findFile(img v1.Image, file string) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		b, err := fileInLayer(layers[i], file)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, errNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no %s in any layer: is it a release payload image?", file)
}

func fileInLayer(l v1.Layer, file string) ([]byte, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	defer func() { _ = rc.Close() }() // read only: nothing is lost
	tr := tar.NewReader(rc)
	whiteout := path.Join(path.Dir(file), ".wh."+path.Base(file))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errNotFound
		} else if err != nil {
			return nil, fmt.Errorf("read layer: %w", err)
		}
		n := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch n {
		case file:
			// image-references is ~100 KB; cap the read so a hostile image cannot exhaust memory.
			b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", file, err)
			}
			return b, nil
		case whiteout:
			return nil, fmt.Errorf("%s was deleted in a layer", file)
		}
	}
}
