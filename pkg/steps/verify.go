package steps

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// Bootable-image labels: bootc images carry containers.bootc=1, ostree-native ones (RHCOS)
// ostree.bootable=true; either is enough.
const (
	LabelBootc          = "containers.bootc"
	LabelOstreeBootable = "ostree.bootable"
)

// VerifyResult is what Verify found in an image.
type VerifyResult struct {
	// Problems lists every reason the image must not be promoted; empty means it is bootable.
	Problems []string
	// Kernels lists the kernel versions with both vmlinuz and initramfs.img.
	Kernels []string
	// Layers is the image's layer count; BaseLayers the base's.
	Layers, BaseLayers int
}

// Verify checks that img is a bootable OS image derived from base for arch: the base's layers
// (by diff ID) are a prefix of the image's, the architecture matches, a bootable label is set,
// and the flattened filesystem has /usr/lib/os-release and, for some version, both
// /usr/lib/modules/<version>/vmlinuz and initramfs.img (whiteouts in upper layers honoured).
// It reads every layer once, streaming.
func Verify(img, base v1.Image, arch string) (*VerifyResult, error) {
	res := &VerifyResult{}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	baseCfg, err := base.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read base image config: %w", err)
	}
	problem := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }

	if cfg.OS != "linux" || cfg.Architecture != arch {
		problem("the image is for %s/%s but the pool's nodes are linux/%s", cfg.OS, cfg.Architecture, arch)
	}

	ids, baseIDs := cfg.RootFS.DiffIDs, baseCfg.RootFS.DiffIDs
	res.Layers, res.BaseLayers = len(ids), len(baseIDs)
	switch {
	case len(ids) < len(baseIDs):
		problem("the image has %d layers, fewer than the base image's %d: it is not built on the base (does the Containerfile start a stage FROM another image?)", len(ids), len(baseIDs))
	default:
		for i := range baseIDs {
			if ids[i] != baseIDs[i] {
				problem("layer %d of the image (%s) is not layer %d of the base image (%s): the image is not built on the base; its last stage must start FROM configs (or a stage built on it)", i, short(ids[i]), i, short(baseIDs[i]))
				break
			}
		}
	}

	labels := cfg.Config.Labels
	if !truthy(labels[LabelBootc]) && !truthy(labels[LabelOstreeBootable]) {
		problem("the image has neither the %s=1 nor the %s=true label: it is not a bootable container image", LabelBootc, LabelOstreeBootable)
	}

	fs, err := scanFilesystem(img)
	if err != nil {
		return nil, err
	}
	if !fs.osRelease {
		problem("/usr/lib/os-release is missing")
	}
	res.Kernels = fs.kernels()
	// An ostree-based OS boots exactly one kernel: the one under /usr/lib/modules/<version>/
	// (bootc's lint refuses more, and ostree picks one arbitrarily). One complete kernel beside
	// an incomplete or second one is not a bootable image.
	switch versions := sortedKeys(fs.vmlinuz); {
	case len(versions) == 0:
		problem("no kernel: no /usr/lib/modules/<version>/vmlinuz (was it removed by the Containerfile?)")
	case len(versions) > 1:
		problem("%d kernels under /usr/lib/modules (%s): an ostree-based OS boots exactly one; remove all but one (a kernel update in the Containerfile must remove the previous kernel)",
			len(versions), strings.Join(versions, ", "))
	case len(res.Kernels) == 0:
		problem("no initramfs: /usr/lib/modules/%s/vmlinuz has no initramfs.img beside it", versions[0])
	}
	return res, nil
}

// fsState tracks, across layers, the few paths Verify cares about.
type fsState struct {
	osRelease bool
	vmlinuz   map[string]bool // kernel version → present
	initramfs map[string]bool
}

func (s *fsState) kernels() []string {
	var k []string
	for v := range s.vmlinuz {
		if s.initramfs[v] {
			k = append(k, v)
		}
	}
	slices.Sort(k)
	return k
}

// removeUnder forgets every tracked path equal to or under dir (a whiteout or opaque directory).
func (s *fsState) removeUnder(dir string, keepSelf bool) {
	if dir == "" || dir == "." {
		s.osRelease = false
		clear(s.vmlinuz)
		clear(s.initramfs)
		return
	}
	under := func(p string) bool { return p == dir && !keepSelf || strings.HasPrefix(p, dir+"/") }
	if under("usr/lib/os-release") {
		s.osRelease = false
	}
	for v := range s.vmlinuz {
		if under("usr/lib/modules/" + v + "/vmlinuz") {
			delete(s.vmlinuz, v)
		}
	}
	for v := range s.initramfs {
		if under("usr/lib/modules/" + v + "/initramfs.img") {
			delete(s.initramfs, v)
		}
	}
}

