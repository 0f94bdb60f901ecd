// Package imagetest reads images the way tests check them: every file of every layer, so that
// a secret found in any layer is found, whatever later layers hide.
package imagetest

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// File is one entry of one layer.
type File struct {
	// Layer is the layer's index, base first.
	Layer int
	// Path is the entry's path without a leading "./" or "/".
	Path string
	// Header is the entry's tar header.
	Header *tar.Header
	// Content is the entry's content (empty for directories and links).
	Content []byte
}

// EachFile calls f with every entry of every layer of img, in order: the last call for a path
// is the file the flattened image has (when no later whiteout removed it).
func EachFile(img v1.Image, f func(File)) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range layers {
		if err := eachEntry(i, l, f); err != nil {
			return err
		}
	}
	return nil
}

func eachEntry(i int, l v1.Layer, f func(File)) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("layer %d: %w", i, err)
	}
	defer func() { _ = rc.Close() }() // read only: nothing is lost
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("layer %d, %s: %w", i, h.Name, err)
		}
		f(File{Layer: i, Path: strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"), Header: h, Content: b})
	}
}
