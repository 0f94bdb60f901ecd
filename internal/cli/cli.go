package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/controller/config"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/facts"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

const usage = `ocl: ocl-pipelines command line (no cluster or registry calls)

Usage:
  ocl render -f POOLIMAGE.yaml (--facts DIR | --base-image REPO@sha256:DIGEST) [flags]
      Print the Pipeline and the PipelineRun the controller would create for the PoolImage.
  ocl hash -f POOLIMAGE.yaml (--facts DIR | --base-image REPO@sha256:DIGEST) [flags]
      Print the inputs hash (the tag the image is pushed under).
  ocl containerfile -f POOLIMAGE.yaml (--facts DIR | --base-image REPO@sha256:DIGEST) [flags]
      Print the rendered Containerfile.
  ocl migrate -f MACHINEOSCONFIG.yaml [--namespace NS]
      Print the PoolImage equivalent to an MCO MachineOSConfig.

--facts takes the cluster objects the controller reads, as files or directories of YAML or JSON
(what oc get -o yaml prints), and gives exactly the controller's hash and run:
  oc get mcp,nodes -o yaml > facts/cluster.yaml
  oc get controllerconfig machine-config-controller -o yaml > facts/release.yaml
  oc get secrets,configmaps -n NAMESPACE -o yaml > facts/namespace.yaml
  oc get configmap/config-ocl-pipelines -n ocl-pipelines -o yaml > facts/config.yaml
Secrets' data is never read (only their names and types). Without --facts, the flags give the
facts one by one.

Run 'ocl render -h' for the flags.
`

// pathList is a repeatable flag of paths.
type pathList []string

// String implements flag.Value.
func (p *pathList) String() string { return strings.Join(*p, ",") }

// Set implements flag.Value: each use adds a path.
func (p *pathList) Set(v string) error {
	*p = append(*p, v)
	return nil
}

// Run executes the CLI with args (without the program name) and returns the process exit code.
func Run(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	switch cmd {
	case "render", "hash", "containerfile":
	case "migrate":
		return migrate(args[1:], stdin, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "ocl: unknown command %q\n\n%s", cmd, usage)
		return 2
	}

	fs := flag.NewFlagSet("ocl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "PoolImage YAML file, or - for standard input (required)")
	var factPaths pathList
	fs.Var(&factPaths, "facts", "file or directory of the cluster objects the controller reads (MachineConfigPools, ControllerConfig, Nodes, MachineConfigs, the namespace's Secrets and ConfigMaps, the controller's ConfigMap); repeatable")
	var in generator.Inputs
	fs.StringVar(&in.BaseImage, "base-image", "", "base OS image pinned by digest, repository@sha256:... (the ControllerConfig's baseOSContainerImage)")
	fs.StringVar(&in.ExtensionsImage, "extensions-image", "", "CoreOS extensions image pinned by digest (the ControllerConfig's baseOSExtensionsContainerImage)")
	arch := fs.String("arch", "amd64", "architecture of the pool's nodes: amd64, arm64, ppc64le or s390x")
	fs.BoolVar(&in.DefaultEntitlementSecret, "cluster-entitlement", false, "the etc-pki-entitlement Secret exists in the PoolImage's namespace")
	fs.StringVar(&in.DefaultPullSecret, "pull-secret", "", "Secret that pulls the base image when spec.baseImagePullSecret is unset")
	fs.StringVar(&in.Proxy.HTTPProxy, "http-proxy", "", "cluster HTTP proxy")
	fs.StringVar(&in.Proxy.HTTPSProxy, "https-proxy", "", "cluster HTTPS proxy")
	fs.StringVar(&in.Proxy.NoProxy, "no-proxy", "", "hosts that bypass the proxy")
	fs.StringVar(&in.YumReposSHA256, "yum-repos-sha256", "", "sha256 of the yum repos ConfigMap's data (facts.ConfigMapSHA256)")
	trustedCA := fs.String("trusted-ca-sha256", "", "sha256 of the trusted-ca ConfigMap's ca-bundle.crt, when it has one")
	trigger := fs.String("trigger", "", "why the build starts, recorded in an annotation: "+triggerList())
	configFile := fs.String("config", "", "YAML file of generator defaults (step images, storage driver, pod template, ...); with --facts, the controller's ConfigMap among the facts is used instead")
	output := fs.String("o", "yaml", "output format of render: yaml or json")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "ocl %s: "+format+"\n", append([]any{cmd}, a...)...)
		return code
	}
	if *file == "" {
		fs.Usage()
		return fail(2, "-f is required")
	}
	if *trigger != "" {
		if !slices.Contains(generator.Triggers(), generator.Trigger(*trigger)) {
			return fail(2, "--trigger %q: want one of %s", *trigger, triggerList())
		}
		in.Trigger = generator.Trigger(*trigger)
	}
	pi, err := readPoolImage(*file, stdin)
	if err != nil {
		return fail(1, "%v", err)
	}
	if len(factPaths) > 0 {
		var given []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "f", "facts", "trigger", "o":
			default:
				given = append(given, "--"+f.Name)
			}
		})
		if len(given) > 0 {
			return fail(2, "%s and --facts: the facts give these; leave them out", strings.Join(given, ", "))
		}
		if pi.Namespace == "" {
			return fail(2, "%s: metadata.namespace is empty: --facts reads the Secrets and ConfigMaps of the PoolImage's namespace", *file)
		}
		t := in.Trigger
		if in, err = fromFacts(pi, factPaths); err != nil {
			return fail(1, "%v", err)
		}
		in.Trigger = t
	} else {
		if in.BaseImage == "" {
			fs.Usage()
			return fail(2, "--facts or --base-image is required")
		}
		in.Arch = v1alpha1.Arch(*arch)
		if *trustedCA != "" {
			in.TrustedCA = &generator.TrustedCA{ConfigMapName: facts.TrustedCAConfigMapName, SHA256: *trustedCA}
		}
		if *configFile != "" {
			b, err := os.ReadFile(*configFile)
			if err != nil {
				return fail(1, "%v", err)
			}
			if err := yaml.UnmarshalStrict(b, &in.Config); err != nil {
				return fail(1, "--config %s: %v", *configFile, err)
			}
		}
	}

	var out []byte
	switch cmd {
	case "hash":
		var h string
		h, err = generator.InputsHash(pi, in)
		out = []byte(h + "\n")
	case "containerfile":
		var c string
		c, err = generator.RenderContainerfile(pi, in)
		out = []byte(c)
	case "render":
		out, err = renderRun(pi, in, *output)
	}
	if err != nil {
		return fail(1, "PoolImage %s/%s: %v", pi.Namespace, pi.Name, err)
	}
	if _, err := stdout.Write(out); err != nil {
		return fail(1, "%v", err)
	}
	return 0
}

