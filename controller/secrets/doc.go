// Package secrets gives the controller the Secrets of one namespace at a time, without any
// cluster-wide permission on Secrets. A Set starts one namespace-scoped informer per namespace
// that holds a PoolImage, on first use; the informer keeps only the Secrets' metadata and type
// (never their data) in memory. A namespace whose Secrets the controller may not read gives an
// error that names the RoleBinding to create there. PullSecretHosts watches the one Secret the
// controller reads outside those namespaces, the cluster's global pull secret, and keeps only
// the registries it has credentials for.
package secrets
