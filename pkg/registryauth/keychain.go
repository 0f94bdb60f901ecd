package registryauth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is the name containers/image gives Docker Hub's images (docker.io/library/busybox);
// dockerHubHost is the host its auth-file keys normalise to.
const (
	dockerHub     = "docker.io"
	dockerHubHost = "index.docker.io"
)

// authFile is a dockerconfigjson document, with the fields containers/image reads of it.
type authFile struct {
	Auths map[string]authEntry `json:"auths"`
}

type authEntry struct {
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

// keychain resolves credentials from one dockerconfigjson document as containers/image (buildah,
// podman, CRI-O) reads an auth file (pkg/docker/config, findCredentialsInFile), so a Go stage
// and buildah pick the same credentials: first the exact keys registry/namespace/repository,
// then each parent namespace, then the registry; then any key that names the registry in
// another form (with a scheme, as Docker's legacy https://index.docker.io/v1/; Docker Hub's
// aliases). Only the chosen entry is decoded (a malformed entry for another registry does not
// matter), and only its auth and identitytoken fields count. Registries it does not list are
// anonymous.
type keychain struct {
	auths map[string]authEntry
	keys  []string // sorted: two keys naming one registry resolve the same way every time
}

// Keychain parses a dockerconfigjson document ({"auths": {...}}).
func Keychain(r io.Reader) (authn.Keychain, error) {
	var f authFile
	if err := json.NewDecoder(r).Decode(&f); err != nil {
		return nil, fmt.Errorf("parse dockerconfigjson: %w", err)
	}
	keys := make([]string, 0, len(f.Auths))
	for k := range f.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keychain{auths: f.Auths, keys: keys}, nil
}

// Resolve implements authn.Keychain. A target that is a repository is looked up by its most
// specific key first; a registry by its host.
func (k keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	host := target.RegistryStr()
	path := ""
	if s := target.String(); s != host {
		path = strings.TrimPrefix(s, host+"/")
	}
	exact := host
	if host == name.DefaultRegistry {
		exact = dockerHub
	}
	for {
		key := exact
		if path != "" {
			key += "/" + path
		}
		if e, ok := k.auths[key]; ok {
			return decode(key, e)
		}
		if path == "" {
			break
		}
		if i := strings.LastIndex(path, "/"); i >= 0 {
			path = path[:i]
		} else {
			path = ""
		}
	}
	want := normalizeHost(host)
	for _, key := range k.keys {
		if normalizeKey(key) == want {
			return decode(key, k.auths[key])
		}
	}
	return authn.Anonymous, nil
}

// normalizeKey is containers/image's normalizeAuthFileKey: a key with a scheme names its host
// only; other keys stay as written, Docker Hub's aliases aside.
func normalizeKey(key string) string {
	for _, scheme := range []string{"https://", "http://"} {
		if rest, ok := strings.CutPrefix(key, scheme); ok {
			host, _, _ := strings.Cut(rest, "/")
			return normalizeHost(host)
		}
	}
	return normalizeHost(key)
}

func normalizeHost(host string) string {
	switch host {
	case dockerHub, "registry-1.docker.io":
		return dockerHubHost
	}
	return host
}

// decode is containers/image's decodeDockerAuth: user:password from auth (an entry without a
// colon is anonymous), the identity token beside it.
func decode(key string, e authEntry) (authn.Authenticator, error) {
	raw, err := base64.StdEncoding.DecodeString(e.Auth)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: the auth field is not base64: %w", key, err)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return authn.Anonymous, nil
	}
	password = strings.Trim(password, "\x00")
	if e.IdentityToken == "" && user == "" && password == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: password, IdentityToken: e.IdentityToken}), nil
}
