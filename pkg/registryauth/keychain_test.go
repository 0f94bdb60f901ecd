package registryauth_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/registryauth"
)

// TestKeychainLooksUpAsContainersImage: the credentials chosen for a repository are the ones
// buildah (containers/image) would push with, so a check in Go and buildah's push agree.
func TestKeychainLooksUpAsContainersImage(t *testing.T) {
	entry := func(user string) string {
		return fmt.Sprintf(`{"auth":%q}`, base64.StdEncoding.EncodeToString([]byte(user+":pw")))
	}
	doc := func(entries map[string]string) string {
		var parts []string
		for k, v := range entries {
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
		return `{"auths":{` + strings.Join(parts, ",") + `}}`
	}
	for _, tc := range []struct {
		name    string
		entries map[string]string
		target  string // a repository, or a registry when it has no '/'
		want    string // the user, "" for anonymous
	}{
		{"a repository's own key beats its registry's (a push robot beside the pull secret)",
			map[string]string{"quay.io": entry("puller"), "quay.io/myorg/os": entry("robot")}, "quay.io/myorg/os", "robot"},
		{"a parent namespace's key", map[string]string{"quay.io": entry("puller"), "quay.io/myorg": entry("org")}, "quay.io/myorg/os", "org"},
		{"the registry's key for any other repository", map[string]string{"quay.io": entry("puller"), "quay.io/myorg/os": entry("robot")}, "quay.io/other/os", "puller"},
		{"a registry alone uses its host key", map[string]string{"quay.io": entry("puller"), "quay.io/myorg/os": entry("robot")}, "quay.io", "puller"},
		{"docker.io as podman login writes it", map[string]string{"docker.io": entry("hub")}, "docker.io/library/busybox", "hub"},
		{"Docker's legacy Hub key", map[string]string{"https://index.docker.io/v1/": entry("hub")}, "index.docker.io/myorg/os", "hub"},
		{"a key with a scheme names its host only", map[string]string{"https://registry.example.com/v2/": entry("legacy")}, "registry.example.com/os/worker", "legacy"},
		{"another registry is anonymous", map[string]string{"quay.io": entry("puller")}, "registry.example.com/os/worker", ""},
		{"a port is part of the host", map[string]string{"10.0.0.1:5000": entry("local")}, "10.0.0.1:5001/os/worker", ""},
		{"a Hub alias with a path is not renamed (containers/image does not match it)",
			map[string]string{"docker.io": entry("hub"), "index.docker.io/myorg/os": entry("robot")}, "docker.io/myorg/os", "hub"},
		{"a trailing slash is part of the key", map[string]string{"quay.io": entry("reg"), "quay.io/myorg/": entry("slash")}, "quay.io/myorg/os", "reg"},
		{"only auth counts (username and password fields are Docker's, not containers/image's)",
			map[string]string{"quay.io": `{"username":"u","password":"p"}`}, "quay.io/myorg/os", ""},
		{"a malformed entry of another registry does not matter",
			map[string]string{"quay.io": entry("puller"), "broken.example.com": `{"auth":"bm9jb2xvbg=="}`}, "quay.io/myorg/os", "puller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc, err := registryauth.Keychain(strings.NewReader(doc(tc.entries)))
			if err != nil {
				t.Fatal(err)
			}
			var target authn.Resource
			if strings.Contains(tc.target, "/") {
				target, err = name.NewRepository(tc.target)
			} else {
				target, err = name.NewRegistry(tc.target)
			}
			if err != nil {
				t.Fatal(err)
			}
			auth, err := kc.Resolve(target)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := auth.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Username != tc.want {
				t.Errorf("Resolve(%s) = user %q, want %q", tc.target, cfg.Username, tc.want)
			}
		})
	}
}