// scanFilesystem applies the image's layers in order, honouring OCI whiteouts.
func scanFilesystem(img v1.Image) (*fsState, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	s := &fsState{vmlinuz: map[string]bool{}, initramfs: map[string]bool{}}
	for i, l := range layers {
		if err := s.applyLayer(l); err != nil {
			return nil, fmt.Errorf("read layer %d: %w", i, err)
		}
	}
	return s, nil
}

func (s *fsState) applyLayer(l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }() // read only: nothing is lost
	tr := tar.NewReader(rc)
	// Opaque directories hide lower layers only: collect them, apply them first, then this
	// layer's own entries.
	var opaque []string
	type entry struct {
		path string
		typ  byte
	}
	var entries []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		p := path.Clean(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"))
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == ".wh..wh..opq":
			opaque = append(opaque, dir)
		case strings.HasPrefix(base, ".wh."):
			entries = append(entries, entry{path.Join(dir, strings.TrimPrefix(base, ".wh.")), 'w'})
		default:
			entries = append(entries, entry{p, h.Typeflag})
		}
	}
	for _, d := range opaque {
		s.removeUnder(d, true)
	}
	for _, e := range entries {
		if e.typ == 'w' {
			s.removeUnder(e.path, false)
			continue
		}
		present := e.typ == tar.TypeReg || e.typ == tar.TypeLink || e.typ == tar.TypeSymlink
		if e.path == "usr/lib/os-release" {
			s.osRelease = present
			continue
		}
		rest, ok := strings.CutPrefix(e.path, "usr/lib/modules/")
		if !ok {
			continue
		}
		version, file, ok := strings.Cut(rest, "/")
		if !ok || strings.Contains(file, "/") {
			continue
		}
		switch file {
		case "vmlinuz":
			setPresent(s.vmlinuz, version, present)
		case "initramfs.img":
			setPresent(s.initramfs, version, present)
		}
	}
	return nil
}

func setPresent(m map[string]bool, k string, present bool) {
	if present {
		m[k] = true
	} else {
		delete(m, k)
	}
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes":
		return true
	}
	return false
}

func short(h v1.Hash) string {
	s := h.String()
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// VerifyStage pulls IMAGE_URL@IMAGE_DIGEST and PINNED_BASE_IMAGE and runs Verify for
// TARGET_ARCH; it fails, listing every problem, when the image must not be promoted.
func VerifyStage(ctx context.Context, e Env) error {
	in, err := e.require(contract.ParamImageURL, contract.ParamImageDigest, contract.ParamPinnedBaseImage, contract.ParamTargetArch)
	if err != nil {
		return err
	}
	ref, err := digestRef(in[contract.ParamImageURL], in[contract.ParamImageDigest], e.nameOptions())
	if err != nil {
		return err
	}
	baseRef, err := digestRef(in[contract.ParamPinnedBaseImage], digestOf(in[contract.ParamPinnedBaseImage]), e.nameOptions())
	if err != nil {
		return fmt.Errorf("PINNED_BASE_IMAGE: %w", err)
	}
	opts, err := e.remoteOptions(ctx, contract.WorkspacePushSecret, contract.WorkspaceBasePullSecret)
	if err != nil {
		return err
	}
	e.logf("verify: checking %s against base %s for linux/%s", ref, baseRef, in[contract.ParamTargetArch])
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		e.logf("verify: FAILED: cannot pull %s: %v", ref, err)
		return errStage
	}
	if desc.MediaType.IsIndex() {
		e.logf("verify: FAILED: %s is a multi-arch index, not a single bootable image", ref)
		return errStage
	}
	img, err := desc.Image()
	if err != nil {
		return fmt.Errorf("read %s: %w", ref, err)
	}
	base, err := remote.Image(baseRef, opts...)
	if err != nil {
		e.logf("verify: FAILED: cannot pull the base image %s: %v", baseRef, err)
		return errStage
	}
	res, err := Verify(img, base, in[contract.ParamTargetArch])
	if err != nil {
		e.logf("verify: FAILED: %v", err)
		return errStage
	}
	e.logf("verify: %d layers, the first %d from the base; kernels with initramfs: %v", res.Layers, res.BaseLayers, res.Kernels)
	if len(res.Problems) > 0 {
		for _, p := range res.Problems {
			e.logf("verify: problem: %s", p)
		}
		e.logf("verify: FAILED: %s is not a bootable image derived from the base (%d problem(s) above); nothing is promoted", ref, len(res.Problems))
		return errStage
	}
	e.logf("verify: %s is bootable and derived from the base", ref)
	return nil
}

// digestOf returns the digest part of repository@digest, or "" (which NewDigest rejects).
func digestOf(ref string) string {
	_, d, _ := strings.Cut(ref, "@")
	return d
}
