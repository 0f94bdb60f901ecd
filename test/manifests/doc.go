// Package manifests tests the install manifests in config/: that `kubectl apply -k config/`
// installs every object the controller needs, that RBAC is least privilege (no wildcard, every
// rule backed by a call the code makes, every call granted), and that the ConfigMaps and alerts
// agree with the code that reads them.
package manifests
