package main

import (
	"archive/tar"
	"errors"
	"io"
	"testing"
)

// The base is reproducible (two builds, one digest), runs as nonroot on every platform, and
// holds no executable: nothing but what a static Go binary needs.
func TestIndex(t *testing.T) {
	a, err := Index()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Index()
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("two builds, two digests: %s, %s", da, db)
	}
	m, err := a.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != len(platforms) {
		t.Fatalf("%d manifests, want one per platform (%d)", len(m.Manifests), len(platforms))
	}
	for _, d := range m.Manifests {
		img, err := a.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.User != "65532:65532" || cf.Architecture != d.Platform.Architecture || cf.Created.Unix() != 0 {
			t.Errorf("%s: user %q, arch %s, created %v: want 65532:65532, %s, the epoch", d.Platform, cf.Config.User, cf.Architecture, cf.Created, d.Platform.Architecture)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: layers %d (%v), want 1", d.Platform, len(layers), err)
		}
		r, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 {
				t.Errorf("%s: %s is executable; the base holds no program", d.Platform, h.Name)
			}
			if h.ModTime.Unix() != 0 {
				t.Errorf("%s: %s has a timestamp %v", d.Platform, h.Name, h.ModTime)
			}
		}
		_ = r.Close()
	}
}
