package release

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	base = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	ext  = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:eeee111111111111111111111111111111111111111111111111111111111111"
)

func imageReferences(version string, tags map[string]string) string {
	var b strings.Builder
	b.WriteString(`{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"` + version + `"},"spec":{"tags":[`)
	first := true
	for n, ref := range tags {
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`{"name":"` + n + `","from":{"kind":"DockerImage","name":"` + ref + `"}}`)
	}
	b.WriteString(`]}}`)
	return b.String()
}

func layer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// push writes an image of the given layers (bottom first) to the registry and returns its ref.
func push(t *testing.T, host, repo string, layers ...v1.Layer) string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return host + "/" + repo + "@" + d.String()
}

func TestResolve(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	refs := imageReferences("4.18.3", map[string]string{"rhel-coreos": base, "rhel-coreos-extensions": ext, "cli": base})
	good := push(t, host, "release", layer(t, map[string]string{"usr/bin/cluster-version-operator": "cvo"}),
		layer(t, map[string]string{"release-manifests/image-references": refs, "release-manifests/release-metadata": "{}"}))
	got, err := Resolve(ctx, good, authn.DefaultKeychain)
	if err != nil {
		t.Fatal(err)
	}
	if got != (OSImages{Version: "4.18.3", BaseOS: base, Extensions: ext}) {
		t.Errorf("Resolve = %+v", got)
	}

	// A newer layer that deletes the file wins over an older one that has it.
	deleted := push(t, host, "deleted", layer(t, map[string]string{"release-manifests/image-references": refs}),
		layer(t, map[string]string{"release-manifests/.wh.image-references": ""}))
	if _, err := Resolve(ctx, deleted, authn.DefaultKeychain); err == nil || !strings.Contains(err.Error(), "was deleted in a layer") {
		t.Errorf("a deleted image-references: err = %v", err)
	}
	notRelease := push(t, host, "app", layer(t, map[string]string{"app": "x"}))
	if _, err := Resolve(ctx, notRelease, authn.DefaultKeychain); err == nil || !strings.Contains(err.Error(), "is it a release payload image?") {
		t.Errorf("not a release image: err = %v", err)
	}
	if _, err := Resolve(ctx, host+"/missing:1", authn.DefaultKeychain); err == nil || !strings.Contains(err.Error(), "read release image "+host+"/missing:1") {
		t.Errorf("a missing image: err = %v", err)
	}
}

func TestParseImageReferences(t *testing.T) {
	for _, c := range []struct {
		name, doc, want string
		images          OSImages
	}{
		{name: "RHEL 9 naming", doc: imageReferences("4.16.0", map[string]string{"rhel-coreos-9": base, "rhel-coreos-9-extensions": ext}),
			images: OSImages{Version: "4.16.0", BaseOS: base, Extensions: ext}},
		{name: "no extensions", doc: imageReferences("4.18.0", map[string]string{"rhel-coreos": base}),
			images: OSImages{Version: "4.18.0", BaseOS: base}},
		{name: "no OS image", doc: imageReferences("4.18.0", map[string]string{"cli": base}), want: "has no OS image"},
		{name: "a tag, not a digest", doc: imageReferences("4.18.0", map[string]string{"rhel-coreos": "quay.io/os:latest"}), want: "is not pinned by digest"},
		{name: "not an ImageStream", doc: `{"kind":"ConfigMap"}`, want: `is a "ConfigMap", want an ImageStream`},
		{name: "not JSON", doc: `{`, want: "parse release-manifests/image-references"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseImageReferences([]byte(c.doc))
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("err = %v, want %q", err, c.want)
				}
				return
			}
			if err != nil || got != c.images {
				t.Errorf("= %+v, %v; want %+v", got, err, c.images)
			}
		})
	}
}
