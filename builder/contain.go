package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A component's files are untrusted repository content: a committer can
// make any of them a symbolic link to a file of the machine that builds
// (`ln -s /proc/self/environ main.go`). Everything the builder reads or
// lets `go build` read must therefore resolve inside the component's root.
// The builder reads files itself through an os.Root; for `go build`, which
// reads the module's directories on its own, it first walks the module
// (and every local replacement) through an os.Root and refuses a symbolic
// link that leads outside.

// root returns the directory c's files must resolve inside: Root, else
// Dir; "" when neither is set (nothing is checked).
func (c Component) root() string {
	if c.Root != "" {
		return c.Root
	}
	return c.Dir
}

// relInside returns p relative to root, or an ErrOutsideRoot error when p
// is not lexically below root.
func relInside(root, p, what string) (string, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("%w: the %s %s is not inside the repository root %s", ErrOutsideRoot, what, p, root)
	}
	return rel, nil
}

// readInside reads file p through an os.Root opened at root, so no
// symbolic link (of p or of a parent) can lead outside root. A link that
// does is refused with ErrOutsideRoot naming p; nothing of the outside file
// is read. With root "" it reads p directly.
func readInside(root, p, what string) ([]byte, error) {
	if root == "" {
		return os.ReadFile(p)
	}
	rel, err := relInside(root, p, what)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := r.ReadFile(rel)
	if err != nil {
		if escapes(r, rel) {
			return nil, fmt.Errorf("%w: the %s %s is a symbolic link (or lies below one) that leads outside the repository root %s", ErrOutsideRoot, what, p, root)
		}
		return nil, err
	}
	return b, nil
}

// escapes reports whether rel, which exists as a name in r, cannot be
// resolved inside r: os.Root refuses it for a reason other than that its
// target does not exist.
func escapes(r *os.Root, rel string) bool {
	if _, err := r.Lstat(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true // a parent leads outside
	} else if err != nil {
		return false
	}
	_, err := r.Stat(rel)
	return err != nil && !errors.Is(err, fs.ErrNotExist)
}

// checkGoTree refuses a Go build that would read outside root: the module
// root (the nearest go.mod above the package) must lie inside root, and no
// symbolic link in the module's tree, or in the tree of a go.mod replace
// directive pointing at a local directory, may lead outside root. .git
// directories are skipped. Errors wrap ErrOutsideRoot and name the path.
func checkGoTree(c Component) error {
	root := c.root()
	if root == "" {
		return nil
	}
	if _, err := relInside(root, c.GoPackage, "go package"); err != nil {
		return err
	}
	mod, err := findModuleRoot(c.GoPackage)
	if err != nil {
		return nil // go build reports it
	}
	if _, err := relInside(root, mod, "Go module root"); err != nil {
		return fmt.Errorf("%w: the go.mod of %s is %s, above the repository root %s; a build may only read the repository", ErrOutsideRoot, c.GoPackage, filepath.Join(mod, "go.mod"), root)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	dirs := []string{mod}
	gomod, err := readInside(root, filepath.Join(mod, "go.mod"), "go.mod")
	if err != nil {
		return err
	}
	_, replaces := parseGoMod(gomod)
	for _, rep := range replaces {
		dir := rep.dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(mod, dir)
		}
		if _, err := relInside(root, filepath.Clean(dir), "replacement of "+rep.path+" in go.mod"); err != nil {
			return err
		}
		dirs = append(dirs, filepath.Clean(dir))
	}
	for _, d := range dirs {
		rel, _ := relInside(root, d, "directory")
		if escapes(r, rel) {
			return fmt.Errorf("%w: %s is a symbolic link (or lies below one) that leads outside the repository root %s", ErrOutsideRoot, d, root)
		}
		err := fs.WalkDir(r.FS(), filepath.ToSlash(rel), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == filepath.ToSlash(rel) {
					return fs.SkipAll // a missing replacement: go build reports it
				}
				return err
			}
			if e.IsDir() && e.Name() == ".git" {
				return fs.SkipDir
			}
			if e.Type()&fs.ModeSymlink != 0 && escapes(r, filepath.FromSlash(p)) {
				return fmt.Errorf("%w: %s is a symbolic link that leads outside the repository root %s; go build would read through it", ErrOutsideRoot, filepath.Join(root, filepath.FromSlash(p)), root)
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, ErrOutsideRoot) {
				return err
			}
			return fmt.Errorf("checking %s: %w", d, err)
		}
	}
	return nil
}

// contained checks, before anything is hashed or built, that c's inputs
// resolve inside its root: the prebuilt wasm file, or the Go module tree.
// (A command's own reads are bounded by running it as another user; see
// Options.User, in a scratch copy; see sandbox.go.)
func (c Component) contained() error {
	root := c.root()
	if root == "" {
		return nil
	}
	if c.Root != "" && c.Dir != "" && !within(c.Root, c.Dir) {
		return fmt.Errorf("%w: Dir %q is not inside Root %q", ErrInvalidComponent, c.Dir, c.Root)
	}
	switch c.Kind {
	case KindGo:
		return checkGoTree(c)
	case KindWasm:
		rel, err := relInside(root, c.Wasm, "wasm file")
		if err != nil {
			return err
		}
		r, err := os.OpenRoot(root)
		if err != nil {
			return err
		}
		defer r.Close()
		if escapes(r, rel) {
			return fmt.Errorf("%w: the wasm file %s is a symbolic link (or lies below one) that leads outside the repository root %s", ErrOutsideRoot, c.Wasm, root)
		}
	}
	return nil
}
