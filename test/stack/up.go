package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// images are the stack's images, by name (images.env: pause, shell, entrypoint, buildah,
// tools), and the stand-in release's base and extensions images.
type images struct {
	byName    map[string]string
	base, ext string
}

// Up starts everything of the full stack not running yet (idempotent): the registry, etcd,
// kube-apiserver (RBAC, ServiceAccount tokens, an audit log), kube-controller-manager,
// kube-scheduler, one node (containerd, runc, kubelet and kube-proxy in the network namespace
// ocl-node), the Tekton controller, the MCO's CRDs with a worker pool and the ControllerConfig of
// a stand-in release, and the project's release as a user installs it (images built by ko,
// dist/release.yaml applied through a kustomize overlay, the controller's Deployment).
func (s *Stack) Up(ctx context.Context) error {
	t0 := time.Now()
	if err := s.prepare(); err != nil {
		return err
	}
	if err := s.network(ctx); err != nil {
		return err
	}
	reg := fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\n"+
		"storage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: %s}\n", filepath.Join(s.Dir, "registry-data"), RegistryAddr)
	if err := os.WriteFile(filepath.Join(s.Dir, "registry.yml"), []byte(reg), 0o644); err != nil {
		return err
	}
	if err := s.start("registry", nil, "docker-registry", "serve", filepath.Join(s.Dir, "registry.yml")); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "registry", 30*time.Second, httpOK("http://"+RegistryAddr+"/v2/")); err != nil {
		return err
	}
	img, err := s.images()
	if err != nil {
		return err
	}
	if err := s.controlPlane(ctx, HostIP, "lease"); err != nil {
		return err
	}
	kubeconfig := "--kubeconfig=" + s.Kubeconfig
	if err := s.start("kube-controller-manager", nil, filepath.Join(s.kube, "kube-controller-manager"), kubeconfig,
		"--authentication-kubeconfig="+s.Kubeconfig, "--authorization-kubeconfig="+s.Kubeconfig,
		"--service-account-private-key-file="+filepath.Join(s.Dir, "pki", "sa.key"),
		"--root-ca-file="+filepath.Join(s.Dir, "pki", "apiserver.crt"),
		"--use-service-account-credentials=true", "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10257"); err != nil {
		return err
	}
	if err := s.start("kube-scheduler", nil, filepath.Join(s.kube, "kube-scheduler"), kubeconfig,
		"--authentication-kubeconfig="+s.Kubeconfig, "--authorization-kubeconfig="+s.Kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=10259"); err != nil {
		return err
	}
	kube, err := s.Kube()
	if err != nil {
		return err
	}
	if err := s.waitFor(ctx, "kube-controller-manager", time.Minute, func(ctx context.Context) bool {
		_, err := kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		return err
	}
	if err := s.node(ctx, img); err != nil {
		return err
	}
	if err := s.crds(ctx); err != nil {
		return err
	}
	if err := s.tekton(ctx, img); err != nil {
		return err
	}
	if err := s.seed(ctx, img); err != nil {
		return err
	}
	if err := s.install(ctx, img); err != nil {
		return err
	}
	if err := s.controller(ctx); err != nil {
		return err
	}
	s.logf("up in %ds; KUBECONFIG=%s", int(time.Since(t0).Seconds()), s.Kubeconfig)
	return nil
}

// API starts only etcd, the API server (on 127.0.0.1), the CRDs and config/ with the
// Deployment scaled to 0, in the manner of controller-runtime's envtest: what test/bench/scale
// runs a controller process against, completing runs itself.
func (s *Stack) API(ctx context.Context) error {
	t0 := time.Now()
	s.Process = true
	if err := s.prepare(); err != nil {
		return err
	}
	if err := s.controlPlane(ctx, "127.0.0.1", "none"); err != nil {
		return err
	}
	if err := s.crds(ctx); err != nil {
		return err
	}
	img := &images{byName: map[string]string{"buildah": "quay.io/buildah/stable:v1.41.4", "tools": "ghcr.io/ocl-pipelines/ocl-step:v0.1.0"}}
	if err := s.install(ctx, img); err != nil {
		return err
	}
	s.logf("api up in %ds; KUBECONFIG=%s", int(time.Since(t0).Seconds()), s.Kubeconfig)
	return nil
}

