package generator

import (
	"testing"
)

// BenchmarkRender renders the PipelineRun of a PoolImage with every option set.
func BenchmarkRender(b *testing.B) {
	pi := loadExample(b, "entitlements")
	in := testInputs()
	in.TrustedCA = &TrustedCA{ConfigMapName: "trusted-ca", SHA256: "abc"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(pi, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInputsHash hashes the inputs of the same PoolImage (what a reconcile does when
// nothing changed).
func BenchmarkInputsHash(b *testing.B) {
	pi := loadExample(b, "entitlements")
	in := testInputs()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := InputsHash(pi, in); err != nil {
			b.Fatal(err)
		}
	}
}
