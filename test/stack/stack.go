package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Fixed addresses of the local stack: one stack per machine at a time.
const (
	HostIP       = "10.200.0.1"
	NodeIP       = "10.200.0.2"
	RegistryAddr = HostIP + ":5000"
	netns        = "ocl-node"
	etcdPort     = 2379
	apiPort      = 6443
	adminToken   = "ocl-stack-admin-token"
	// Version is the version the stack's release carries (hack/release.sh).
	Version = "v0.0.0-stack"
	// SystemNamespace is the controller's namespace.
	SystemNamespace = "ocl-pipelines"
)

// ErrNotLocal is returned by what only the local stack has (its state directory: the audit log,
// the processes' logs, the node's files) when the stack is a cluster given by a kubeconfig.
var ErrNotLocal = errors.New("not available on a cluster the stack did not start")

// Options say where the stack lives and how it runs the controller.
type Options struct {
	// Root is the repository's root; empty finds it from the working directory (go.mod).
	Root string
	// Dir holds all of the stack's state; empty means $TMPDIR/ocl-stack ($OCL_STACK_DIR).
	Dir string
	// Process runs the controller as a host process (under its ServiceAccount's token, the
	// Deployment scaled to 0) instead of the release's Deployment, for debugging
	// (OCL_CONTROLLER=process).
	Process bool
	// Log receives progress lines; nil means standard error.
	Log io.Writer
}

// OptionsFromEnv are the options the environment gives: OCL_STACK_DIR and OCL_CONTROLLER.
func OptionsFromEnv() Options {
	return Options{Dir: os.Getenv("OCL_STACK_DIR"), Process: os.Getenv("OCL_CONTROLLER") == "process"}
}

// Stack is a cluster the tests and benchmarks talk to: the local stack of real components this
// package starts, or a cluster given by a kubeconfig (Attach).
type Stack struct {
	// Dir is the local stack's state directory; empty for an attached cluster.
	Dir string
	// Kubeconfig is the admin kubeconfig's path.
	Kubeconfig string
	// Registry is a registry the tests push to and the cluster's nodes pull from
	// (host:port, plain HTTP on the local stack); empty when the attached cluster has none
	// (OCL_E2E_REGISTRY gives it).
	Registry string
	// Process says the controller runs as a host process.
	Process bool

	root   string
	kube   string // directory of the Kubernetes binaries
	tools  map[string]string
	log    io.Writer
	client kubernetes.Interface
}

// New returns the local stack of opts, started or not (Up, API, Down).
func New(opts Options) (*Stack, error) {
	root := opts.Root
	if root == "" {
		var err error
		if root, err = findRoot(); err != nil {
			return nil, err
		}
	}
	dir := opts.Dir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ocl-stack")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = os.Stderr
	}
	return &Stack{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), Registry: RegistryAddr, Process: opts.Process,
		root: root, log: log, tools: map[string]string{}}, nil
}

// Attach returns the cluster of kubeconfig as a Stack: what the local stack's state directory
// gives (audit log, process logs, node files) is ErrNotLocal. registry is the registry the tests
// push to and the cluster pulls from, if any.
func Attach(kubeconfig, registry string) (*Stack, error) {
	if _, err := os.Stat(kubeconfig); err != nil {
		return nil, fmt.Errorf("KUBECONFIG: %w", err)
	}
	return &Stack{Kubeconfig: kubeconfig, Registry: registry, log: os.Stderr}, nil
}

// Local reports whether the package started the stack (its state directory exists).
func (s *Stack) Local() bool { return s.Dir != "" }

// RESTConfig is the admin client configuration.
func (s *Stack) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
}

// Path is the state directory's file name, or ErrNotLocal.
func (s *Stack) Path(name string) (string, error) {
	if !s.Local() {
		return "", fmt.Errorf("%s: %w", name, ErrNotLocal)
	}
	return filepath.Join(s.Dir, name), nil
}

// ProcessLog is the log of one of the local stack's processes (etcd, kube-apiserver, kubelet,
// containerd, tekton-controller, ocl-controller, ...).
func (s *Stack) ProcessLog(name string) ([]byte, error) {
	p, err := s.Path(name + ".log")
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// NodeRoot is the directory under which the local node's containerd keeps its state (the
// containers' filesystems).
func (s *Stack) NodeRoot() (string, error) {
	return s.Path(filepath.Join("node", "containerd", "root"))
}

// ImagesStorageConf is the containers-storage configuration the local stack built its images
// with (CONTAINERS_STORAGE_CONF for buildah in tests).
func (s *Stack) ImagesStorageConf() (string, error) {
	return s.Path(filepath.Join("images", "storage.conf"))
}

// Env is the environment to talk to the stack: KUBECONFIG, OCL_REGISTRY, and PATH with the
// stack's kubectl and tkn first.
func (s *Stack) Env() ([]string, error) {
	env := []string{"KUBECONFIG=" + s.Kubeconfig, "OCL_REGISTRY=" + s.Registry}
	if s.Local() {
		if err := s.binaries(false); err != nil {
			return nil, err
		}
		env = append(env, "PATH="+s.kube+":"+filepath.Dir(s.tools["tkn"])+":"+os.Getenv("PATH"))
	}
	return env, nil
}

// Kube returns an admin clientset (made once).
func (s *Stack) Kube() (kubernetes.Interface, error) {
	if s.client != nil {
		return s.client, nil
	}
	cfg, err := s.RESTConfig()
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	s.client = c
	return c, nil
}

// logf prints a progress line.
func (s *Stack) logf(format string, args ...any) {
	fmt.Fprintf(s.log, "%s stack: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// findRoot walks up from the working directory to the directory of the project's go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(b), "module github.com/ocl-pipelines/ocl-pipelines\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the ocl-pipelines repository: set Options.Root")
		}
		dir = parent
	}
}

// binaries finds (and the first time builds, with the project's scripts) the Kubernetes
// binaries and the stack's tools; install also installs the Debian packages.
func (s *Stack) binaries(install bool) error {
	if s.kube != "" {
		return nil
	}
	if install {
		if err := s.script(nil, "hack/install-packages.sh"); err != nil {
			return err
		}
	}
	out, err := s.output("hack/build-kube.sh")
	if err != nil {
		return err
	}
	s.kube = strings.TrimSpace(out)
	out, err = s.output("hack/build-stack-tools.sh")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			s.tools[k] = v
		}
	}
	for _, t := range []string{"etcd", "controller", "entrypoint", "tkn"} {
		if s.tools[t] == "" {
			return fmt.Errorf("hack/build-stack-tools.sh printed no %s", t)
		}
	}
	return nil
}

// script runs one of the project's scripts, its output to stdout (or the stack's log).
func (s *Stack) script(stdout io.Writer, path string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.root, path), args...)
	cmd.Dir = s.root
	if stdout == nil {
		stdout = s.log
	}
	cmd.Stdout, cmd.Stderr = stdout, s.log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// output runs one of the project's scripts and returns its standard output.
func (s *Stack) output(path string, args ...string) (string, error) {
	var b strings.Builder
	err := s.script(&b, path, args...)
	return b.String(), err
}

// kubectl runs the stack's kubectl as the admin and returns its output.
func (s *Stack) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.kube, "kubectl"), append([]string{"--kubeconfig", s.Kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output() // the output is data (YAML, a token): warnings stay out of it
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out), nil
}
