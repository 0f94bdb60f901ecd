package main

import "io"

// countBytes reads r to its end and closes it, returning how many bytes it held.
func countBytes(r io.ReadCloser) (int64, error) {
	defer func() { _ = r.Close() }() // read only: nothing is lost
	return io.Copy(io.Discard, r)
}