func triggerList() string {
	var names []string
	for _, t := range generator.Triggers() {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}

// fromFacts computes the inputs as the controller does, from the objects of paths: the
// controller's ConfigMap among them gives its settings (its defaults when there is none).
func fromFacts(pi *v1alpha1.PoolImage, paths []string) (generator.Inputs, error) {
	objs, err := facts.Load(paths...)
	if err != nil {
		return generator.Inputs{}, fmt.Errorf("--facts: %w", err)
	}
	cfg := config.Defaults()
	switch cms := objs.ConfigMapsNamed(config.Name); len(cms) {
	case 0:
	case 1:
		if cfg, err = config.FromConfigMap(cms[0]); err != nil {
			return generator.Inputs{}, fmt.Errorf("--facts: ConfigMap %s/%s: %w", cms[0].Namespace, cms[0].Name, err)
		}
	default:
		return generator.Inputs{}, fmt.Errorf("--facts: ConfigMap %s in namespaces %s and %s: give the controller's only", config.Name, cms[0].Namespace, cms[1].Namespace)
	}
	found, err := facts.Inputs(pi, objs.Source(pi.Namespace), facts.Options{Config: cfg.Generator,
		DefaultPullSecret: cfg.DefaultPullSecret, DefaultPullSecretOrigin: "the default pull secret of " + config.Name})
	if err != nil {
		return generator.Inputs{}, fmt.Errorf("PoolImage %s/%s: %w", pi.Namespace, pi.Name, err)
	}
	return found.Inputs, nil
}

// migrate prints the PoolImage equivalent to a MachineOSConfig.
func migrate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ocl migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "MachineOSConfig YAML file, or - for standard input (required)")
	ns := fs.String("namespace", "", "namespace of the PoolImage: the one holding the push and pull secrets (the MCO keeps them in openshift-machine-config-operator)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *file == "" {
		fs.Usage()
		fmt.Fprintln(stderr, "ocl migrate: -f is required")
		return 2
	}
	b, err := readFile(*file, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "ocl migrate: %v\n", err)
		return 1
	}
	var mosc mcfgv1.MachineOSConfig
	if err := strictDecode(*file, b, &mosc); err != nil {
		fmt.Fprintf(stderr, "ocl migrate: %v\n", err)
		return 1
	}
	if mosc.Kind != "MachineOSConfig" || mosc.APIVersion != mcfgv1.GroupVersion.String() {
		fmt.Fprintf(stderr, "ocl migrate: %s: want apiVersion %s, kind MachineOSConfig; got apiVersion %q, kind %q\n",
			*file, mcfgv1.GroupVersion, mosc.APIVersion, mosc.Kind)
		return 1
	}
	pi, err := v1alpha1.FromMachineOSConfig(&mosc)
	if err != nil {
		fmt.Fprintf(stderr, "ocl migrate: %v\n", err)
		return 1
	}
	pi.Namespace = *ns
	out, err := yaml.Marshal(pi)
	if err != nil {
		fmt.Fprintf(stderr, "ocl migrate: %v\n", err)
		return 1
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "ocl migrate: %v\n", err)
		return 1
	}
	return 0
}

