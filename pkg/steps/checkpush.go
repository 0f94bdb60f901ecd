package steps

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/net/http/httpproxy"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/contract"
)

// checkPushAnswerTimeout bounds the wait for each answer, so a registry that accepts
// connections and never answers fails the step instead of holding it until the TaskRun's timeout.
const checkPushAnswerTimeout = 30 * time.Second

// checkPushFirstDelay is the wait before the first retry; each later wait doubles it.
const checkPushFirstDelay = time.Second

// pushVerdict is what a failed push check means for the admin.
type pushVerdict int

const (
	// pushRefused: the registry answered and refused the credentials (401, 403, UNAUTHORIZED,
	// DENIED). Retrying cannot help.
	pushRefused pushVerdict = iota + 1
	// pushUntrusted: the registry's certificate is not trusted. Retrying cannot help.
	pushUntrusted
	// pushUnreachable: no answer (refused or reset connection, unknown host, timeout, a closed
	// connection). Retried.
	pushUnreachable
	// pushServerError: the registry answered 429 or 5xx. Retried.
	pushServerError
	// pushOther: any other answer (a repository name the registry rejects, say). Not retried.
	pushOther
)

// classifyPush tells what a push check's error means, and which error says it, from the
// errors' types: the registry's status code and error codes, the network and TLS errors of the
// standard library. Never from their text. go-containerregistry tries https and then http on
// private addresses and reports both errors; the more telling one wins: a refusal, then an
// untrusted certificate, then any other answer of the registry, then no answer.
func classifyPush(err error) (pushVerdict, error) {
	var terr *transport.Error
	answered := errors.As(err, &terr)
	if answered && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return pushRefused, terr
	}
	if answered {
		for _, d := range terr.Errors {
			if d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
				return pushRefused, terr
			}
		}
	}
	if cert := certificateError(err); cert != nil {
		return pushUntrusted, cert
	}
	if answered {
		if terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= http.StatusInternalServerError {
			return pushServerError, terr
		}
		return pushOther, terr
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &opErr):
		return pushUnreachable, opErr
	case errors.As(err, &dnsErr):
		return pushUnreachable, dnsErr
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded):
		return pushUnreachable, rootCause(err)
	case errors.As(err, &netErr):
		return pushUnreachable, rootCause(netErr)
	}
	return pushOther, err
}

// certificateError is the TLS verification error in err, or nil.
func certificateError(err error) error {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &verify):
		return verify
	case errors.As(err, &unknownCA):
		return unknownCA
	case errors.As(err, &hostname):
		return hostname
	case errors.As(err, &invalid):
		return invalid
	}
	return nil
}

// retried reports whether another attempt may succeed.
func (v pushVerdict) retried() bool { return v == pushUnreachable || v == pushServerError }

