// Package facts owns the decisions between the cluster and the generator: which cluster facts
// a PoolImage's build depends on and how they become generator.Inputs (Inputs), and the
// MachineConfig that promotes a verified image to the pool (DesiredMachineConfig).
//
// It is pure: the facts arrive through a Source. The controller answers from its informers'
// listers; the CLI (`ocl hash --facts DIR`) and other programs answer from objects read from
// files (Load, Objects), so they compute exactly the controller's inputs hash and PipelineRun:
//
//	objs, err := facts.Load("facts/")            // oc get mcp,nodes -o yaml, ...
//	found, err := facts.Inputs(pi, objs.Source(pi.Namespace), facts.Options{Config: cfg})
//	hash, err := generator.InputsHash(pi, found.Inputs)
//
// An *Error is a problem only a change of the cluster or the spec fixes; its message names the
// object or field and the fix.
package facts
