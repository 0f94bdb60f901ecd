package steps

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// checkPushEnv is the environment the generator gives check-push, for image on a registry.
func checkPushEnv(t *testing.T, image, retries string, extra map[string]string) *stepEnv {
	t.Helper()
	vars := map[string]string{"IMAGE": image, "PUSH_RETRIES": retries, "TLS_VERIFY": "false", "TRUSTED_CA_KEY": "ca-bundle.crt"}
	for k, v := range extra {
		vars[k] = v
	}
	return newStepEnv(t, vars)
}

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestCheckPush: each way a registry can answer the push check gives its own verdict, retried
// only when another attempt can succeed, and a message that says what to do. Every registry
// here is a real one (go-containerregistry's) or a real network failure.
func TestCheckPush(t *testing.T) {
	authed := newRegistry(t, "e2e", "right")
	down := closedAddr(t)
	var failing atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		failing.Add(1)
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(busy.Close)
	busyHost := strings.TrimPrefix(busy.URL, "http://")

	for _, tc := range []struct {
		name     string
		image    string
		retries  string
		secret   string // password in the push secret; "" binds none
		want     string // the FAILURE result, a regexp; "" for a pass
		attempts int    // "retrying in" lines in the log
		verify   bool   // TLS_VERIFY=true
		warn     bool   // passes with a warning: the check could not tell
	}{
		{name: "accepted", image: authed.host + "/os/worker:h", retries: "3", secret: "right"},
		{name: "refused credentials are not retried", image: authed.host + "/os/worker:h", retries: "3", secret: "wrong",
			want: "^" + regexp.QuoteMeta("registry "+authed.host+" refused the push secret's credentials for "+authed.host+"/os/worker (not retried): give the push secret write access to that repository") + "$"},
		{name: "no push secret", image: authed.host + "/os/worker:h", retries: "3",
			want: "^" + regexp.QuoteMeta("registry "+authed.host+" refused no push secret (anonymous) for "+authed.host+"/os/worker (not retried)")},
		{name: "nothing listens", image: down + "/os/worker:h", retries: "2", attempts: 2,
			want: "^" + regexp.QuoteMeta("registry "+down+" unreachable after 2 retries for "+down+"/os/worker (") + ".*connection refused.*" +
				regexp.QuoteMeta("): check that it is up and reachable from the build pods, then retry the build") + "$"},
		{name: "no such host", image: "registry.invalid:5000/os/worker:h", retries: "0",
			want: "^" + regexp.QuoteMeta("registry registry.invalid:5000 unreachable after 0 retries for registry.invalid:5000/os/worker (") + ".*registry.invalid"},
		{name: "5xx is retried", image: busyHost + "/os/worker:h", retries: "1", attempts: 1,
			want: "^" + regexp.QuoteMeta("registry "+busyHost+" failing after 1 retries for "+busyHost+"/os/worker (") + ".*503.*" +
				regexp.QuoteMeta("): retry the build once the registry recovers") + "$"},
		// Not spoken to over HTTP (buildah would not), and what the check cannot type it does not
		// decide: it passes with a warning, buildah's push decides.
		{name: "a plain-HTTP registry with TLS verified", image: authed.host + "/os/worker:h", retries: "3", secret: "right", verify: true, warn: true},
		{name: "a bad PUSH_RETRIES is said in the status too", image: authed.host + "/os/worker:h", retries: "many",
			want: "^" + regexp.QuoteMeta(`PUSH_RETRIES "many": want a number of retries, 0 or more (spec.pipeline.retries.push)`) + "$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]string{}
			if tc.secret != "" {
				extra["PUSH_SECRET_BOUND"], extra["PUSH_SECRET_PATH"] = "true", authed.dockerconfig(t, tc.secret)
			}
			if tc.verify {
				extra["TLS_VERIFY"] = "true"
			}
			s := checkPushEnv(t, tc.image, tc.retries, extra)
			err := Run(context.Background(), "check-push", s.env())
			log := s.out.String()
			if got := strings.Count(log, "retrying in"); got != tc.attempts {
				t.Errorf("%d retries in the log, want %d:\n%s", got, tc.attempts, log)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("check-push: %v\n%s", err, log)
				}
				if got := strings.Contains(log, "check-push: WARNING: could not tell whether"); got != tc.warn {
					t.Errorf("warning in the log: %v, want %v:\n%s", got, tc.warn, log)
				}
				if _, err := os.Stat(filepath.Join(s.results, "FAILURE")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a passed check wrote a FAILURE result (%v)", err)
				}
				return
			}
			if err == nil || !IsReported(err) {
				t.Fatalf("check-push = %v, want a reported failure\n%s", err, log)
			}
			got := s.result(t, "FAILURE")
			if !regexp.MustCompile(tc.want).MatchString(got) {
				t.Errorf("FAILURE = %q\nwant a match of %s", got, tc.want)
			}
			if lastLine(log) != "check-push: FAILED: "+got {
				t.Errorf("the log's last line is %q, want the verdict", lastLine(log))
			}
		})
	}
	if failing.Load() < 2 {
		t.Errorf("the failing registry saw %d requests, want a retry", failing.Load())
	}
}

