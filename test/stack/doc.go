// Package stack is the harness of the e2e tests and the benchmarks: a Go handle on the cluster
// they run against, with typed access to what they need (the kubeconfig, the registry, the
// controller's restarts and leader, the API server's audit log, the processes' logs).
//
// The local stack is made of real components, started by Up on one machine (root: a network
// namespace, containerd): a registry, etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, one node (containerd, runc, kubelet, kube-proxy), the Tekton controller, the
// MCO's CRDs with a stand-in release, and the project's release installed as users install it.
// API starts only etcd and the API server with the CRDs, in the manner of envtest, for the scale
// benchmark. Attach wraps a cluster started elsewhere (KUBECONFIG): what only the local stack has
// is ErrNotLocal, and the tests that need it say so and skip.
//
// Shell stays where it is the natural tool: installing Debian packages, building the Kubernetes
// binaries, the images and the release (hack/*.sh, test/images/*.sh). `go run ./test/stack/cmd
// up|api|down|env|leader` is the command line (make up, make down, make demo).
package stack
