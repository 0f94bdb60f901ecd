//go:build tools

// Package tools pins the tkn CLI for hack/build-stack-tools.sh.
package tools

import _ "github.com/tektoncd/cli/cmd/tkn"
