package registryauth

import (
	"fmt"
	"io"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// keychain resolves credentials from one dockerconfigjson document. Registries it does not list
// are anonymous.
type keychain struct {
	cf *configfile.ConfigFile
}

// Keychain parses a dockerconfigjson document ({"auths": {...}}).
func Keychain(r io.Reader) (authn.Keychain, error) {
	cf, err := config.LoadFromReader(r)
	if err != nil {
		return nil, fmt.Errorf("parse dockerconfigjson: %w", err)
	}
	return keychain{cf: cf}, nil
}

// Resolve implements authn.Keychain.
func (k keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	key := target.RegistryStr()
	if key == name.DefaultRegistry {
		key = authn.DefaultAuthKey
	}
	ac, ok := k.cf.AuthConfigs[key]
	if !ok {
		// Keys may carry a scheme or path (https://quay.io/v1/); the docker library matches them.
		c, err := k.cf.GetAuthConfig(key)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", target.RegistryStr(), err)
		}
		ac = c
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}), nil
}
