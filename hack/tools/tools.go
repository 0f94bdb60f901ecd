//go:build tools

// Package tools pins build-time tools kept out of the main module's dependency graph.
package tools

import (
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
