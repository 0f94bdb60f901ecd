// Package builders makes the objects tests need — PoolImages and the cluster objects around
// them — from a name and functional options, as knative/serving's pkg/testing does: a test says
// what differs from the usual object, not the whole object again.
package builders
