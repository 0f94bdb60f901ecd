// Package scripts checks the project's shell scripts the way a new machine runs them: every
// path a script resolves from the Go module cache goes through hack/moddir.sh, which downloads
// the module first and fails loudly instead of printing an empty path.
package scripts