// TestCheckPushTLS: a registry with a certificate of its own CA is refused as untrusted (not
// retried), and accepted once the trusted-ca ConfigMap holds the CA, with TLS verified.
func TestCheckPushTLS(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	image := host + "/os/worker:h"

	s := checkPushEnv(t, image, "3", map[string]string{"TLS_VERIFY": "true"})
	if err := Run(context.Background(), "check-push", s.env()); err == nil {
		t.Fatalf("a certificate of an unknown CA was accepted:\n%s", s.out.String())
	}
	want := "registry " + host + " presented a certificate the build does not accept ("
	if got := s.result(t, "FAILURE"); !strings.HasPrefix(got, want) || !strings.Contains(got, "add that CA to the trusted-ca ConfigMap") {
		t.Errorf("FAILURE = %q, want it to start %q and name the fix", got, want)
	}
	if strings.Contains(s.out.String(), "retrying in") {
		t.Errorf("an untrusted certificate was retried:\n%s", s.out.String())
	}

	ca := t.TempDir()
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(ca, "ca-bundle.crt"), block, 0o644); err != nil {
		t.Fatal(err)
	}
	s = checkPushEnv(t, image, "3", map[string]string{"TLS_VERIFY": "true", "TRUSTED_CA_BOUND": "true", "TRUSTED_CA_PATH": ca})
	if err := Run(context.Background(), "check-push", s.env()); err != nil {
		t.Fatalf("check-push with the registry's CA trusted: %v\n%s", err, s.out.String())
	}
}

// TestCheckPushProxy: the check reaches the registry through the proxy Secret's proxy, as the
// push does; a host only the proxy can resolve proves it.
func TestCheckPushProxy(t *testing.T) {
	reg := newRegistry(t, "", "")
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || r.URL.Host != "registry.only-via-proxy:5000" {
			http.Error(w, "this proxy forwards plain HTTP to one host", http.StatusForbidden)
			return
		}
		proxied.Add(1)
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Host = reg.host
			pr.Out.Host = reg.host
		}}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "HTTP_PROXY"), []byte(proxy.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	image := "registry.only-via-proxy:5000/os/worker:h"
	// The parameters name no proxy: the Secret replaces them.
	s := checkPushEnv(t, image, "0", map[string]string{"PROXY_BOUND": "true", "PROXY_PATH": dir})
	if err := Run(context.Background(), "check-push", s.env()); err != nil {
		t.Fatalf("check-push through the proxy: %v\n%s", err, s.out.String())
	}
	if proxied.Load() == 0 {
		t.Error("the proxy saw no request")
	}
	s = checkPushEnv(t, image, "0", nil)
	if err := Run(context.Background(), "check-push", s.env()); err == nil {
		t.Fatalf("without the proxy, a host only the proxy resolves was reached:\n%s", s.out.String())
	}
	if got, want := s.result(t, "FAILURE"), "registry "+image[:strings.Index(image, "/")]+" unreachable after 0 retries"; !strings.HasPrefix(got, want) {
		t.Errorf("without the proxy: FAILURE = %q, want it to start %q (the host resolves nowhere)", got, want)
	}
}

