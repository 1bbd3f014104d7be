package builder

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// BenchmarkCachedBuild measures a build of an unchanged Go component that
// is already in the cache (goal: at most 50 ms). "new-builder" creates a
// Builder per build, as a fresh `ferry build` process does, so it includes
// the one `go env` call; "same-builder" is a long-running agent.
func BenchmarkCachedBuild(b *testing.B) {
	standalone := b.TempDir()
	writeFiles(b, standalone, wagiGuest)
	root := testenv.RepoRoot(b)
	inRepo := goComponent("guest", filepath.Join(root, "builder", "testdata", "guest"), "")
	inRepo.Dir = root
	for _, c := range []struct {
		name string
		comp Component
	}{
		{"standalone-module", goComponent("web", standalone, "")},
		{"in-ferry-module", inRepo},
	} {
		cache := b.TempDir()
		buildOK(b, New(Options{CacheDir: cache}), c.comp) // fill the cache
		run := func(b *testing.B, newBuilder bool) {
			bld := New(Options{CacheDir: cache})
			for b.Loop() {
				if newBuilder {
					bld = New(Options{CacheDir: cache})
				}
				res, err := bld.Build(context.Background(), []Component{c.comp})
				if err != nil || !res[0].Cached {
					b.Fatalf("not a cached build: %v", err)
				}
			}
		}
		b.Run(c.name+"/same-builder", func(b *testing.B) { run(b, false) })
		b.Run(c.name+"/new-builder", func(b *testing.B) { run(b, true) })
	}
}
