// Package poolimage is the Knative-style reconciler of PoolImages: it resolves a pool's inputs
// from listers (MachineConfigPool, ControllerConfig, Secrets, ConfigMaps, Nodes), computes the
// inputs hash, starts at most one generated Tekton PipelineRun per change of inputs (after a
// quiet period, never twice for the same inputs), follows it, and promotes a verified image to
// the pool through a MachineConfig osImageURL. It reports every step in the PoolImage's status
// and events, and reverts the pool when asked or when the PoolImage is deleted.
package poolimage
