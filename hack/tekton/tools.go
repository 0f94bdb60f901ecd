//go:build tools

// Package tekton pins the Tekton commands the local test stack runs.
package tekton

import (
	_ "github.com/tektoncd/pipeline/cmd/controller"
	_ "github.com/tektoncd/pipeline/cmd/entrypoint"
)
