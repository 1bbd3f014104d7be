package builder

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestModuleImports(t *testing.T) {
	t.Parallel()
	tests := map[string][]wasmImport{
		"wagi.wasm":          {{"wasi_snapshot_preview1", "fd_write", 0}},
		"global_import.wasm": {{"env", "g", 3}, {"env", "t", 1}},
		"memory_import.wasm": {{"env", "memory", 2}},
		"no_start.wasm":      nil,
	}
	for name, want := range tests {
		got, err := moduleImports(readFixture(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(wasmImport{})); diff != "" {
			t.Errorf("%s imports (-want +got):\n%s", name, diff)
		}
	}
}

// TestModuleImportsTruncated: every prefix of every fixture gives a result
// or an error, never a panic.
func TestModuleImportsTruncated(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.wasm"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		b := readFixture(t, filepath.Base(f))
		for n := range len(b) {
			moduleImports(b[:n]) //nolint:errcheck // only the absence of a panic matters
		}
	}
}

func FuzzModuleImports(f *testing.F) {
	for _, name := range []string{"wagi.wasm", "global_import.wasm", "reactor.wasm"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) { moduleImports(b) }) //nolint:errcheck // no panic is the property
}