// renderRun prints the Pipeline the dashboard lists the run under (the run embeds its spec) and
// the run: two YAML documents, or a JSON v1 List of both, for `kubectl create -f`.
func renderRun(pi *v1alpha1.PoolImage, in generator.Inputs, format string) ([]byte, error) {
	pr, err := generator.Render(pi, in)
	if err != nil {
		return nil, err
	}
	pl, err := generator.RenderPipeline(pi, in)
	if err != nil {
		return nil, err
	}
	switch format {
	case "yaml":
		var out []byte
		for _, o := range []any{pl, pr} {
			b, err := yaml.Marshal(o)
			if err != nil {
				return nil, err
			}
			out = append(append(out, "---\n"...), b...)
		}
		return out, nil
	case "json":
		list := map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{pl, pr}}
		b, err := json.MarshalIndent(list, "", "  ")
		return append(b, '\n'), err
	default:
		return nil, fmt.Errorf("unknown output format %q: use yaml or json", format)
	}
}

// SplitRender splits what `ocl render -o yaml` prints into its Pipeline and its PipelineRun.
func SplitRender(out []byte) (*tektonv1.Pipeline, *tektonv1.PipelineRun, error) {
	docs := strings.Split(strings.TrimPrefix(string(out), "---\n"), "\n---\n")
	if len(docs) != 2 {
		return nil, nil, fmt.Errorf("ocl render printed %d documents, want a Pipeline and a PipelineRun", len(docs))
	}
	var pl tektonv1.Pipeline
	var pr tektonv1.PipelineRun
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &pl); err != nil {
		return nil, nil, fmt.Errorf("first document: %w", err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &pr); err != nil {
		return nil, nil, fmt.Errorf("second document: %w", err)
	}
	if pl.Kind != "Pipeline" || pr.Kind != "PipelineRun" {
		return nil, nil, fmt.Errorf("documents of kinds %q and %q, want a Pipeline and a PipelineRun", pl.Kind, pr.Kind)
	}
	return &pl, &pr, nil
}

// readFile reads path, or standard input for "-".
func readFile(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}

// strictDecode decodes YAML or JSON as the API server would: field names are case-sensitive,
// unknown fields are errors.
func strictDecode(path string, b []byte, into any) error {
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	strictErrs, err := kjson.UnmarshalStrict(j, into)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("%s: %w", path, errors.Join(strictErrs...))
	}
	return nil
}

// readPoolImage reads one PoolImage from a YAML or JSON file, refusing unknown fields.
func readPoolImage(path string, stdin io.Reader) (*v1alpha1.PoolImage, error) {
	b, err := readFile(path, stdin)
	if err != nil {
		return nil, err
	}
	var pi v1alpha1.PoolImage
	if err := strictDecode(path, b, &pi); err != nil {
		return nil, err
	}
	want := v1alpha1.SchemeGroupVersion.String()
	if pi.Kind != "PoolImage" || pi.APIVersion != want {
		return nil, fmt.Errorf("%s: want apiVersion %s, kind PoolImage; got apiVersion %q, kind %q",
			path, want, pi.APIVersion, pi.Kind)
	}
	if strings.TrimSpace(pi.Name) == "" {
		return nil, fmt.Errorf("%s: metadata.name is empty", path)
	}
	return &pi, nil
}