// CheckPush asks IMAGE's registry, before anything is built, whether the push secret may push to
// IMAGE's repository (a token exchange for push scope and an upload that is started and
// cancelled), reaching the registry as the push step will: through the proxy and trusting the
// cluster's CA. A refusal or an untrusted certificate fails at once; no answer is retried
// PUSH_RETRIES times. The failure is one line in the log and in the FAILURE result.
func CheckPush(ctx context.Context, e Env) error {
	in, err := e.require(contract.ParamImage, contract.ParamPushRetries)
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(in[contract.ParamImage], e.nameOptions()...)
	if err != nil {
		return fmt.Errorf("IMAGE %q: %w", in[contract.ParamImage], err)
	}
	retries, err := strconv.Atoi(in[contract.ParamPushRetries])
	if err != nil || retries < 0 {
		return fmt.Errorf("PUSH_RETRIES %q: want a number of retries, 0 or more", in[contract.ParamPushRetries])
	}
	kc, err := e.keychain(contract.WorkspacePushSecret)
	if err != nil {
		return err
	}
	rt, err := e.pushTransport()
	if err != nil {
		return err
	}
	credentials := "no push secret (anonymous)"
	if e.Getenv(contract.WorkspaceBoundEnv(contract.WorkspacePushSecret)) == "true" {
		credentials = "the push secret's credentials"
	}
	repo, registry := ref.Context().Name(), ref.Context().RegistryStr()

	e.logf("check-push: may %s push to %s? (up to %d retries)", credentials, repo, retries)
	delay := checkPushFirstDelay
	for attempt := 0; ; attempt++ {
		err = checkPushOnce(ctx, ref, kc, rt)
		if err == nil {
			e.logf("check-push: %s accepts %s for %s", registry, credentials, repo)
			return nil
		}
		v, cause := classifyPush(err)
		if !v.retried() || attempt == retries || ctx.Err() != nil {
			return e.failPush(pushMessage(v, cause, registry, repo, credentials, attempt))
		}
		e.logf("check-push: %s: %s; retrying in %s (%d/%d)", registry, describe(cause), delay, attempt+1, retries)
		select {
		case <-ctx.Done():
			return e.failPush(pushMessage(v, ctx.Err(), registry, repo, credentials, attempt))
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// checkPushOnce runs one push check. The upload it starts is cancelled by go-containerregistry
// on a best-effort basis (registries purge abandoned uploads).
func checkPushOnce(ctx context.Context, ref name.Reference, kc authn.Keychain, rt http.RoundTripper) error {
	return remote.CheckPushPermission(ref, kc, contextTransport{ctx: ctx, next: rt})
}

// pushMessage is the one line that explains a failed push check, with what to do; cause is the
// error classifyPush chose.
func pushMessage(v pushVerdict, err error, registry, repo, credentials string, retries int) string {
	cause := describe(err)
	switch v {
	case pushRefused:
		return fmt.Sprintf("registry %s refused %s for %s (not retried): give the push secret write access to that repository", registry, credentials, repo)
	case pushUntrusted:
		return fmt.Sprintf("registry %s presented a certificate the build does not trust (%v; not retried): add its CA to the trusted-ca ConfigMap, or set TLS_VERIFY to false for a test registry", registry, cause)
	case pushUnreachable:
		return fmt.Sprintf("registry %s unreachable after %d retries for %s (%v): check that it is up and reachable from the build pods, then retry the build", registry, retries, repo, cause)
	case pushServerError:
		return fmt.Sprintf("registry %s failing after %d retries for %s (%v): retry the build once the registry recovers", registry, retries, repo, cause)
	}
	return fmt.Sprintf("registry %s will not take a push to %s (%v; not retried): check the push spec's repository", registry, repo, cause)
}

// describe is err in one line: a registry's answer as its status and error codes (its body may
// be a whole HTML page), anything else with its line breaks folded.
func describe(err error) string {
	var terr *transport.Error
	if errors.As(err, &terr) {
		out := fmt.Sprintf("HTTP %d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
		for _, d := range terr.Errors {
			out += fmt.Sprintf(", %s: %s", d.Code, d.Message)
		}
		err = errors.New(out)
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// rootCause shortens a wrapped network error to its operation and cause ("dial tcp
// 10.0.0.1:5000: connect: connection refused"), dropping the URL wrappers around it.
func rootCause(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// failPush logs msg as the step's verdict, writes it to the FAILURE result and returns errStage.
func (e Env) failPush(msg string) error {
	e.logf("check-push: FAILED: %s", msg)
	if err := e.writeResult(contract.ResultFailure, msg); err != nil {
		return err
	}
	return errStage
}

// pushTransport is the transport the push check reaches the registry with: the proxy of the
// proxy Secret (or of the proxy parameters), the system's CAs and the trusted-ca ConfigMap's,
// and no verification when TLS_VERIFY is false. Env.Transport (tests) replaces it.
func (e Env) pushTransport() (http.RoundTripper, error) {
	if e.Transport != nil {
		return e.Transport, nil
	}
	proxy, err := e.proxyConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = checkPushAnswerTimeout
	proxyFunc := proxy.ProxyFunc()
	tr.Proxy = func(r *http.Request) (*url.URL, error) { return proxyFunc(r.URL) }
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if !e.tlsVerify() {
		tlsConfig.InsecureSkipVerify = true //nolint:gosec // TLS_VERIFY=false was asked for
	} else if e.Getenv(contract.WorkspaceBoundEnv(contract.WorkspaceTrustedCA)) == "true" {
		key := e.Getenv(contract.ParamTrustedCAKey)
		path := filepath.Join(e.Getenv(contract.WorkspacePathEnv(contract.WorkspaceTrustedCA)), key)
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("the trusted CA ConfigMap has no key %s: %w", key, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the trusted CA ConfigMap's key %s holds no PEM certificate", key)
		}
		tlsConfig.RootCAs = pool
	}
	tr.TLSClientConfig = tlsConfig
	return tr, nil
}

// proxyConfig is the build's proxy: the proxy Secret's files when it is bound (a proxy URL with
// credentials), else the proxy parameters. As in the build and push steps, the Secret replaces
// the parameters; its values are never printed.
func (e Env) proxyConfig() (*httpproxy.Config, error) {
	cfg := &httpproxy.Config{
		HTTPProxy:  e.Getenv(contract.ParamHTTPProxy),
		HTTPSProxy: e.Getenv(contract.ParamHTTPSProxy),
		NoProxy:    e.Getenv(contract.ParamNoProxy),
	}
	if e.Getenv(contract.WorkspaceBoundEnv(contract.WorkspaceProxy)) != "true" {
		return cfg, nil
	}
	dir := e.Getenv(contract.WorkspacePathEnv(contract.WorkspaceProxy))
	for key, dst := range map[string]*string{"HTTP_PROXY": &cfg.HTTPProxy, "HTTPS_PROXY": &cfg.HTTPSProxy, "NO_PROXY": &cfg.NoProxy} {
		b, err := os.ReadFile(filepath.Join(dir, key))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("proxy Secret key %s: %w", key, err)
		default:
			*dst = strings.TrimSpace(string(b))
		}
	}
	return cfg, nil
}

// contextTransport gives every request ctx: remote.CheckPushPermission takes no context.
type contextTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

// RoundTrip sends r with the transport's context.
func (t contextTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.next.RoundTrip(r.WithContext(t.ctx))
}
