// Package v1alpha1 is the v1alpha1 version of the layering.ocl-pipelines.dev API: PoolImage, the
// declared OS image of one MachineConfigPool, with its defaulting, validation, status helpers and
// a migration path from the MCO's MachineOSConfig.
//
// +k8s:deepcopy-gen=package
// +groupName=layering.ocl-pipelines.dev
package v1alpha1
