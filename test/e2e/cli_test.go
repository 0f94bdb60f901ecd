//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/internal/builders"
	"github.com/ocl-pipelines/ocl-pipelines/internal/cli"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
)

// TestCLIHashIsTheControllers: on the cluster, `ocl hash --facts DIR` with what `kubectl get -o
// yaml` prints of the objects the controller reads gives the controller's
// status.latestBuild.inputsHash, for a PoolImage with the cluster's entitlement, yum
// repositories, a pull secret and a trust bundle.
func TestCLIHashIsTheControllers(t *testing.T) {
	ctx := context.Background()
	ns := "e2e-cli"
	newNamespace(t, ns) // the shipped quiet period: the run starts 15 s after the PoolImage
	createPushSecret(t, ns, []byte(`{"auths":{}}`))
	for _, o := range []any{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "etc-pki-entitlement"}, Data: map[string][]byte{"entitlement.pem": []byte("cli")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "repos"}, Data: map[string]string{"cli.repo": "[cli]\nbaseurl=http://127.0.0.1/none\n"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: facts.TrustedCAConfigMapName}, Data: map[string]string{"ca-bundle.crt": selfSignedPEM(t)}},
	} {
		var err error
		switch o := o.(type) {
		case *corev1.Secret:
			_, err = clients.kube.CoreV1().Secrets(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.ConfigMap:
			_, err = clients.kube.CoreV1().ConfigMaps(ns).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	pi := builders.PoolImage(ns, "worker", builders.WithPushSpec(os.Getenv("OCL_E2E_REGISTRY")+"/os/cli:latest"),
		builders.WithPushSecret("push"), builders.WithYumRepos("repos"), builders.WithContainerfile("FROM configs AS final\nLABEL e2e=cli\n"))
	if _, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Create(ctx, pi, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePoolImage(t, ns) })
	var hash string
	eventually(t, ns, "the controller started a build", 2*time.Minute, func(ctx context.Context) (bool, error) {
		got, err := clients.layering.LayeringV1alpha1().PoolImages(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil || got.Status.LatestBuild == nil {
			return false, err
		}
		hash = got.Status.LatestBuild.InputsHash
		return hash != "", nil
	})

	// The facts, as a user gathers them.
	dir := t.TempDir()
	for file, args := range map[string][]string{
		"cluster.yaml":   {"get", "machineconfigpools,nodes", "-o", "yaml"},
		"release.yaml":   {"get", "controllerconfig", "machine-config-controller", "-o", "yaml"},
		"namespace.yaml": {"-n", ns, "get", "secrets,configmaps", "-o", "yaml"},
		"config.yaml":    {"-n", "ocl-pipelines", "get", "configmap/config-ocl-pipelines", "-o", "yaml"},
	} {
		out, err := exec.Command("kubectl", args...).Output()
		if err != nil {
			var stderr []byte
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = ee.Stderr
			}
			t.Fatalf("kubectl %v: %v\n%s", args, err, stderr)
		}
		if err := os.WriteFile(filepath.Join(dir, file), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := yaml.Marshal(pi)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "poolimage.yaml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := cli.Run(ctx, []string{"hash", "-f", file, "--facts", dir}, nil, &out, &errOut); code != 0 {
		t.Fatalf("ocl hash: exit %d: %s", code, errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != hash {
		t.Errorf("ocl hash --facts = %s, the controller's status.latestBuild.inputsHash = %s", got, hash)
	}
	t.Logf("ocl hash --facts = controller's inputsHash = %s", hash)
}

// selfSignedPEM is a CA certificate, PEM encoded, as a trust bundle holds.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e cli"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
