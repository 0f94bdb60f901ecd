// Package registryauth turns a kubernetes.io/dockerconfigjson Secret's content into a
// go-containerregistry keychain: the build steps read their mounted Secrets with it, and the
// controller the cluster's global pull secret when it reads a release image.
package registryauth
