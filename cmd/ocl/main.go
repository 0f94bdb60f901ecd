// Command ocl is the ocl-pipelines CLI: `ocl render` prints the Pipeline and PipelineRun the controller would
// create for a PoolImage, `ocl hash` its inputs hash, `ocl containerfile` the Containerfile
// buildah builds, all from the same cluster facts as the controller (--facts DIR), for GitOps
// review and debugging; `ocl migrate` turns an MCO MachineOSConfig into a PoolImage. It makes
// no cluster or registry calls. See internal/cli.
package main

import (
	"context"
	"os"

	"github.com/ocl-pipelines/ocl-pipelines/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
