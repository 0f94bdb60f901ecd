// Package upgrade finds the release a cluster is about to upgrade to and the OS images it
// brings. Candidates watches ClusterVersion: the release its spec.desiredUpdate targets, else the
// newest one status.availableUpdates offers. It reads that release's payload image with the
// cluster's global pull secret (package release) once per release, so the controller can build
// each pool's image on the candidate's base before the upgrade starts.
package upgrade
