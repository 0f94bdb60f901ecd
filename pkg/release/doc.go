// Package release reads an OpenShift release payload image: its image-references manifest
// (release-manifests/image-references, an ImageStream) names every image of the release, among
// them the OS image the nodes boot (rhel-coreos) and its extensions (rhel-coreos-extensions).
// The controller builds a pool's image against a candidate release with them before the upgrade
// starts, so the upgrade promotes an image that is already built and verified.
package release
