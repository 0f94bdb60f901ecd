package steps

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// Env is one stage's view of the world: its environment, its output, and how it reaches registries.
type Env struct {
	// Getenv reads an environment variable (os.Getenv in the pod).
	Getenv func(string) string
	// Stdout receives the step's log.
	Stdout io.Writer
	// Transport overrides the HTTP transport to registries (tests); nil means the default.
	Transport http.RoundTripper
}

// OSEnv is the Env of a real step: the process environment and standard output.
func OSEnv() Env {
	return Env{Getenv: os.Getenv, Stdout: os.Stdout}
}

func (e Env) logf(format string, args ...any) {
	fmt.Fprintf(e.Stdout, format+"\n", args...)
}

// require returns the value of each named variable, or an error naming the missing ones.
func (e Env) require(names ...string) (map[string]string, error) {
	vals := map[string]string{}
	var missing []string
	for _, n := range names {
		v := e.Getenv(n)
		if v == "" {
			missing = append(missing, n)
		}
		vals[n] = v
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing environment variable(s) %s: the step is not run by the ocl-pipelines pipeline", strings.Join(missing, ", "))
	}
	return vals, nil
}

// tlsVerify reads TLS_VERIFY (default true).
func (e Env) tlsVerify() bool {
	return e.Getenv(contract.ParamTLSVerify) != "false"
}

// nameOptions are the options parsing image references.
func (e Env) nameOptions() []name.Option {
	opts := []name.Option{name.StrictValidation}
	if !e.tlsVerify() {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// remoteOptions are the options of registry calls, authenticating with the mounted secrets of
// the given workspaces (contract.Workspace*), first match first.
func (e Env) remoteOptions(ctx context.Context, workspaces ...string) ([]remote.Option, error) {
	kc, err := e.keychain(workspaces...)
	if err != nil {
		return nil, err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	t := e.Transport
	if t == nil && !e.tlsVerify() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // TLS_VERIFY=false was asked for
		t = tr
	}
	if t != nil {
		opts = append(opts, remote.WithTransport(t))
	}
	return opts, nil
}

// keychain authenticates with the mounted dockerconfigjson Secrets of the given workspaces
// (contract.Workspace*), first match first; registries none of them lists are anonymous.
func (e Env) keychain(workspaces ...string) (authn.Keychain, error) {
	var chains []authn.Keychain
	for _, ws := range workspaces {
		if e.Getenv(contract.WorkspaceBoundEnv(ws)) != "true" {
			continue
		}
		path := filepath.Join(e.Getenv(contract.WorkspacePathEnv(ws)), ".dockerconfigjson")
		kc, err := keychainFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ws, err)
		}
		chains = append(chains, kc)
	}
	return authn.NewMultiKeychain(chains...), nil
}

// writeResult writes a Tekton result to the file the RESULT_<name> variable names.
func (e Env) writeResult(result, value string) error {
	path := e.Getenv(contract.ResultEnv(result))
	if path == "" {
		return fmt.Errorf("missing environment variable %s", contract.ResultEnv(result))
	}
	// Replace the file, not truncate it: an earlier step of the task, in another image, may have
	// written it as another user (the buildah image's root; ocl-step runs as 65532), and the
	// results directory is writable by every step.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write result %s: %w", result, err)
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write result %s: %w", result, err)
	}
	return nil
}

// errStage is a stage failure already explained in the log.
var errStage = errors.New("stage failed")
