// Package uninstall keeps the controller able to end its holds while it is being uninstalled.
//
// A pool the controller holds (spec.paused, written for an upgrade's rebuild) is the one piece of
// its state that nothing else would ever undo. Deleting the release deletes the controller's
// ServiceAccount, ClusterRole and ClusterRoleBinding within milliseconds, and a deleted
// ServiceAccount's tokens are refused at once, so without a guard a held pool stays paused for
// good.
//
// The Guard, only while the controller holds a pool:
//   - puts a finalizer on the controller's ServiceAccount, so that it stays (terminating) during an
//     uninstall: the API server accepts its tokens for a minute after its deletion;
//   - keeps a small ClusterRole and ClusterRoleBinding of its own (HoldRBAC: what ending a hold
//     needs), which are not part of the release, so deleting the release leaves them, and which
//     are owned by the controller's Namespace, so the garbage collector deletes them once the
//     namespace is gone, that is after the ServiceAccount.
//
// The controller then sees the uninstall (Uninstalling), unpauses every pool it holds, and
// removes the ServiceAccount's finalizer: one request, authorized by the Guard's own binding. A
// guard that had to remove finalizers from several objects would delete, with the first, the
// rights the others need. With no hold there is no finalizer, so nothing the controller owns can
// wedge the deletion of a namespace or of the CRD once the controller is gone.
package uninstall