// prepare makes the state directory, installs the Debian packages and builds the binaries.
func (s *Stack) prepare() error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	return s.binaries(true)
}

// network makes the node's network namespace, the veth pair and the routes to the pods and
// Services (idempotent).
func (s *Stack) network(ctx context.Context) error {
	if err := exec.CommandContext(ctx, "ip", "netns", "exec", netns, "true").Run(); err != nil {
		if err := run(ctx, "ip", "netns", "add", netns); err != nil {
			return err
		}
	}
	if exec.CommandContext(ctx, "ip", "link", "show", "ocl-h").Run() != nil {
		for _, argv := range [][]string{
			{"ip", "link", "add", "ocl-h", "type", "veth", "peer", "name", "ocl-n"},
			{"ip", "link", "set", "ocl-n", "netns", netns},
			{"ip", "addr", "add", HostIP + "/24", "dev", "ocl-h"},
			{"ip", "link", "set", "ocl-h", "up"},
			{"ip", "netns", "exec", netns, "ip", "addr", "add", NodeIP + "/24", "dev", "ocl-n"},
			{"ip", "netns", "exec", netns, "ip", "link", "set", "ocl-n", "up"},
			{"ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"},
			{"ip", "netns", "exec", netns, "ip", "route", "add", "default", "via", HostIP},
		} {
			if err := run(ctx, argv...); err != nil {
				return err
			}
		}
	}
	for _, cidr := range []string{"10.244.0.0/24", "10.96.0.0/16"} {
		if err := run(ctx, "ip", "route", "replace", cidr, "via", NodeIP); err != nil {
			return err
		}
	}
	return nil
}

// images builds the node's and the pipeline's images and the stand-in release's images into
// the registry, once per state directory (test/images scripts).
func (s *Stack) images() (*images, error) {
	env, standin := filepath.Join(s.Dir, "images.env"), filepath.Join(s.Dir, "standin.txt")
	if !nonEmpty(env) || !nonEmpty(standin) {
		t := time.Now()
		if err := os.MkdirAll(filepath.Join(s.Dir, "images"), 0o755); err != nil {
			return nil, err
		}
		conf := filepath.Join(s.Dir, "images", "storage.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(s.Dir, "images", "graph"), filepath.Join(s.Dir, "images", "run"))), 0o644); err != nil {
			return nil, err
		}
		log, err := os.Create(filepath.Join(s.Dir, "images.log"))
		if err != nil {
			return nil, err
		}
		defer func() { _ = log.Close() }()
		build := func(out, script string, args ...string) error {
			cmd := exec.Command(filepath.Join(s.root, script), args...)
			cmd.Dir = s.root
			cmd.Env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+conf)
			var b strings.Builder
			cmd.Stdout, cmd.Stderr = &b, log
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s: %w (see %s)", script, err, log.Name())
			}
			return os.WriteFile(out, []byte(b.String()), 0o644)
		}
		if err := build(env+".tmp", "test/images/build-stack-images.sh", RegistryAddr); err != nil {
			return nil, err
		}
		if err := build(standin+".tmp", "test/images/build-standin-images.sh", RegistryAddr, "1"); err != nil {
			return nil, err
		}
		if err := os.Rename(env+".tmp", env); err != nil {
			return nil, err
		}
		if err := os.Rename(standin+".tmp", standin); err != nil {
			return nil, err
		}
		s.logf("images built and pushed in %ds", int(time.Since(t).Seconds()))
	}
	img := &images{byName: map[string]string{}}
	if err := eachLine(env, func(l string) {
		if k, v, ok := strings.Cut(l, "="); ok {
			img.byName[k] = v
		}
	}); err != nil {
		return nil, err
	}
	var refs []string
	if err := eachLine(standin, func(l string) {
		if l = strings.TrimSpace(l); l != "" {
			refs = append(refs, l)
		}
	}); err != nil {
		return nil, err
	}
	if len(refs) < 2 {
		return nil, fmt.Errorf("%s: want the base and extensions images, got %v", standin, refs)
	}
	img.base, img.ext = refs[0], refs[1]
	for _, n := range []string{"pause", "shell", "entrypoint", "buildah", "tools"} {
		if img.byName[n] == "" {
			return nil, fmt.Errorf("%s has no %s image", env, n)
		}
	}
	return img, nil
}