// TestClassifyPush: the verdict comes from the error's types, wrapped as go-containerregistry
// and net/http wrap them; an error whose text merely reads like a cause is not classified by it.
func TestClassifyPush(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want pushVerdict
	}{
		{&transport.Error{StatusCode: http.StatusUnauthorized}, pushRefused},
		{fmt.Errorf("POST: %w", &transport.Error{StatusCode: http.StatusForbidden}), pushRefused},
		{&transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode}}}, pushRefused},
		{&transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{{Code: transport.NameUnknownErrorCode}}}, pushOther},
		{&transport.Error{StatusCode: http.StatusBadGateway}, pushServerError},
		{&transport.Error{StatusCode: http.StatusTooManyRequests}, pushServerError},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, pushUnreachable},
		{fmt.Errorf("ping: %w", &net.DNSError{Err: "no such host", Name: "r", IsNotFound: true}), pushUnreachable},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), pushUnreachable},
		{context.DeadlineExceeded, pushUnreachable},
		{errors.New("unauthorized: connection refused EOF"), pushUnknown},
		// As net/http returns them: every client error is a *url.Error (itself a net.Error); what
		// it wraps decides.
		{&url.Error{Op: "Get", URL: "https://r/v2/", Err: errors.New("unauthorized: connection refused EOF")}, pushUnknown},
		{&url.Error{Op: "Get", URL: "https://r/v2/", Err: errors.New("Proxy Authentication Required")}, pushUnknown},
		{&url.Error{Op: "Get", URL: "https://r/v2/", Err: &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}}, pushUnknown},
		{&url.Error{Op: "Get", URL: "https://r/v2/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, pushUnreachable},
		{&url.Error{Op: "Get", URL: "https://r/v2/", Err: timeoutError{}}, pushUnreachable},
		{&transport.Error{StatusCode: http.StatusNotImplemented}, pushOther},
	} {
		if got, _ := classifyPush(tc.err); got != tc.want {
			t.Errorf("classifyPush(%#v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// timeoutError is a net.Error that timed out, as net/http's own timeouts are.
type timeoutError struct{}

func (timeoutError) Error() string   { return "timeout awaiting response headers" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// TestCheckPushUsesTheRepositorysCredentials: a push robot's key for the repository beside the
// registry's pull credentials (a merged global pull secret): the check pushes with the robot's,
// as buildah does, instead of refusing on the pull credentials.
func TestCheckPushUsesTheRepositorysCredentials(t *testing.T) {
	reg := newRegistry(t, "robot", "right")
	dir := t.TempDir()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q},%q:{"auth":%q}}}`, reg.host, b64("puller:pull-only"), reg.host+"/os/worker", b64("robot:right"))
	if err := os.WriteFile(filepath.Join(dir, ".dockerconfigjson"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := checkPushEnv(t, reg.host+"/os/worker:h", "0", map[string]string{"PUSH_SECRET_BOUND": "true", "PUSH_SECRET_PATH": dir})
	if err := Run(context.Background(), "check-push", s.env()); err != nil {
		t.Fatalf("check-push with the repository's own key: %v\n%s", err, s.out.String())
	}
	s = checkPushEnv(t, reg.host+"/os/other:h", "0", map[string]string{"PUSH_SECRET_BOUND": "true", "PUSH_SECRET_PATH": dir})
	if err := Run(context.Background(), "check-push", s.env()); err == nil {
		t.Fatalf("another repository was checked with the robot's key:\n%s", s.out.String())
	}
}
