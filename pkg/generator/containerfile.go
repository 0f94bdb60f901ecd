package generator

import (
	"fmt"
	"strings"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// Build arguments the rendered Containerfile declares; the build step sets them from the
// fetch-base-digest stage's results, so the base is exactly the digest that stage pinned.
const (
	// BaseImageArg is the base OS image, repository@sha256:digest for the pool's architecture.
	BaseImageArg = "OCL_BASE_IMAGE"
	// ExtensionsImageArg is the CoreOS extensions image.
	ExtensionsImageArg = "OCL_EXTENSIONS_IMAGE"
)

// Image labels of every built image, set by the build step (buildah build --label) on the final
// image: in the Containerfile they would change the layer cache keys of the steps after them.
const (
	LabelPool       = "io.openshift.machineconfigpool"
	LabelBaseImage  = "dev.ocl-pipelines.base-image"
	LabelInputsHash = "dev.ocl-pipelines.inputs-hash"
)

// RenderContainerfile returns the Containerfile a PoolImage builds with in: a stage named
// `configs` on the pinned base image (with a step that names the mounted entitlements and
// repositories, when there are any), an `extensions` stage when there is an extensions image,
// and the admin's Containerfile last, unchanged. The cluster's trust bundle is not baked in: the
// build mounts it for RUN steps, and the MCO writes it onto the nodes.
//
// MachineConfig extensions and kernelType are not installed here: when a MachineConfig sets
// osImageURL, the machine-config daemon applies them on top of the custom image after the
// rebase (pkg/daemon/update.go), so baking them in would install them twice.
func RenderContainerfile(pi *v1alpha1.PoolImage, in Inputs) (string, error) {
	p, err := newPlan(pi, in)
	if err != nil {
		return "", err
	}
	return p.containerfile(p.hash()), nil
}

func (p *plan) containerfile(hash string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Rendered by ocl-pipelines for MachineConfigPool %s (inputs %s). Do not edit: change the PoolImage.", p.Pool, hash)
	w("# %s is set by the build step to the base image pinned by the fetch-base-digest stage:", BaseImageArg)
	w("# %s", p.BaseImage)
	w("ARG %s", BaseImageArg)
	if p.ExtensionsImage != "" {
		w("ARG %s", ExtensionsImageArg)
		w("")
		w("# The release's CoreOS extensions. Install RPMs from it in your stage with")
		w("#   RUN --mount=type=bind,from=extensions,source=/usr/share/rpm-ostree/extensions,target=/run/extensions ...")
		w("FROM ${%s} AS extensions", ExtensionsImageArg)
	}
	w("")
	w("FROM ${%s} AS configs", BaseImageArg)
	if m := p.mountedInputs(); m != "" {
		// Entitlements and repositories reach RUN steps only through buildah --volume, which a
		// layer cache does not key on: this step's text changes with them, so a cached RUN of
		// the admin's Containerfile is not reused when they change.
		w("# The entitlements and repositories mounted into RUN steps (%s): a change rebuilds every RUN after this.", p.mountedList())
		w("RUN : ocl-pipelines mounted inputs %s", m)
	}
	w("")
	w("# ---- spec.containerfile (%s), verbatim ----", p.Arch)
	b.WriteString(p.Containerfile)
	if !strings.HasSuffix(p.Containerfile, "\n") {
		b.WriteString("\n")
	}
	return b.String()
}

// mountedList names the mounted inputs for the Containerfile's comment.
func (p *plan) mountedList() string {
	var l []string
	for _, e := range []struct{ kind, name string }{
		{"entitlement", p.Entitlement}, {"activation key", p.ActivationKey}, {"yum repositories", p.YumRepos}, {"RPM GPG keys", p.RPMGPG},
	} {
		if e.name != "" {
			l = append(l, e.kind+" "+e.name)
		}
	}
	return strings.Join(l, ", ")
}