// controlPlane starts etcd and the API server on addr (RBAC, ServiceAccount tokens, an audit log
// of the controller's ServiceAccount) and writes the admin kubeconfig. endpoints is lease (the
// API server publishes itself as the kubernetes Service's endpoint, for pods) or none.
func (s *Stack) controlPlane(ctx context.Context, addr, endpoints string) error {
	etcd := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdPort+1)
	if err := s.start("etcd", nil, s.tools["etcd"], "--data-dir", filepath.Join(s.Dir, "etcd"), "--unsafe-no-fsync",
		"--listen-client-urls", etcd, "--advertise-client-urls", etcd, "--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer, "--initial-cluster", "default="+peer); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "etcd", 30*time.Second, httpOK(etcd+"/health")); err != nil {
		return err
	}
	pki := filepath.Join(s.Dir, "pki")
	if err := serviceAccountKeys(pki); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pki, "tokens.csv"), []byte(adminToken+",ocl-admin,ocl-admin,system:masters\n"), 0o600); err != nil {
		return err
	}
	if err := s.start("kube-apiserver", nil, filepath.Join(s.kube, "kube-apiserver"), "--bind-address="+addr,
		fmt.Sprintf("--secure-port=%d", apiPort), "--etcd-servers="+etcd, "--cert-dir="+pki,
		"--token-auth-file="+filepath.Join(pki, "tokens.csv"), "--authorization-mode=Node,RBAC",
		"--service-account-key-file="+filepath.Join(pki, "sa.pub"), "--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc", "--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true", "--endpoint-reconciler-type="+endpoints, "--kubelet-preferred-address-types=InternalIP",
		"--audit-policy-file="+filepath.Join(s.root, "hack/stack/audit-policy.yaml"),
		"--audit-log-path="+filepath.Join(s.Dir, "audit.log"), "--audit-log-format=json"); err != nil {
		return err
	}
	if err := writeKubeconfig(s.Kubeconfig, fmt.Sprintf("https://%s:%d", addr, apiPort), "ocl-admin", adminToken); err != nil {
		return err
	}
	kube, err := s.Kube()
	if err != nil {
		return err
	}
	return s.waitFor(ctx, "kube-apiserver", time.Minute, func(ctx context.Context) bool {
		_, err := kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil
	})
}

// serviceAccountKeys writes the key pair that signs ServiceAccount tokens, once.
func serviceAccountKeys(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if nonEmpty(filepath.Join(dir, "sa.key")) && nonEmpty(filepath.Join(dir, "sa.pub")) {
		return nil
	}
	var key *rsa.PrivateKey
	if b, err := os.ReadFile(filepath.Join(dir, "sa.key")); err == nil {
		// The key signed the tokens in use: keep it, write its public half.
		block, _ := pem.Decode(b)
		if block == nil {
			return fmt.Errorf("%s: no PEM key", filepath.Join(dir, "sa.key"))
		}
		if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, "sa.key"), err)
		}
	} else if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// writeKubeconfig writes a kubeconfig of server for a token's user.
func writeKubeconfig(path, server, user, token string) error {
	return os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: ocl, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: %s, user: {token: %s}}]
contexts: [{name: ocl, context: {cluster: ocl, user: %s}}]
current-context: ocl
`, server, user, token, user)), 0o600)
}

// node starts containerd, the kubelet and kube-proxy in the node's network namespace, with
// their state under <Dir>/node.
func (s *Stack) node(ctx context.Context, img *images) error {
	n := filepath.Join(s.Dir, "node")
	for _, d := range []string{"cni", "kubelet", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(n, d), 0o755); err != nil {
			return err
		}
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return err
	}
	files := map[string]string{
		"containerd.toml": fmt.Sprintf(`version = 2
