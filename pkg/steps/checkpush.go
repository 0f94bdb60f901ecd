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

// checkPushFirstDelay is the wait before the first retry; each later wait doubles it, up to
// checkPushMaxDelay.
const (
	checkPushFirstDelay = time.Second
	checkPushMaxDelay   = 30 * time.Second
)

// errPlainHTTP refuses the plain-HTTP fallback go-containerregistry tries on private addresses:
// with TLS_VERIFY true buildah only speaks https, and so does the check.
var errPlainHTTP = errors.New("plain HTTP refused: TLS_VERIFY is true")

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
	// pushOther: any other answer of the registry (a repository name it rejects, say). Not
	// retried.
	pushOther
	// pushUnknown: the check itself could not tell (a token realm go-containerregistry's policy
	// refuses and buildah follows, a proxy's or a TLS peer's refusal, TLS spoken to plain HTTP):
	// the check passes with a warning and buildah's push decides, so the check never fails a
	// build buildah would push.
	pushUnknown
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
		switch terr.StatusCode {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return pushServerError, terr
		}
		return pushOther, terr
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert of the peer (certificate required, protocol version): it answered.
		return pushUnknown, opErr
	case errors.As(err, &opErr):
		return pushUnreachable, opErr
	case errors.As(err, &dnsErr):
		return pushUnreachable, dnsErr
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded):
		return pushUnreachable, rootCause(err)
	}
	// Every failure of net/http's client is wrapped in a *url.Error, which is itself a net.Error:
	// what it wraps says whether the network failed (a timeout, say) or something else did (a
	// proxy's refusal, TLS spoken to a plain-HTTP server).
	var uerr *url.Error
	var netErr net.Error
	if errors.As(err, &uerr) && errors.As(uerr.Err, &netErr) {
		return pushUnreachable, uerr.Err
	}
	return pushUnknown, rootCause(err)
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
// cluster's CA. A refusal or an untrusted certificate fails at once; no answer or a failing
// registry is retried PUSH_RETRIES times; what no error type explains passes with a warning and
// buildah's push decides. A failure is one line in the log and in the FAILURE result.
func CheckPush(ctx context.Context, e Env) error {
	// The report names this step if the build task fails here.
	if err := e.writeResult(contract.ResultLastStep, contract.StepCheckPush); err != nil {
		return err
	}
	in, err := e.require(contract.ParamImage, contract.ParamPushRetries)
	if err != nil {
		return err
	}
	err = checkPush(ctx, e, in[contract.ParamImage], in[contract.ParamPushRetries])
	if err != nil && !errors.Is(err, errStage) {
		// Bad input (a Secret that is not a dockerconfigjson, a CA key missing): the status says
		// so too, not only the log.
		return e.failPush(err.Error())
	}
	return err
}

func checkPush(ctx context.Context, e Env, image, retriesValue string) error {
	ref, err := name.ParseReference(image, e.nameOptions()...)
	if err != nil {
		return fmt.Errorf("IMAGE %q: %w", image, err)
	}
	retries, err := strconv.Atoi(retriesValue)
	if err != nil || retries < 0 {
		return fmt.Errorf("PUSH_RETRIES %q: want a number of retries, 0 or more (spec.pipeline.retries.push)", retriesValue)
	}
	kc, err := e.keychain(contract.WorkspacePushSecret)
	if err != nil {
		return err
	}
	// The credentials of the repository itself, as buildah picks them: CheckPushPermission would
	// ask the keychain for the registry's.
	auth, err := kc.Resolve(ref.Context())
	if err != nil {
		return fmt.Errorf("credentials for %s: %w", ref.Context(), err)
	}
	rt, proxied, err := e.pushTransport(ref)
	if err != nil {
		return err
	}
	credentials := "no push secret (anonymous)"
	if e.Getenv(contract.WorkspaceBoundEnv(contract.WorkspacePushSecret)) == "true" {
		credentials = "the push secret's credentials"
	}
	repo, registry := ref.Context().Name(), ref.Context().RegistryStr()
	via := ""
	if proxied != "" {
		via = " through " + proxied
	}

	e.logf("check-push: may %s push to %s%s? (up to %d retries)", credentials, repo, via, retries)
	delay := checkPushFirstDelay
	for attempt := 0; ; attempt++ {
		err = remote.CheckPushPermission(ref, fixedKeychain{auth}, contextTransport{ctx: ctx, next: rt})
		if err == nil {
			e.logf("check-push: %s accepts %s for %s", registry, credentials, repo)
			return nil
		}
		v, cause := classifyPush(err)
		if v == pushUnknown && ctx.Err() == nil {
			e.logf("check-push: WARNING: could not tell whether %s takes the push (%s); the push step will try", registry+via, describe(cause))
			return nil
		}
		if !v.retried() || attempt == retries || ctx.Err() != nil {
			return e.failPush(pushMessage(v, cause, registry+via, repo, credentials, attempt))
		}
		e.logf("check-push: %s: %s; retrying in %s (%d/%d)", registry, describe(cause), delay, attempt+1, retries)
		select {
		case <-ctx.Done():
			return e.failPush(pushMessage(v, ctx.Err(), registry+via, repo, credentials, attempt))
		case <-time.After(delay):
		}
		delay = min(2*delay, checkPushMaxDelay)
	}
}

