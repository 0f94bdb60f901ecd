package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/apis/layering/v1alpha1"
	"github.com/ocl-pipelines/ocl-pipelines/pkg/generator"
)

const usage = `ocl: ocl-pipelines command line

Usage:
  ocl render -f POOLIMAGE.yaml --base-image REPO@sha256:DIGEST [flags]
      Print the PipelineRun the controller would create for the PoolImage.
  ocl hash -f POOLIMAGE.yaml --base-image REPO@sha256:DIGEST [flags]
      Print the inputs hash (the tag the image is pushed under).
  ocl containerfile -f POOLIMAGE.yaml --base-image REPO@sha256:DIGEST [flags]
      Print the rendered Containerfile.

Run 'ocl render -h' for the flags.
`

// run executes the CLI and returns the process exit code.
func run(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
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
	default:
		fmt.Fprintf(stderr, "ocl: unknown command %q\n\n%s", cmd, usage)
		return 2
	}

	fs := flag.NewFlagSet("ocl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "PoolImage YAML file, or - for standard input (required)")
	var in generator.Inputs
	fs.StringVar(&in.BaseImage, "base-image", "", "base OS image pinned by digest, repository@sha256:... (required; the ControllerConfig's baseOSContainerImage)")
	fs.StringVar(&in.ExtensionsImage, "extensions-image", "", "CoreOS extensions image pinned by digest (the ControllerConfig's baseOSExtensionsContainerImage)")
	arch := fs.String("arch", "amd64", "architecture of the pool's nodes: amd64, arm64, ppc64le or s390x")
	fs.BoolVar(&in.DefaultEntitlementSecret, "cluster-entitlement", false, "the etc-pki-entitlement Secret exists in the PoolImage's namespace")
	fs.StringVar(&in.DefaultPullSecret, "pull-secret", "", "Secret that pulls the base image when spec.baseImagePullSecret is unset")
	fs.StringVar(&in.Proxy.HTTPProxy, "http-proxy", "", "cluster HTTP proxy")
	fs.StringVar(&in.Proxy.HTTPSProxy, "https-proxy", "", "cluster HTTPS proxy")
	fs.StringVar(&in.Proxy.NoProxy, "no-proxy", "", "hosts that bypass the proxy")
	fs.StringVar(&in.Trigger, "trigger", "", "why the build starts (spec, upgrade, retry, schedule); recorded in an annotation")
	configFile := fs.String("config", "", "YAML file of generator defaults (step images, storage driver, pod template, ...)")
	output := fs.String("o", "yaml", "output format of render: yaml or json")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *file == "" || in.BaseImage == "" {
		fmt.Fprintf(stderr, "ocl %s: -f and --base-image are required\n", cmd)
		fs.Usage()
		return 2
	}
	in.Arch = v1alpha1.Arch(*arch)

	pi, err := readPoolImage(*file, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "ocl %s: %v\n", cmd, err)
		return 1
	}
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			fmt.Fprintf(stderr, "ocl %s: %v\n", cmd, err)
			return 1
		}
		if err := yaml.UnmarshalStrict(b, &in.Config); err != nil {
			fmt.Fprintf(stderr, "ocl %s: --config %s: %v\n", cmd, *configFile, err)
			return 1
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
		fmt.Fprintf(stderr, "ocl %s: PoolImage %s/%s: %v\n", cmd, pi.Namespace, pi.Name, err)
		return 1
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "ocl %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func renderRun(pi *v1alpha1.PoolImage, in generator.Inputs, format string) ([]byte, error) {
	pr, err := generator.Render(pi, in)
	if err != nil {
		return nil, err
	}
	switch format {
	case "yaml":
		return yaml.Marshal(pr)
	case "json":
		b, err := json.MarshalIndent(pr, "", "  ")
		return append(b, '\n'), err
	default:
		return nil, fmt.Errorf("unknown output format %q: use yaml or json", format)
	}
}

// readPoolImage reads one PoolImage from a YAML or JSON file, refusing unknown fields.
func readPoolImage(path string, stdin io.Reader) (*v1alpha1.PoolImage, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	// Decode as the API server would: field names are case-sensitive, unknown fields are errors.
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var pi v1alpha1.PoolImage
	strictErrs, err := kjson.UnmarshalStrict(j, &pi)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("%s: %w", path, errors.Join(strictErrs...))
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
