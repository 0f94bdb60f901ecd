// Package generator turns a PoolImage and the cluster facts it depends on into a Tekton
// PipelineRun that builds, pushes, verifies and promotes the pool's OS image.
//
// It is a pure library: no client calls, no globals, no clock. The same PoolImage and Inputs
// always give the same PipelineRun, byte for byte, so it can be embedded in other controllers,
// run in a CLI for GitOps review, and golden-tested.
//
// The pipeline has seven stages, each visible by name in the Tekton dashboard and in
// `tkn pipelinerun logs`:
//
//	fetch-base-digest   (task)  resolve and pin the base OS image for the pool's architecture
//	inject              (step)  write the Containerfile, stage entitlements, CA trust, credentials
//	check-push          (step)  ask the registry whether the push secret may push (typed errors)
//	build               (step)  buildah build; entitlements are mounted into RUN steps, never copied
//	push                (step)  buildah push to repository:<inputs hash>; results IMAGE_URL/IMAGE_DIGEST
//	verify              (task)  refuse an image that is not derived from the base or not bootable
//	promote             (task)  move the push spec's tag to the verified digest
//	report              (finally) one summary line, and where to read the logs
//
// inject, check-push, build and push are steps of the task "build" because they share buildah's
// image store, which lives in the pod (check-push, a Go stage, runs before the build so a push
// that cannot happen fails in seconds). The other stages are tasks of their own so Tekton can
// retry them; the build task is never retried, because a broken Containerfile stays broken
// (check-push and the push step retry transient registry errors themselves).
//
// Parameters reach scripts only as environment variables; the Containerfile travels base64
// encoded, so no Tekton variable substitution and no shell ever touches its text.
package generator
