package poolimage

// Replayable histories of the model (model_test.go): TestModel prints a shrunk failing history
// in this format, so that a failing seed becomes a table row of TestModelTraces by pasting it.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// modelTrace is a named history and the invariant it guards. Events start with an init event
// ({Kind: "init", N: 1}: the promoted-image cluster of modelPromotedPrelude; N: 0 or no init:
// the empty cluster).
type modelTrace struct {
	Name string
	// Defect groups the traces by the reconciler defect they replay: B1 to B12 were found by
	// reading the reconciler along its hard paths (each row's Name says what went wrong), C by
	// the model in itself.
	Defect    string
	Invariant string
	Events    []modelEvent
}

// literal prints the trace as a Go composite literal of a modelTraces row.
func (tr modelTrace) literal(indent string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s{Name: %q, Invariant: %q, Events: []modelEvent{\n", indent, tr.Name, tr.Invariant)
	for _, ev := range tr.Events {
		fmt.Fprintf(&b, "%s\t%s,\n", indent, ev.literal())
	}
	fmt.Fprintf(&b, "%s}},", indent)
	return b.String()
}

// literal prints an event as a Go composite literal, omitting zero fields.
func (ev modelEvent) literal() string {
	parts := []string{fmt.Sprintf("Kind: %q", ev.Kind)}
	if ev.N != 0 {
		parts = append(parts, fmt.Sprintf("N: %d", ev.N))
	}
	if ev.Flag {
		parts = append(parts, "Flag: true")
	}
	if ev.On != "" {
		parts = append(parts, fmt.Sprintf("On: %q", ev.On))
	}
	if ev.Dt != 0 {
		parts = append(parts, "Dt: "+durationLiteral(ev.Dt))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// durationLiteral prints d as Go source: 90 * time.Second, 2 * time.Hour, ...
func durationLiteral(d time.Duration) string {
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "time.Hour"}, {time.Minute, "time.Minute"}, {time.Second, "time.Second"}, {time.Millisecond, "time.Millisecond"}} {
		if d%u.unit == 0 {
			if d == u.unit {
				return u.name
			}
			return fmt.Sprintf("%d * %s", d/u.unit, u.name)
		}
	}
	return fmt.Sprintf("time.Duration(%d)", int64(d))
}

// modelTraces are the hand-written histories, one (at least) per invariant, each exercising
// what the invariant guards; shrunk histories TestModel printed join them once their defect
// is fixed.
var modelTraces = []modelTrace{
	// 1. one-active-build
	{Name: "a new build while the cache has not seen the previous one", Defect: "C", Invariant: invOneActiveBuild, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "edit", N: 1, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "reconcile", Dt: 15 * time.Second}, // run of content 1 created; its watch event lags
		{Kind: "edit", N: 2, Dt: time.Second},
		{Kind: "deliver", Dt: time.Second}, // PoolImage status
		{Kind: "deliver", Dt: time.Second}, // PoolImage spec (content 2)
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "deliver", Dt: time.Second},
		{Kind: "reconcile", Dt: 15 * time.Second}, // run of content 2: the first one is still running
	}},
	{Name: "a Containerfile edit during a prebuild starts a second prebuild", Defect: "B12", Invariant: invOneActiveBuild, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-offer", Dt: time.Second},
		{Kind: "deliver", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "release-read", Dt: time.Second},
		{Kind: "edit", N: 2, Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "two retry tokens in a row start two retry runs", Defect: "B2", Invariant: invOneActiveBuild, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "retry", Dt: time.Second},
		{Kind: "retry", Dt: time.Second},
		{Kind: "deliver", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second}, // the retry run of the first token
		{Kind: "deliver", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second}, // the second token's: the first is not in the cache
	}},
	// 2. no-rebuild-of-promoted
	{Name: "a retry token consumed by an edit that was undone", Defect: "B2", Invariant: invNoRebuild, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "edit", N: 2, Dt: time.Second},
		{Kind: "retry", Dt: time.Second},
		{Kind: "deliver", Dt: time.Second},
		{Kind: "edit", Dt: time.Second},
		{Kind: "deliver", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "an edit and its undo inside the quiet period build nothing", Defect: "C", Invariant: invNoRebuild, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "edit", N: 1, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "edit", Dt: 5 * time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "restart", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	// 3. hold-timeout-reported
	{Name: "a failed rebuild holds the pool past the hold timeout", Defect: "B5", Invariant: invHoldTimeout, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second}, // paused for the new base
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Flag: true, Dt: time.Minute}, // the rebuild fails
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 2*time.Hour + 5*time.Minute},
		{Kind: "restart", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "wait", Dt: time.Hour},
	}},
	{Name: "a per-pool hold timeout of 15 minutes", Defect: "B5", Invariant: invHoldTimeout, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "hold-timeout", N: 1, Dt: time.Second},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Minute},
	}},
	{Name: "a held pool whose inputs become unresolvable is never reported", Defect: "B5", Invariant: invHoldTimeout, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second}, // held
		{Kind: "node-arm64", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second}, // InputsUnresolved: two architectures
		{Kind: "settle", Dt: 2*time.Hour + 5*time.Minute},
	}},
	{Name: "a pool held for a render the MCO refuses is never reported", Defect: "B11", Invariant: invHoldTimeout, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "os-image-stream", Flag: true, Dt: time.Second},
		{Kind: "mco-render", Dt: 10 * time.Second}, // RenderDegraded: osImageURL and osImageStream
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second}, // held
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Dt: 5 * time.Minute},
		{Kind: "tekton", Dt: 2 * time.Minute},
		{Kind: "settle", Dt: time.Second}, // promoted: AwaitingRender
		{Kind: "mco-render", Dt: 10 * time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 2*time.Hour + 5*time.Minute},
	}},
	{Name: "a stale reconcile's status write loses the hold's start", Defect: "B5", Invariant: invHoldTimeout, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "hold-timeout", N: 1, Dt: time.Second}, // 15m
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "mco-operator", Dt: 121 * time.Second},
		{Kind: "deliver", N: 1, Dt: time.Second}, // the ControllerConfig
		{Kind: "reconcile", Dt: time.Second},     // held; status.hold.since
		{Kind: "reconcile", Dt: 7 * time.Minute}, // caches still stale: pauses again, conflict; its status has no hold
		{Kind: "settle", Dt: 18 * time.Second},   // the hold is taken to start now
		{Kind: "wait", Dt: 9 * time.Minute},      // 16m after the pause: neither released nor reported
	}},
	// 4. hold-released-with-owner
	{Name: "deleting the PoolImage releases its held pool", Defect: "B3", Invariant: invHoldReleased, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "delete-pi", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "reverting releases the held pool", Defect: "B5", Invariant: invHoldReleased, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "revert", Flag: true, Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "Follow releases the held pool", Defect: "B5", Invariant: invHoldReleased, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "strategy", Flag: true, Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "moving a held PoolImage to another pool releases the first", Defect: "B3", Invariant: invHoldReleased, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "infra", Dt: time.Second},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "rename", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "Follow releases a held pool whose inputs are unresolvable", Defect: "B5", Invariant: invHoldReleased, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second}, // held
		{Kind: "node-arm64", Dt: time.Minute},
		{Kind: "strategy", Flag: true, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "Follow releases a held pool on an OS image stream", Defect: "B11", Invariant: invHoldReleased, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "mco-operator", Dt: 9 * time.Minute},
		{Kind: "settle", Dt: time.Second}, // held
		{Kind: "os-image-stream", Flag: true, Dt: time.Second},
		{Kind: "strategy", Flag: true, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	// 5. admin-pause-respected
	{Name: "an admin's pause survives the upgrade's rebuild", Defect: "B6", Invariant: invAdminPause, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "pause", Dt: time.Second},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "mco-template", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Dt: 5 * time.Minute},
		{Kind: "tekton", Dt: 2 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-render", Dt: 10 * time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "an admin unpauses the held pool, then pauses it again", Defect: "B6", Invariant: invAdminPause, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "mco-template", Dt: time.Second},
		{Kind: "settle", Dt: time.Second}, // held
		{Kind: "unpause", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second}, // ReleasedByAdmin
		{Kind: "pause", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Dt: 5 * time.Minute},
		{Kind: "tekton", Dt: 2 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-render", Dt: 10 * time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "a pool an admin released is not paused again after a restart", Defect: "B6", Invariant: invAdminPause, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "unpause", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "restart", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Second},
	}},
	// 6. effective-image-verified
	{Name: "an edit-and-run without verify is not promoted", Defect: "B4", Invariant: invEffectiveImage, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "edit", N: 1, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 16 * time.Second},
		{Kind: "edit-run", N: 1, Dt: time.Second},
		{Kind: "tekton", N: 1, Dt: 3 * time.Second},
		{Kind: "tekton", N: 1, Dt: time.Minute},
		{Kind: "tekton", N: 1, Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "an edit-and-run pushing elsewhere is not promoted", Defect: "B4", Invariant: invEffectiveImage, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "edit", N: 1, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 16 * time.Second},
		{Kind: "edit-run", N: 1, Flag: true, Dt: time.Second},
		{Kind: "tekton", N: 1, Dt: 3 * time.Second},
		{Kind: "tekton", N: 1, Dt: time.Minute},
		{Kind: "tekton", N: 1, Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "a custom arm64 pool inherits the worker image", Defect: "B7", Invariant: invEffectiveImage, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "infra", Flag: true, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	// seed 1448: an arm64 node joins worker after a custom pool took worker's image.
	{Name: "an arm64 node joins the worker pool that already runs an amd64 image", Defect: "B7", Invariant: invEffectiveImage, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "infra", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "node-arm64", Dt: time.Second},
		{Kind: "deliver", Dt: time.Second},
	}},
	{Name: "a dashboard re-run of the promoted inputs untags the promoted image", Defect: "B9", Invariant: invEffectiveImage, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "rerun", Dt: time.Second},
		{Kind: "tekton", Dt: 4 * time.Second},
		{Kind: "tekton", Dt: time.Second},
		{Kind: "tekton", Dt: time.Second},
		{Kind: "gc", Dt: time.Second},
	}},
	{Name: "a retry of the promoted inputs untags the promoted image", Defect: "B9", Invariant: invEffectiveImage, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "retry", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Dt: time.Minute},
		{Kind: "tekton", Dt: time.Minute},
		{Kind: "gc", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	// 7. prebuild-cancel-justified
	{Name: "a newer offer cancels the prebuild before its images are read", Defect: "B1", Invariant: invPrebuildCancel, Events: []modelEvent{
		{Kind: "init"},
		{Kind: "pi-create", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "cvo-offer", Dt: time.Second},
		{Kind: "deliver-all", Dt: time.Second},
		{Kind: "reconcile", Dt: 55 * time.Second},
		{Kind: "release-read", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "cvo-offer", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "a restart forgets the release and cancels the prebuild", Defect: "B1", Invariant: invPrebuildCancel, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-offer", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "release-read", Dt: time.Second},
		{Kind: "settle", Dt: time.Second}, // prebuild started
		{Kind: "restart", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "accepting the upgrade does not cancel its prebuild", Defect: "B1", Invariant: invPrebuildCancel, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-offer", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "release-read", Dt: time.Second},
		{Kind: "settle", Dt: time.Second}, // prebuild started
		{Kind: "cvo-accept", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "cvo-progress", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "the ControllerConfig of the accepted release reaches the cache late", Defect: "B1", Invariant: invPrebuildCancel, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-offer", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "release-read", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second}, // prebuild started
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "deliver-all", Dt: 2 * time.Minute},
		{Kind: "mco-operator", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second}, // the cache has the old ControllerConfig
	}},
	// 8. transitions-counted-once
	{Name: "an undone edit announces the old build's success again", Defect: "B12", Invariant: invTransitionsOnce, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "edit", N: 2, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "edit", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "the tracker's catch-up reconcile after a restart reports a failure twice", Defect: "B12", Invariant: invTransitionsOnce, Events: []modelEvent{
		{Kind: "init"},
		{Kind: "pi-create", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 16 * time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Flag: true, Dt: time.Minute},
		{Kind: "restart", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
	}},
	{Name: "a cancel the cache has not seen is announced twice", Defect: "B12", Invariant: invTransitionsOnce, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "edit", N: 1, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 16 * time.Second}, // run A of content 1
		{Kind: "edit", N: 2, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "reconcile", Dt: 15 * time.Second}, // run B of content 2; A cancelled
		{Kind: "deliver", Dt: time.Second},        // the PoolImage's status, not the runs
		{Kind: "reconcile", Dt: time.Second},      // A, still running in the cache, cancelled again
	}},
	// 9. rerun-keeps-image
	{Name: "a dashboard re-run of the promoted inputs is followed and promoted", Defect: "B10", Invariant: invRerunKeepsImage, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "rerun", Dt: time.Second},
		{Kind: "tekton", Dt: 4 * time.Second},
		{Kind: "tekton", Dt: time.Second},
		{Kind: "tekton", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	// the happy path of an upgrade
	{Name: "an upgrade with a prebuild: promoted at once, one reboot per node", Defect: "B1", Invariant: invHoldReleased, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-offer", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "release-read", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Dt: 5 * time.Minute},
		{Kind: "tekton", Dt: 2 * time.Minute},
		{Kind: "settle", Dt: time.Second}, // UpgradeReady
		{Kind: "cvo-accept", Dt: time.Hour},
		{Kind: "cvo-progress", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "mco-template", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-render", Dt: 10 * time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-node", Dt: time.Minute},
		{Kind: "mco-node", Dt: 5 * time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "an upgrade never pauses pool master", Defect: "B5", Invariant: invMasterNotPaused, Events: []modelEvent{
		{Kind: "pi-create", On: "master"},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Dt: 5 * time.Minute},
		{Kind: "tekton", Dt: 2 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-render", Dt: 10 * time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "mco-template", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: time.Minute},
	}},
	{Name: "the base moves again during a hold, then an admin releases the pool", Defect: "B6", Invariant: invAdminPause, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "mco-template", Dt: time.Second},
		{Kind: "settle", Dt: time.Second}, // held for the first new base
		{Kind: "cvo-upgrade", Dt: 10 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 3 * time.Minute},
		{Kind: "mco-template", Dt: time.Second},
		{Kind: "settle", Dt: time.Second}, // still held, now for the second
		{Kind: "unpause", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: time.Minute},
	}},
	{Name: "a run created from scratch with our labels is not promoted", Defect: "B4", Invariant: invEffectiveImage, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "foreign-run", Flag: true, Dt: time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Dt: 5 * time.Minute},
		{Kind: "tekton", Dt: 2 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-render", Dt: 10 * time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "a pool on an OS image stream is never reported Promoted", Defect: "B11", Invariant: invPromotedRendered, Events: []modelEvent{
		{Kind: "os-image-stream", Flag: true},
		{Kind: "pi-create", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "tekton", Dt: 3 * time.Second},
		{Kind: "tekton", Dt: 5 * time.Minute},
		{Kind: "tekton", Dt: 2 * time.Minute},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-render", Dt: 10 * time.Second},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "deleting the losing claimant keeps the winner's runs", Defect: "B12", Invariant: invDeletesOwnRuns, Events: []modelEvent{
		{Kind: "init", N: 1},
		// more finished runs of pool worker than the retention keeps (5): the promoted build,
		// superseded builds, dashboard re-runs that fail or are superseded
		{Kind: "edit", N: 1, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "edit", N: 2, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "edit", N: 3, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "settle", Dt: 20 * time.Second},
		{Kind: "tekton", Flag: true, Dt: time.Second},
		{Kind: "rerun", Dt: time.Second},
		{Kind: "tekton", Flag: true, Dt: time.Second},
		{Kind: "rerun", N: 1, Dt: time.Second},
		{Kind: "tekton", Flag: true, Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "pi-create", On: "worker-b", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "delete-pi", On: "worker-b", Dt: time.Minute},
		{Kind: "settle", Dt: time.Second},
	}},
	{Name: "deleting a PoolImage before the cache has seen its pause releases the pool", Defect: "C", Invariant: invHoldReleased, Events: []modelEvent{
		{Kind: "init", N: 1},
		{Kind: "infra", Dt: time.Second},
		{Kind: "pi-create", On: "infra", Dt: time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "reconcile", Dt: 40 * time.Second},
		{Kind: "tekton", Dt: 11 * time.Second},
		{Kind: "tekton", Dt: time.Second},
		{Kind: "cvo-upgrade", Dt: time.Second},
		{Kind: "tekton", Dt: 16 * time.Second},
		{Kind: "settle", Dt: time.Second},
		{Kind: "mco-operator", Dt: 7564 * time.Second},
		{Kind: "deliver-all", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "delete-pi", On: "infra", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "deliver", Dt: time.Second},
		{Kind: "deliver", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "deliver-all", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
		{Kind: "reconcile", Dt: time.Second},
	}},
}

// TestModelTraces replays every trace of modelTraces, checking the invariant it guards (and that
// no reconcile panics); the other invariants are TestModel's.
func TestModelTraces(t *testing.T) {
	for _, tr := range modelTraces {
		t.Run(tr.Defect+" "+tr.Name, func(t *testing.T) {
			for _, v := range runHistory(t, tr.Events, tr.Invariant).violations {
				t.Errorf("step %d: %s/%s: %s", v.Step, v.Invariant, v.Code, v.Detail)
			}
		})
	}
}
