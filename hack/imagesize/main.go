package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	insecure := flag.Bool("insecure", false, "the registry speaks plain HTTP")
	flag.Parse()
	for _, arg := range flag.Args() {
		if err := show(arg, *insecure); err != nil {
			fmt.Fprintln(os.Stderr, "imagesize:", err)
			os.Exit(1)
		}
	}
}

func show(arg string, insecure bool) error {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(arg, opts...)
	if err != nil {
		return fmt.Errorf("reference %q: %w", arg, err)
	}
	desc, err := remote.Get(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return fmt.Errorf("get %s: %w", ref, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return fmt.Errorf("index %s: %w", ref, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return fmt.Errorf("index %s: %w", ref, err)
		}
		for _, d := range m.Manifests {
			if d.Platform == nil || d.Platform.OS == "unknown" {
				continue // attestations and SBOMs
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("image %s of %s: %w", d.Digest, ref, err)
			}
			if err := line(arg, d.Platform.String(), img); err != nil {
				return err
			}
		}
		return nil
	}
	img, err := desc.Image()
	if err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("config %s: %w", ref, err)
	}
	return line(arg, cf.OS+"/"+cf.Architecture, img)
}

func line(ref, platform string, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers of %s: %w", ref, err)
	}
	var compressed, uncompressed int64
	for _, l := range layers {
		c, err := l.Size()
		if err != nil {
			return fmt.Errorf("layer size of %s: %w", ref, err)
		}
		compressed += c
		r, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("layer of %s: %w", ref, err)
		}
		n, err := countBytes(r)
		if err != nil {
			return fmt.Errorf("layer of %s: %w", ref, err)
		}
		uncompressed += n
	}
	fmt.Printf("image: ref=%s platform=%s layers=%d compressed=%.1fMB uncompressed=%.1fMB\n",
		ref, platform, len(layers), float64(compressed)/1e6, float64(uncompressed)/1e6)
	return nil
}
