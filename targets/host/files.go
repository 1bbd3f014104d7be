package host

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// filteredFS exposes only the declared paths of a file tree (and the
// directories leading to them), read-only.
type filteredFS struct {
	fsys    fs.FS
	allowed []string // cleaned, slash-separated, relative; "." means all
}

func newFilteredFS(fsys fs.FS, declared []string) (*filteredFS, error) {
	f := &filteredFS{fsys: fsys}
	for _, d := range declared {
		c := path.Clean(strings.TrimPrefix(d, "/"))
		if c == ".." || strings.HasPrefix(c, "../") {
			return nil, fmt.Errorf("%w: file %q leaves the component's directory", ErrInvalidApp, d)
		}
		f.allowed = append(f.allowed, c)
	}
	return f, nil
}

// visible reports whether name is declared (or under a declared directory),
// and whether it is only a parent directory of declared paths.
func (f *filteredFS) visible(name string) (ok, parentOnly bool) {
	for _, a := range f.allowed {
		if a == "." || name == a || strings.HasPrefix(name, a+"/") {
			return true, false
		}
	}
	for _, a := range f.allowed {
		if name == "." || strings.HasPrefix(a, name+"/") {
			return true, true
		}
	}
	return false, false
}

// Open implements fs.FS.
func (f *filteredFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	ok, parentOnly := f.visible(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	file, err := f.fsys.Open(name)
	if err != nil || !parentOnly {
		return file, err
	}
	if d, isDir := file.(fs.ReadDirFile); isDir {
		return &filteredDir{ReadDirFile: d, f: f, dir: name}, nil
	}
	return file, nil
}

// filteredDir lists only visible entries of a parent directory.
type filteredDir struct {
	fs.ReadDirFile
	f   *filteredFS
	dir string
}

func (d *filteredDir) ReadDir(n int) ([]fs.DirEntry, error) {
	var out []fs.DirEntry
	for {
		es, err := d.ReadDirFile.ReadDir(n)
		for _, e := range es {
			if ok, _ := d.f.visible(path.Join(d.dir, e.Name())); ok {
				out = append(out, e)
			}
		}
		if err != nil || n <= 0 || len(out) > 0 {
			return out, err
		}
	}
}
