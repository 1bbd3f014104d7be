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

// BenchmarkUncachedGoBuild measures a build of examples/hello-go that is
// not in ferry's cache (a fresh cache per build; Go's own build cache is
// warm): "self" builds as the builder's own user with its Go caches,
// "build-user" as nobody from a scratch copy of the repository with the
// build user's own caches (root only). The first build-user run on a
// machine fills that user's Go cache and is not counted.
func BenchmarkUncachedGoBuild(b *testing.B) {
	root := testenv.RepoRoot(b)
	c := goComponent("web", filepath.Join(root, "examples", "hello-go"), ExecutorReactor)
	c.Dir = root
	for _, tc := range []struct {
		name string
		user func(testing.TB) *User
	}{
		{"self", func(testing.TB) *User { return nil }},
		{"build-user", nobody},
	} {
		b.Run(tc.name, func(b *testing.B) {
			u := tc.user(b)
			buildOK(b, New(Options{CacheDir: b.TempDir(), User: u}), c) // warm Go's caches
			for b.Loop() {
				res, err := New(Options{CacheDir: b.TempDir(), User: u}).Build(context.Background(), []Component{c})
				if err != nil || res[0].Cached {
					b.Fatalf("not a fresh build: %v", err)
				}
			}
		})
	}
}
