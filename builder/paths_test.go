package builder

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRelativeCacheDir builds a Go component with a relative cache
// directory, as `ferry up` passes one (.ferry/up/build-cache). go build runs
// in the package's directory, so a relative output path handed to it was
// written there and then read from the caller's directory: "invalid magic
// number". The Builder makes the path absolute once, in New.
func TestRelativeCacheDir(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	src := t.TempDir()
	writeFiles(t, src, wagiGuest)

	b := New(Options{CacheDir: filepath.Join("rel", "cache")})
	if want := filepath.Join(work, "rel", "cache"); b.CacheDir() != want {
		t.Errorf("CacheDir() = %q, want %q", b.CacheDir(), want)
	}
	res := buildOK(t, b, goComponent("wagi", src, ""))
	if got, want := runWAGI(t, res.Wasm), "Content-Type: text/plain\n\nhello from go\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(work, "rel", "cache", res.Key+".wasm")); err != nil {
		t.Errorf("the cache entry is not under the cache directory: %v", err)
	}
	// Nothing was left in the package's directory.
	if _, err := os.Stat(filepath.Join(src, "rel")); err == nil {
		t.Errorf("the build wrote into the package directory %s", src)
	}
	// A second Builder, started in another directory, finds the entry where
	// the first one left it.
	t.Chdir(src)
	again := buildOK(t, New(Options{CacheDir: filepath.Join(work, "rel", "cache")}), goComponent("wagi", src, ""))
	if !again.Cached {
		t.Error("the second build was not served from the cache")
	}
}