// fixedKeychain answers every lookup with the credentials resolved for the repository.
type fixedKeychain struct{ auth authn.Authenticator }

// Resolve implements authn.Keychain.
func (k fixedKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

// pushMessage is the one line that explains a failed push check, with what to do; cause is the
// error classifyPush chose.
func pushMessage(v pushVerdict, err error, registry, repo, credentials string, retries int) string {
	cause := describe(err)
	switch v {
	case pushRefused:
		return fmt.Sprintf("registry %s refused %s for %s (not retried): give the push secret write access to that repository", registry, credentials, repo)
	case pushUntrusted:
		return fmt.Sprintf("registry %s presented a certificate the build does not accept (%s; not retried): if a private CA signs it, add that CA to the trusted-ca ConfigMap; otherwise the registry's certificate must be renewed or name this host", registry, cause)
	case pushUnreachable:
		return fmt.Sprintf("registry %s unreachable after %d retries for %s (%s): check that it is up and reachable from the build pods, then retry the build", registry, retries, repo, cause)
	case pushServerError:
		return fmt.Sprintf("registry %s failing after %d retries for %s (%s): retry the build once the registry recovers", registry, retries, repo, cause)
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return fmt.Sprintf("registry %s will not take a push to %s (%s; not retried): check the push spec's repository", registry, repo, cause)
	}
	return fmt.Sprintf("the push check of %s on registry %s ended (%s)", repo, registry, cause)
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

// pushTransport is the transport the push check reaches ref's registry with: the proxy of the
// proxy Secret (or of the proxy parameters), the system's CAs and the trusted-ca ConfigMap's,
// https only unless TLS_VERIFY is false (then without verification). It also names the proxy
// the registry is reached through, if any (never its credentials). Env.Transport
// (tests) replaces the HTTP transport, not the https-only rule.
func (e Env) pushTransport(ref name.Reference) (http.RoundTripper, string, error) {
	proxy, err := e.proxyConfig()
	if err != nil {
		return nil, "", err
	}
	proxyFunc := proxy.ProxyFunc()
	proxied := ""
	scheme := "https"
	if !e.tlsVerify() {
		scheme = ref.Context().Scheme()
	}
	if u, err := proxyFunc(&url.URL{Scheme: scheme, Host: ref.Context().RegistryStr()}); err == nil && u != nil {
		// Named only when it comes from the parameters (the cluster's proxy, which carries no
		// credentials): a proxy Secret's URL may, and a malformed one parses its password as
		// the host.
		proxied = "the proxy Secret's proxy"
		if e.Getenv(contract.WorkspaceBoundEnv(contract.WorkspaceProxy)) != "true" {
			proxied = "the proxy " + u.Host
		}
	}
	rt := e.Transport
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = checkPushAnswerTimeout
		tr.Proxy = func(r *http.Request) (*url.URL, error) { return proxyFunc(r.URL) }
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
		if !e.tlsVerify() {
			tlsConfig.InsecureSkipVerify = true //nolint:gosec // TLS_VERIFY=false was asked for
		} else if e.Getenv(contract.WorkspaceBoundEnv(contract.WorkspaceTrustedCA)) == "true" {
			key := e.Getenv(contract.ParamTrustedCAKey)
			path := filepath.Join(e.Getenv(contract.WorkspacePathEnv(contract.WorkspaceTrustedCA)), key)
			pem, err := os.ReadFile(path)
			if err != nil {
				return nil, "", fmt.Errorf("the trusted CA ConfigMap has no key %s: %w", key, err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, "", fmt.Errorf("the trusted CA ConfigMap's key %s holds no PEM certificate", key)
			}
			tlsConfig.RootCAs = pool
		}
		tr.TLSClientConfig = tlsConfig
		rt = tr
	}
	if e.tlsVerify() {
		rt = httpsOnly{next: rt}
	}
	return rt, proxied, nil
}

// httpsOnly refuses plain-HTTP requests with errPlainHTTP.
type httpsOnly struct{ next http.RoundTripper }

// RoundTrip sends https requests and refuses the others.
func (t httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		return nil, errPlainHTTP
	}
	return t.next.RoundTrip(r)
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

// contextTransport ends every request when ctx ends, as well as when the request's own context
// does (go-containerregistry cancels the losing one of its https and http attempts):
// remote.CheckPushPermission takes no context.
type contextTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

// RoundTrip sends r under both contexts.
func (t contextTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(t.ctx, cancel)
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { stop(); cancel() }}
	return resp, nil
}

// releasingBody releases a request's context once its body is closed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

// Close closes the body and releases the context.
func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