root = "%[1]s/containerd/root"
state = "%[1]s/containerd/state"
[grpc]
  address = "%[1]s/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%[2]s"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "%[3]s"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[1]s/cni"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."%[4]s"]
    endpoint = ["http://%[4]s"]
`, n, img.byName["pause"], runc, RegistryAddr),
		"cni/10-ocl.conflist": fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "ocl", "plugins": [
  {"type": "bridge", "bridge": "ocl-cni0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "%s/cni-ipam"}},
  {"type": "loopback"}]}
`, n),
		"kubelet.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://%[2]s/containerd.sock
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
podLogsDir: %[2]s/pod-logs
resolvConf: ""
`, NodeIP, n),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	// nsenter --net joins the node's network namespace only (`ip netns exec` would also
	// remount /sys, hiding the cgroup mounts the kubelet and containerd need). It execs its
	// command, so the recorded pid is the daemon's.
	inNode := []string{"nsenter", "--net=/var/run/netns/" + netns}
	if err := s.start("containerd", nil, append(inNode, "containerd", "--config", filepath.Join(n, "containerd.toml"))...); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "containerd", 30*time.Second, func(context.Context) bool {
		fi, err := os.Stat(filepath.Join(n, "containerd.sock"))
		return err == nil && fi.Mode()&os.ModeSocket != 0
	}); err != nil {
		return err
	}
	if err := s.start("kubelet", nil, append(inNode, filepath.Join(s.kube, "kubelet"), "--config", filepath.Join(n, "kubelet.yaml"),
		"--kubeconfig", s.Kubeconfig, "--root-dir", filepath.Join(n, "kubelet"), "--hostname-override", "ocl-node", "--node-ip", NodeIP)...); err != nil {
		return err
	}
	kube, err := s.Kube()
	if err != nil {
		return err
	}
	if err := s.waitFor(ctx, "kubelet", time.Minute, func(ctx context.Context) bool {
		_, err := kube.CoreV1().Nodes().Get(ctx, "ocl-node", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		return err
	}
	if _, err := kube.CoreV1().Nodes().Patch(ctx, "ocl-node", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"node-role.kubernetes.io/worker":""}}}`), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("label the node: %w", err)
	}
	if err := s.waitFor(ctx, "kubelet", time.Minute, func(ctx context.Context) bool {
		node, err := kube.CoreV1().Nodes().Get(ctx, "ocl-node", metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	// kube-proxy: Services (the API server's, the controller's metrics) for pods and the host.
	// conntrack-max-per-core 0 leaves the host's conntrack table size alone.
	if err := s.start("kube-proxy", nil, append(inNode, filepath.Join(s.kube, "kube-proxy"), "--kubeconfig", s.Kubeconfig,
		"--hostname-override", "ocl-node", "--proxy-mode", "iptables", "--cluster-cidr", "10.244.0.0/16",
		"--conntrack-max-per-core", "0", "--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256")...); err != nil {
		return err
	}
	return s.waitFor(ctx, "kube-proxy", time.Minute, s.logContains("kube-proxy", "Caches are synced"))
}

// crds applies Tekton's CRDs, the MCO's pool, MachineConfig and ControllerConfig CRDs, the
// ClusterVersion CRD, ours, and a stand-in PrometheusRule CRD.
func (s *Stack) crds(ctx context.Context) error {
	tekton, err := s.output("hack/moddir.sh", "-C", filepath.Join(s.root, "hack/tekton"), "github.com/tektoncd/pipeline")
	if err != nil {
		return err
	}
	api, err := s.output("hack/moddir.sh", "github.com/openshift/api")
	if err != nil {
		return err
	}
	tekton, api = strings.TrimSpace(tekton), strings.TrimSpace(api)
	mco := filepath.Join(api, "machineconfiguration/v1/zz_generated.crd-manifests")
	for _, args := range [][]string{
		{"apply", "--server-side", "-f", filepath.Join(tekton, "config/300-crds/")},
		{"apply", "--server-side", "-f", filepath.Join(mco, "0000_80_machine-config_01_machineconfigpools-SelfManagedHA.crd.yaml"),
			"-f", filepath.Join(mco, "0000_80_machine-config_01_machineconfigs.crd.yaml"),
			"-f", filepath.Join(mco, "0000_80_machine-config_01_controllerconfigs-Default.crd.yaml"),
			"-f", filepath.Join(api, "config/v1/zz_generated.crd-manifests/0000_00_cluster-version-operator_01_clusterversions-Default.crd.yaml")},
		{"apply", "--server-side", "-f", filepath.Join(s.root, "config/300-poolimage.yaml"), "-f", filepath.Join(s.root, "hack/stack/prometheusrule-crd.yaml")},
		{"wait", "--for", "condition=established", "--timeout=60s", "crd", "--all"},
	} {
		if _, err := s.kubectl(ctx, "", args...); err != nil {
			return err
		}
	}
	s.logf("CRDs established")
	return nil
}

// tekton applies Tekton's namespace and ConfigMaps and starts its controller (no webhook: the
// API server cannot reach it here).
func (s *Stack) tekton(ctx context.Context, img *images) error {
	tekton, err := s.output("hack/moddir.sh", "-C", filepath.Join(s.root, "hack/tekton"), "github.com/tektoncd/pipeline")
	if err != nil {
		return err
	}
	tekton = strings.TrimSpace(tekton)
	if _, err := s.kubectl(ctx, "", "apply", "-f", filepath.Join(tekton, "config/100-namespace/")); err != nil {
		return err
	}
	cms, err := filepath.Glob(filepath.Join(tekton, "config/config-*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(cms)
	for _, cm := range cms {
		if _, err := s.kubectl(ctx, "", "apply", "-f", cm); err != nil {
			return err
		}
	}
	ep, sh := img.byName["entrypoint"], img.byName["shell"]
	if err := s.start("tekton-controller", []string{"SYSTEM_NAMESPACE=tekton-pipelines", "KUBERNETES_MIN_VERSION=v1.28.0",
		"CONFIG_DEFAULTS_NAME=config-defaults", "CONFIG_LOGGING_NAME=config-logging", "CONFIG_OBSERVABILITY_NAME=config-observability",
		"CONFIG_FEATURE_FLAGS_NAME=feature-flags", "CONFIG_LEADERELECTION_NAME=config-leader-election-controller",
		"CONFIG_SPIRE=config-spire", "METRICS_DOMAIN=tekton.dev/pipeline",
		"METRICS_PROMETHEUS_HOST=127.0.0.1", "METRICS_PROMETHEUS_PORT=9091", "PROFILING_PORT=18008"},
		s.tools["controller"], "--kubeconfig="+s.Kubeconfig, "--disable-ha",
		"-entrypoint-image="+ep, "-nop-image="+ep, "-sidecarlogresults-image="+ep, "-workingdirinit-image="+ep,
		"-shell-image="+sh, "-shell-image-win="+sh); err != nil {
		return err
	}
	return s.waitFor(ctx, "tekton-controller", time.Minute, s.logContains("tekton-controller", `"Starting controllers`))
}

// seed creates the worker pool and the ControllerConfig of the stand-in release.
func (s *Stack) seed(ctx context.Context, img *images) error {
	if _, err := s.kubectl(ctx, `apiVersion: machineconfiguration.openshift.io/v1
kind: MachineConfigPool
metadata: {name: worker}
spec:
  machineConfigSelector: {matchLabels: {machineconfiguration.openshift.io/role: worker}}
  nodeSelector: {matchLabels: {node-role.kubernetes.io/worker: ""}}
`, "apply", "-f", "-"); err != nil {
		return err
	}
	if _, err := s.kubectl(ctx, "", "get", "controllerconfig", "machine-config-controller"); err == nil {
		return nil
	}
	// Created, not applied: the CRD requires nullable fields that client-side apply would drop.
	_, err := s.kubectl(ctx, fmt.Sprintf(`{"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "ControllerConfig",
 "metadata": {"name": "machine-config-controller"},
 "spec": {"baseOSContainerImage": %[1]q, "baseOSExtensionsContainerImage": %[2]q, "osImageURL": %[1]q,
  "releaseImage": "%[3]s/standin/release:1", "additionalTrustBundle": null, "cloudProviderCAData": null,
  "cloudProviderConfig": "", "clusterDNSIP": "10.96.0.10", "images": {}, "ipFamilies": "IPv4",
  "dns": {"apiVersion": "config.openshift.io/v1", "kind": "DNS", "spec": {}},
  "infra": {"apiVersion": "config.openshift.io/v1", "kind": "Infrastructure", "spec": {}},
  "kubeAPIServerServingCAData": "c3RhbmQtaW4=", "rootCAData": "c3RhbmQtaW4=",
  "network": {"mtuMigration": null}, "proxy": null}}`, img.base, img.ext, RegistryAddr), "create", "-f", "-")
	return err
}

// install installs the project: the release as a user installs it (the Deployment), or, for a
// host process, config/ with the Deployment scaled to 0 and the controller's kubeconfig (its
// ServiceAccount's token).
func (s *Stack) install(ctx context.Context, img *images) error {
	// Once: a later Up (a controller restart) keeps the settings tests changed since.
	if _, err := s.kubectl(ctx, "", "-n", SystemNamespace, "get", "deployment", "ocl-pipelines-controller"); err != nil {
		// OpenShift's openshift-config namespace with a stand-in global pull secret: credentials
		// for the stack's registry only (config/ binds a Role there; FirstBootPullable reads it).
		ns, err := s.kubectl(ctx, "", "create", "namespace", "openshift-config", "--dry-run=client", "-o", "yaml")
		if err != nil {
			return err
		}
		if _, err := s.kubectl(ctx, ns, "apply", "-f", "-"); err != nil {
			return err
		}
		secret, err := s.kubectl(ctx, "", "-n", "openshift-config", "create", "secret", "docker-registry", "pull-secret",
			"--docker-server="+RegistryAddr, "--docker-username=node", "--docker-password=stand-in", "--dry-run=client", "-o", "yaml")
		if err != nil {
			return err
		}
		if _, err := s.kubectl(ctx, secret, "apply", "-f", "-"); err != nil {
			return err
		}
		if !s.Process {
			if err := s.release(ctx, img); err != nil {
				return err
			}
		} else {
			if _, err := s.kubectl(ctx, "", "apply", "--server-side", "-k", filepath.Join(s.root, "hack/stack")); err != nil {
				return err
			}
			patch := fmt.Sprintf(`{"data": {"buildah-image": %q, "tools-image": %q, "tls-verify": "false"}}`, img.byName["buildah"], img.byName["tools"])
			if _, err := s.kubectl(ctx, "", "-n", SystemNamespace, "patch", "configmap", "config-ocl-pipelines", "--type", "merge", "-p", patch); err != nil {
				return err
			}
		}
	}
	if !s.Process || nonEmpty(filepath.Join(s.Dir, "controller.kubeconfig")) {
		return nil
	}
	// The host process runs with the Deployment's ServiceAccount token: the RBAC of config/ is
	// what it gets, and the API server audits its requests.
	token, err := s.kubectl(ctx, "", "-n", SystemNamespace, "create", "token", "ocl-pipelines-controller", "--duration=48h")
	if err != nil {
		return err
	}
	server := fmt.Sprintf("https://%s:%d", HostIP, apiPort)
	if cfg, err := s.RESTConfig(); err == nil {
		server = cfg.Host
	}
	return writeKubeconfig(filepath.Join(s.Dir, "controller.kubeconfig"), server, "ocl-pipelines-controller", strings.TrimSpace(token))
}

// release builds the release (images by ko, pushed to the stack's registry, pinned by digest)
// and installs it through a kustomize overlay, as a user keeps their settings across upgrades.
func (s *Stack) release(ctx context.Context, img *images) error {
	t := time.Now()
	log, err := os.OpenFile(filepath.Join(s.Dir, "images.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	cmd := exec.CommandContext(ctx, filepath.Join(s.root, "hack/release.sh"), Version, RegistryAddr+"/ocl-pipelines", filepath.Join(s.Dir, "release.yaml"))
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), "OCL_PLATFORMS=linux/"+runtime.GOARCH)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the release (hack/release.sh): %w; see %s", err, log.Name())
	}
	s.logf("release %s built and pushed in %ds", Version, int(time.Since(t).Seconds()))
	if err := s.Overlay(filepath.Join(s.Dir, "install"), filepath.Join(s.Dir, "release.yaml")); err != nil {
		return err
	}
	_, err = s.kubectl(ctx, "", "apply", "--server-side", "-k", filepath.Join(s.Dir, "install"))
	return err
}

// Overlay writes into dir the stack's kustomize overlay of release: the stack's buildah image
// (quay.io cannot be reached) and its registry (plain HTTP). An upgrade applies the overlay of
// the next release the same way (test/e2e TestControllerUpgrade).
func (s *Stack) Overlay(dir, release string) error {
	if !nonEmpty(filepath.Join(s.Dir, "images.env")) {
		return fmt.Errorf("the stack's images are not built (%s): run Up first", filepath.Join(s.Dir, "images.env"))
	}
	img, err := s.images()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(release)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "release.yaml"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [release.yaml]
patches:
  - target: {kind: ConfigMap, name: config-ocl-pipelines}
    patch: |-
      - {op: replace, path: /data/buildah-image, value: %q}
      - {op: replace, path: /data/tls-verify, value: "false"}
`, img.byName["buildah"])), 0o644)
}

// controller waits for the Deployment's rollout and a leader, or builds and starts the host
// process.
func (s *Stack) controller(ctx context.Context) error {
	if !s.Process {
		err := s.waitFor(ctx, "controller", 5*time.Minute, func(ctx context.Context) bool {
			_, err := s.kubectl(ctx, "", "-n", SystemNamespace, "rollout", "status", "deployment/ocl-pipelines-controller", "--timeout=2s")
			return err == nil
		})
		if err == nil {
			err = s.waitFor(ctx, "controller", 2*time.Minute, func(ctx context.Context) bool {
				leader, err := s.Leader(ctx)
				return err == nil && leader != ""
			})
		}
		if err != nil {
			for _, args := range [][]string{{"get", "pods", "-o", "wide"}, {"get", "events", "--sort-by=.lastTimestamp"},
				{"logs", "-l", "app.kubernetes.io/name=ocl-pipelines-controller", "--tail=30", "--prefix"}} {
				out, _ := s.kubectl(ctx, "", append([]string{"-n", SystemNamespace}, args...)...)
				fmt.Fprint(s.log, out)
			}
			if b, rerr := os.ReadFile(filepath.Join(s.Dir, "images.log")); rerr == nil {
				lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
				if len(lines) > 30 {
					lines = lines[len(lines)-30:]
				}
				fmt.Fprintln(s.log, strings.Join(lines, "\n"))
			}
			return err
		}
		return nil
	}
	bin := filepath.Join(s.Dir, "ocl-controller")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/controller")
	build.Dir = s.root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/controller: %w\n%s", err, out)
	}
	if err := s.start("ocl-controller", []string{"METRICS_PROMETHEUS_HOST=127.0.0.1", "METRICS_PROMETHEUS_PORT=9092", "PROFILING_PORT=18009"},
		bin, "--kubeconfig="+filepath.Join(s.Dir, "controller.kubeconfig"), "--health-probes=false",
		"--kube-api-qps=50", "--kube-api-burst=100"); err != nil {
		return err
	}
	return s.waitFor(ctx, "ocl-controller", time.Minute, s.logContains("ocl-controller", "Starting controllers"))
}

// RestartController starts the controller again after its process was stopped (process mode;
// the Deployment's pods are restarted by deleting them).
func (s *Stack) RestartController(ctx context.Context) error {
	if !s.Local() || !s.Process {
		return fmt.Errorf("restart the host process: %w", ErrNotLocal)
	}
	if err := s.binaries(false); err != nil {
		return err
	}
	return s.controller(ctx)
}

// StopController stops the controller's host process (process mode).
func (s *Stack) StopController() error {
	if !s.Local() || !s.Process {
		return fmt.Errorf("stop the host process: %w", ErrNotLocal)
	}
	s.stop("ocl-controller")
	return nil
}

// Leader returns the controller pod that holds the PoolImage reconciler's lease (knative names
// it <component>.<reconciler queue>.<bucket>; config/ runs one bucket); "" while none does (no
// holder, or a lease not renewed within its duration: its holder is gone).
func (s *Stack) Leader(ctx context.Context) (string, error) {
	kube, err := s.Kube()
	if err != nil {
		return "", err
	}
	leases, err := kube.CoordinationV1().Leases(SystemNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, l := range leases.Items {
		if !strings.HasPrefix(l.Name, "ocl-pipelines-controller.") || l.Spec.HolderIdentity == nil {
			continue
		}
		if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil ||
			time.Since(l.Spec.RenewTime.Time) > time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second {
			return "", nil // expired: nobody leads
		}
		id, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
		return id, nil
	}
	return "", nil
}

// Down stops every process of the local stack and removes its state directory, the node's
// network namespace, the veth pair and the routes.
func (s *Stack) Down() error {
	if !s.Local() {
		return ErrNotLocal
	}
	n := filepath.Join(s.Dir, "node")
	sock := filepath.Join(n, "containerd.sock")
	// The pods' network namespaces: the peers of the node's CNI bridge name them (link-netns
	// cni-<uuid>); they outlive a containerd stopped with its pods.
	var podNetns []string
	if out, err := exec.Command("ip", "netns", "exec", netns, "ip", "-o", "link", "show", "master", "ocl-cni0").Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if strings.HasPrefix(f, "cni-") {
				podNetns = append(podNetns, f)
			}
		}
	}
	if s.Running("containerd") {
		// Stop every container the node runs before containerd itself.
		if out, err := exec.Command("ctr", "--address", sock, "-n", "k8s.io", "tasks", "ls", "-q").Output(); err == nil {
			for _, id := range strings.Fields(string(out)) {
				_ = exec.Command("ctr", "--address", sock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id).Run()
			}
		}
	}
	for _, name := range processes() {
		s.stop(name)
	}
	_ = exec.Command("pkill", "-9", "-f", "containerd-shim.*"+sock).Run()
	for _, name := range podNetns {
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
	// Unmount what the kubelet and containerd mounted under the state directory, deepest first.
	var mounts []string
	_ = eachLine("/proc/mounts", func(l string) {
		if f := strings.Fields(l); len(f) > 1 && (f[1] == s.Dir || strings.HasPrefix(f[1], s.Dir+"/")) {
			mounts = append(mounts, f[1])
		}
	})
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	for _, argv := range [][]string{{"ip", "route", "del", "10.244.0.0/24", "via", NodeIP}, {"ip", "route", "del", "10.96.0.0/16", "via", NodeIP},
		{"ip", "netns", "del", netns}, {"ip", "link", "del", "ocl-h"}} {
		_ = exec.Command(argv[0], argv[1:]...).Run() // absent when the stack never started
	}
	return os.RemoveAll(s.Dir)
}

// httpOK is a readiness check: GET url answers 2xx.
func httpOK(url string) func(context.Context) bool {
	return func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode/100 == 2
	}
}

func nonEmpty(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Size() > 0
}

// eachLine calls f with each line of path.
func eachLine(path string, f func(string)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = file.Close() }() // read only: nothing is lost
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		f(sc.Text())
	}
	return sc.Err()
}
