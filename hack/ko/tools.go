//go:build tools

// Package tools pins ko, which builds the project's images (hack/images.sh).
package tools

import _ "github.com/google/ko"
