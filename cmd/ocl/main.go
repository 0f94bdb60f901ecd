// Command ocl is the ocl-pipelines CLI. `ocl render` prints the PipelineRun the controller would
// create for a PoolImage, for GitOps review and debugging; it makes no cluster or registry calls.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
