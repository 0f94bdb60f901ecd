// Package steps implements the pipeline stages that run as Go code in the tools image
// (cmd/ocl-step): fetch-base-digest, verify, promote and report.
//
// Each stage reads its inputs from environment variables (set by Tekton from the task's
// parameters, never substituted into a script), talks to registries through
// go-containerregistry with credentials from the mounted dockerconfigjson Secrets, writes its
// Tekton results to the files the RESULT_* variables name, and logs what it does without ever
// printing a credential.
package steps
