// Package godoc checks that the library and the controller document what they export: every
// package has a package comment and every exported identifier of pkg/ and controller/ (generated
// code aside) has a doc comment, which `go doc` shows to Go importers.
package godoc
