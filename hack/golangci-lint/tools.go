//go:build tools

// Package tools pins golangci-lint, which `make lint` runs, in a module of its own so that its
// dependencies stay out of the project's module graph (as hack/ko does for ko).
package tools

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
)
