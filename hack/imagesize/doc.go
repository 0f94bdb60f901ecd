// Command imagesize prints, for each image reference given (an index or a single image), one
// line per platform: the reference, the platform, the compressed size (what a node pulls) and
// the uncompressed size of its layers.
//
//	go run ./hack/imagesize [--insecure] REF...
package main
