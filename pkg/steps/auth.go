package steps

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/registryauth"
)

// keychainFromFile loads a dockerconfigjson file (a mounted Secret of type
// kubernetes.io/dockerconfigjson). Registries it does not list are anonymous.
func keychainFromFile(path string) (authn.Keychain, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w (the Secret must be of type kubernetes.io/dockerconfigjson)", err)
	}
	defer func() { _ = f.Close() }() // read only: nothing is lost
	kc, err := registryauth.Keychain(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kc, nil
}
