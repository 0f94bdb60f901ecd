// Command ocl-step runs the Go stages of the ocl-pipelines pipeline inside the tools image:
//
//	ocl-step fetch-base-digest | check-push | verify | promote | report
//
// Inputs come from environment variables set by the generated Tekton tasks; results are written
// to the files named by RESULT_* variables. It exits non-zero when the stage fails.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ocl-pipelines/ocl-pipelines/pkg/steps"

	// The Mozilla roots, used when the image has none (the static base has no CA bundle): the
	// version is pinned in go.sum, so the images stay reproducible.
	_ "golang.org/x/crypto/x509roots/fallback"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ocl-step fetch-base-digest|check-push|verify|promote|report")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := steps.Run(ctx, os.Args[1], steps.OSEnv()); err != nil {
		if !steps.IsReported(err) {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
}
