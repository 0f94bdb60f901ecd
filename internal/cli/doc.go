// Package cli is the ocl command (cmd/ocl): render, hash and containerfile compute what the
// controller would for a PoolImage, from the same cluster facts (pkg/facts), and migrate turns
// an MCO MachineOSConfig into a PoolImage.
package cli
