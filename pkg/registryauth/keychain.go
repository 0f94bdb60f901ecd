package registryauth

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is the key containers/image files Docker Hub's credentials under; its other names
// (index.docker.io, registry-1.docker.io, Docker's legacy https://index.docker.io/v1/) are
// aliases of it.
const dockerHub = "docker.io"

// keychain resolves credentials from one dockerconfigjson document as containers/image (buildah,
// podman, CRI-O) reads an auth file: the most specific key wins (registry/namespace/repository,
// then each parent namespace, then the registry), keys with a scheme (Docker's legacy form)
// name only their host, and Docker Hub's names are one. Registries it does not list are
// anonymous.
type keychain struct {
	auths map[string]types.AuthConfig
}

// Keychain parses a dockerconfigjson document ({"auths": {...}}).
func Keychain(r io.Reader) (authn.Keychain, error) {
	cf, err := config.LoadFromReader(r)
	if err != nil {
		return nil, fmt.Errorf("parse dockerconfigjson: %w", err)
	}
	return keychain{auths: normalize(cf)}, nil
}

// normalize keys the auth file's entries as containers/image looks them up.
func normalize(cf *configfile.ConfigFile) map[string]types.AuthConfig {
	out := map[string]types.AuthConfig{}
	all := cf.GetAuthConfigs()
	keys := make([]string, 0, len(all))
	for key := range all {
		keys = append(keys, key)
	}
	sort.Strings(keys) // two aliases of one key: the same one wins every time
	for _, key := range keys {
		ac := all[key]
		k := key
		if rest, ok := cutScheme(k); ok {
			// https://quay.io/v1/ and the like: the host only.
			k, _, _ = strings.Cut(rest, "/")
		}
		host, path, _ := strings.Cut(k, "/")
		host = canonicalHost(host)
		k = host
		if path != "" {
			k += "/" + strings.TrimSuffix(path, "/")
		}
		if _, taken := out[k]; taken && k != key {
			continue // an exact key beats an alias of it
		}
		out[k] = ac
	}
	return out
}

func cutScheme(k string) (string, bool) {
	for _, p := range []string{"https://", "http://"} {
		if rest, ok := strings.CutPrefix(k, p); ok {
			return rest, true
		}
	}
	return k, false
}

func canonicalHost(host string) string {
	switch host {
	case name.DefaultRegistry, "registry-1.docker.io", dockerHub:
		return dockerHub
	}
	return host
}

// Resolve implements authn.Keychain. A target that is a repository is looked up by its most
// specific key first; a registry by its host.
func (k keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	host := canonicalHost(target.RegistryStr())
	path := ""
	if s := target.String(); s != target.RegistryStr() {
		path = strings.TrimPrefix(s, target.RegistryStr()+"/")
	}
	for {
		key := host
		if path != "" {
			key += "/" + path
		}
		if ac, ok := k.auths[key]; ok {
			return authenticator(ac), nil
		}
		if path == "" {
			return authn.Anonymous, nil
		}
		if i := strings.LastIndex(path, "/"); i >= 0 {
			path = path[:i]
		} else {
			path = ""
		}
	}
}

func authenticator(ac types.AuthConfig) authn.Authenticator {
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	})
}
