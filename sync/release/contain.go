package release

import (
	"context"
	"os"
	"path/filepath"
)

// repoRootKey is the context key of WithRepositoryRoot.
type repoRootKey struct{}

// WithRepositoryRoot returns ctx carrying root, the directory of the
// checked-out repository a release reads. Every file a build reads (Go
// sources, modules, prebuilt wasm files) must resolve inside it; the agent
// sets it to its checkout for each round. Without it, a release uses the
// nearest directory at or above the spec directory that holds .git, else
// the spec directory itself.
func WithRepositoryRoot(ctx context.Context, root string) context.Context {
	return context.WithValue(ctx, repoRootKey{}, root)
}

// repositoryRoot returns the repository root for a release of the spec in
// dir: the one ctx carries when dir lies inside it, else repoRootOf(dir).
func repositoryRoot(ctx context.Context, dir string) string {
	abs := absDir(dir)
	if root, ok := ctx.Value(repoRootKey{}).(string); ok && root != "" {
		root = absDir(root)
		if rel, err := filepath.Rel(root, abs); err == nil && (rel == "." || filepath.IsLocal(rel)) {
			return root
		}
	}
	return repoRootOf(abs)
}

// repoRootOf returns the nearest directory at or above dir that holds a
// .git entry (a clone or a worktree), else dir.
func repoRootOf(dir string) string {
	abs := absDir(dir)
	for d := abs; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return abs
		}
		d = parent
	}
}
