// Package manifests tests the install manifests in config/ (the release, dist/release.yaml, once its ko:// images are resolved): that it
// installs every object the controller needs, that RBAC is least privilege (no wildcard, every
// rule backed by a call the code makes, every call granted), and that the ConfigMaps and alerts
// agree with the code that reads them.
package manifests
