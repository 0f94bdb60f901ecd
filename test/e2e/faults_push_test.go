//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// startAuthRegistry runs a docker-registry that requires user e2e with password on addr, until
// the test ends.
func startAuthRegistry(t *testing.T, addr, password string) {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("e2e:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: %s/data}}
http: {addr: %s}
auth: {htpasswd: {realm: ocl-e2e, path: %s/htpasswd}}
`, dir, addr, dir)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
	})
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized, nil
	}); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
		t.Fatalf("the registry on %s never asked for credentials: %v\n%s", addr, err, b)
	}
}

// setRetry sets the retry annotation of PoolImage ns/worker to token.
func setRetry(t *testing.T, ns, token string) {
	t.Helper()
	update(t, ns, func(pi *v1alpha1.PoolImage) {
		if pi.Annotations == nil {
			pi.Annotations = map[string]string{}
		}
		pi.Annotations[layering.RetryAnnotation] = token
	})
}

// failedBuild waits for the build of retry token (or the first build, "") to fail and returns
// the PoolImage.
func failedBuild(t *testing.T, ns, token, what string) *v1alpha1.PoolImage {
	t.Helper()
	var pi *v1alpha1.PoolImage
	eventually(t, ns, what, 4*time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || got.Status.LatestBuild == nil || got.Status.LatestBuild.Retry != token {
			return false, err
		}
		if got.Status.CurrentImage != "" {
			return false, fmt.Errorf("an image was promoted: %s", got.Status.CurrentImage)
		}
		pi = got
		return got.Status.LatestBuild.Failure != nil, nil
	})
	return pi
}

// buildLog is the log of a step of the build task of the PoolImage's latest run.
func buildLog(t *testing.T, ns string, pi *v1alpha1.PoolImage, step string) string {
	t.Helper()
	b, err := clients.kube.CoreV1().Pods(ns).GetLogs(pi.Status.LatestBuild.PipelineRun+"-build-pod", &corev1.PodLogOptions{Container: "step-" + step}).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("%s step log: %v", step, err)
	}
	return string(b)
}

// checkNotBuilt fails the test if the build step of pi's latest run started building: a push
// that cannot happen fails before the build.
func checkNotBuilt(t *testing.T, ns string, pi *v1alpha1.PoolImage) {
	t.Helper()
	if log := buildLog(t, ns, pi, "build"); strings.Contains(log, "build: ") {
		t.Errorf("the build ran although the push could not happen:\n%s", log)
	}
}

// TestPushFaults: the registry is down, then refuses the credentials, then is given the right
// ones. The first two fail in the check-push step, before anything is built, classified from the
// registry's typed errors; each names the registry, the repository and the push secret in the
// status, is not retried by starting builds on the controller's own, promotes nothing and
// leaves the pool alone; a retry after each fix resumes; the last one promotes.
func TestPushFaults(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-push-faults"
	noQuietPeriod(t)
	newNamespace(t, ns)
	host, _, err := net.SplitHostPort(os.Getenv("OCL_E2E_REGISTRY"))
	if err != nil {
		t.Fatalf("OCL_E2E_REGISTRY: %v", err)
	}
	addr := net.JoinHostPort(host, "5001")
	const password = "e2e-right-password"
	auth := func(pw string) []byte {
		a := base64.StdEncoding.EncodeToString([]byte("e2e:" + pw))
		return []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, addr, a))
	}
	createPushSecret(t, ns, auth("e2e-wrong-password"))
	before := machineConfigImage(t)

	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile("FROM configs AS final\nLABEL e2e.fault=push\n"), builders.WithPushSpec(addr+"/os/faults:latest"), builders.WithPushSecret("push"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePoolImage(t, ns) })

	// 1. Nothing listens on the registry's address.
	got := failedBuild(t, ns, "", "a failed push to a registry that is down")
	f := got.Status.LatestBuild.Failure
	repo := regexp.QuoteMeta(addr + "/os/faults")
	secretRef := regexp.QuoteMeta("; push secret: Secret " + ns + "/push (spec.pushSecret)")
	want := "^" + regexp.QuoteMeta("registry "+addr+" unreachable after 3 retries for ") + repo + ` \(dial tcp [^)]*connection refused\)` +
		regexp.QuoteMeta(": check that it is up and reachable from the build pods, then retry the build") + secretRef + "$"
	if f.Task != "build" || f.Step != "check-push" || !regexp.MustCompile(want).MatchString(f.Message) {
		t.Errorf("registry down: failure %+v\nwant task build, step check-push, message matching %s", f, want)
	}
	if log := buildLog(t, ns, got, "check-push"); strings.Count(log, "retrying in") != 3 {
		t.Errorf("registry down: check-push did not retry 3 times:\n%s", log)
	}
	checkNotBuilt(t, ns, got)
	checkNotPromoted(t, ns, before)
	checkFailedReport(t, ns, got.Status.LatestBuild.PipelineRun, "report", "build", "check-push")
	if c := got.Status.GetCondition(v1alpha1.ConditionFirstBootPullable); c == nil || !c.IsFalse() || c.Reason != v1alpha1.ReasonNoCredentials ||
		!strings.Contains(c.Message, "has no credentials for "+addr) {
		t.Errorf("FirstBootPullable = %+v, want False, NoCredentials for %s (the global pull secret covers the stack's registry only)", c, addr)
	}

	// 2. The registry is up and refuses the credentials: not retried.
	startAuthRegistry(t, addr, password)
	setRetry(t, ns, "registry-up")
	got = failedBuild(t, ns, "registry-up", "a failed push with refused credentials")
	f = got.Status.LatestBuild.Failure
	want = "^" + regexp.QuoteMeta("registry "+addr+" refused the push secret's credentials for ") + repo +
		regexp.QuoteMeta(" (not retried): give the push secret write access to that repository") + secretRef + "$"
	if f.Task != "build" || f.Step != "check-push" || !regexp.MustCompile(want).MatchString(f.Message) {
		t.Errorf("wrong credentials: failure %+v\nwant task build, step check-push, message matching %s", f, want)
	}
	if log := buildLog(t, ns, got, "check-push"); strings.Contains(log, "retrying in") {
		t.Errorf("wrong credentials were retried:\n%s", log)
	}
	checkNotBuilt(t, ns, got)
	checkNotPromoted(t, ns, before)
	ev, err := clients.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=BuildFailed"})
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for _, e := range ev.Items {
		named = named || strings.Contains(e.Message, "registry "+addr+" refused the push secret's credentials")
	}
	if !named {
		t.Errorf("no BuildFailed event names the registry that refused the credentials: %+v", ev.Items)
	}

	// 3. The admin fixes the Secret and asks for a retry: the image is pushed and promoted.
	s, err := clients.kube.CoreV1().Secrets(ns).Get(ctx, "push", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data[corev1.DockerConfigJsonKey] = auth(password)
	if _, err := clients.kube.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	setRetry(t, ns, "credentials-fixed")
	// The retry's run first (until then the status holds the refused build's failure).
	eventually(t, ns, "the retry after the fix started", time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && got.Status.LatestBuild != nil && got.Status.LatestBuild.Retry == "credentials-fixed", err
	})
	image := promotedImage(t, ns, "the image promoted after the fix")
	if !strings.HasPrefix(image, addr+"/os/faults@sha256:") || machineConfigImage(t) != image {
		t.Errorf("promoted %q, MachineConfig %q: want the fixed push's digest on %s in both", image, machineConfigImage(t), addr)
	}
}

// checkNotPromoted: the PoolImage has no current image and the pool's MachineConfig is as before.
func checkNotPromoted(t *testing.T, ns, before string) {
	t.Helper()
	if got := machineConfigImage(t); got != before {
		t.Errorf("the pool's MachineConfig changed after a failed push: %q → %q", before, got)
	}
	if c := poolImage(t, ns).Status.GetCondition(v1alpha1.ConditionPromoted); c != nil && c.IsTrue() {
		t.Errorf("Promoted=True after a failed push: %+v", c)
	}
}

// deletePoolImage deletes PoolImage ns/worker and its runs and waits until its finalizer has
// reverted the pool.
func deletePoolImage(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := clients.layering.LayeringV1alpha1().PoolImages(ns).Delete(ctx, "worker", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
	if err := clients.tekton.TektonV1().PipelineRuns(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Error(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Errorf("PoolImage %s/worker not deleted: %v", ns, err)
	}
}
