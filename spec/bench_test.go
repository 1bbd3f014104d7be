package spec

import (
	"path/filepath"
	"testing"
)

// BenchmarkLoad loads testdata/valid/full, the spec that uses every block
// and argument of the language.
func BenchmarkLoad(b *testing.B) {
	dir := filepath.Join("testdata", "valid", "full")
	for b.Loop() {
		if _, diags := Load(dir, LoadOptions{}); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}
