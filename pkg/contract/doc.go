// Package contract is the one definition of what the generated pipeline and its stages agree
// on: the names of tasks, steps, parameters, workspaces and results, and, for each Go stage of
// the tools image (cmd/ocl-step), exactly which environment variables it reads and which
// results it writes.
//
// The generator (pkg/generator) builds the Tasks from it and the stages (pkg/steps) read their
// inputs through it, so a renamed variable is a compile error or a failing unit test in both,
// not a run that fails on a cluster. It has no dependencies beyond the standard library.
package contract
