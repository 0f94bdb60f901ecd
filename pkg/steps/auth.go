package steps

import (
	"fmt"
	"os"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// fileKeychain resolves credentials from one dockerconfigjson file (a mounted Secret of type
// kubernetes.io/dockerconfigjson). Registries it does not list are anonymous.
type fileKeychain struct {
	cf *configfile.ConfigFile
}

// keychainFromFile loads a dockerconfigjson file.
func keychainFromFile(path string) (authn.Keychain, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w (the Secret must be of type kubernetes.io/dockerconfigjson)", err)
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("parse credentials %s: %w", path, err)
	}
	return fileKeychain{cf: cf}, nil
}

// Resolve implements authn.Keychain.
func (k fileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
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
