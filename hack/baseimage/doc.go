// Command baseimage builds the base of the project's images (the controller and ocl-step,
// built on it by ko): a static, non-root root filesystem with nothing but what a static Go
// binary needs — /etc/passwd and /etc/group with the user nonroot (65532, as distroless),
// /etc/nsswitch.conf, a home directory and /tmp — for linux/amd64 and linux/arm64, as an OCI
// image index. Every timestamp is zero and every entry sorted, so the same tree gives the same
// digest on every machine. CA certificates are not in it: the binaries carry the Mozilla roots
// of golang.org/x/crypto/x509roots/fallback, pinned in go.sum.
//
//	go run ./hack/baseimage [--insecure] REGISTRY/REPO:TAG   # pushes, prints REGISTRY/REPO@sha256:…
//
// No registry outside this machine is needed or reached (hack/images.sh).
package main
