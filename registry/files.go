package registry

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// Files layers: the declared files of a component, as described in
// LAYOUT.md.
const (
	// MediaTypeFilesLayer is the media type of a component's files layer:
	// an uncompressed tar archive in the canonical form PackFiles writes.
	MediaTypeFilesLayer = "application/vnd.ferry.files.v1.tar"
	// AnnotationComponent, on a files layer of an app manifest, names the
	// component whose declared files the layer holds.
	AnnotationComponent = "vnd.ferry.component"
	// DefaultMaxFilesBytes is the default limit on the size of one
	// component's files layer (the tar archive): 64 MiB.
	DefaultMaxFilesBytes = 64 << 20
)

// filesTitle is the org.opencontainers.image.title of a component's files
// layer, the file name `oras pull` writes it to.
func filesTitle(component string) string { return component + ".files.tar" }

// fileEntry is one entry of a files archive being packed.
type fileEntry struct {
	path string // clean, slash-separated, relative
	dir  bool
	data []byte
}

// PackFiles collects the declared paths of fsys — each a regular file, or
// a directory with its whole subtree — and writes them as a canonical files
// archive: an uncompressed tar with entries sorted by path, every parent
// directory present, modes 0644 (files) and 0755 (directories), zero
// times, owners and names. The same tree always gives the same bytes.
//
// Declared paths are slash-separated and relative ("static/index.html",
// "static/"); one that is absolute, leaves the tree by "..", is missing, or
// is (or holds) anything but regular files and directories — a symbolic
// link, a device — or lies below a symbolic link, is refused with an error
// wrapping ErrInvalidApp that names it. An archive larger than maxBytes (zero or less means
// DefaultMaxFilesBytes) is refused with ErrFilesTooLarge.
func PackFiles(fsys fs.FS, declared []string, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFilesBytes
	}
	entries := map[string]*fileEntry{}
	var total int64
	add := func(p string, info fs.FileInfo) error {
		if _, ok := entries[p]; ok {
			return nil
		}
		if err := checkFilePath(p); err != nil {
			return fmt.Errorf("%w: file %q %s", ErrInvalidApp, p, err)
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			entries[p] = &fileEntry{path: p, dir: true}
		case mode.IsRegular():
			if total += info.Size() + 512; total > maxBytes {
				return fmt.Errorf("%w: %w: the declared files take more than %d bytes (at %q); declare fewer files or raise the limit",
					ErrInvalidApp, ErrFilesTooLarge, maxBytes, p)
			}
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return fmt.Errorf("%w: reading file %q: %w", ErrInvalidApp, p, err)
			}
			entries[p] = &fileEntry{path: p, data: b}
		default:
			return fmt.Errorf("%w: file %q is a %s; only regular files and directories can be packed", ErrInvalidApp, p, modeName(mode))
		}
		return nil
	}
	for _, d := range declared {
		p := path.Clean(d)
		if strings.HasPrefix(d, "/") || p == ".." || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("%w: declared file %q is not a relative path inside the component's directory", ErrInvalidApp, d)
		}
		// No parent may be a symbolic link: fs.Lstat (and os.DirFS) follow
		// the links among a path's parents, so "static/passwd" with
		// static -> /etc would read /etc/passwd.
		if err := checkParents(fsys, p); err != nil {
			return nil, err
		}
		info, err := fs.Lstat(fsys, p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: declared file %q does not exist", ErrInvalidApp, d)
			}
			return nil, fmt.Errorf("%w: declared file %q: %w", ErrInvalidApp, d, err)
		}
		if !info.IsDir() {
			if p == "." {
				return nil, fmt.Errorf("%w: declared file %q is not a directory", ErrInvalidApp, d)
			}
			if err := add(p, info); err != nil {
				return nil, err
			}
			continue
		}
		err = fs.WalkDir(fsys, p, func(q string, de fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("%w: reading %q: %w", ErrInvalidApp, q, err)
			}
			if q == "." {
				return nil
			}
			info, err := de.Info()
			if err != nil {
				return fmt.Errorf("%w: reading %q: %w", ErrInvalidApp, q, err)
			}
			return add(q, info)
		})
		if err != nil {
			return nil, err
		}
	}
	// Every parent directory gets its own entry, so the tree can be listed.
	for _, p := range slices.Collect(maps.Keys(entries)) {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if e, ok := entries[dir]; ok {
				if !e.dir {
					return nil, fmt.Errorf("%w: %q is a file and a directory", ErrInvalidApp, dir)
				}
				break
			}
			entries[dir] = &fileEntry{path: dir, dir: true}
		}
	}
	paths := slices.Sorted(maps.Keys(entries))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0).UTC()
	for _, p := range paths {
		e := entries[p]
		hdr := &tar.Header{Name: p, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.data)), ModTime: epoch, Format: tar.FormatPAX}
		if e.dir {
			hdr.Name, hdr.Mode, hdr.Typeflag, hdr.Size = p+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%w: file %q: %w", ErrInvalidApp, p, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("%w: file %q: %w", ErrInvalidApp, p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("%w: writing files archive: %w", ErrInvalidApp, err)
	}
	if int64(buf.Len()) > maxBytes {
		return nil, fmt.Errorf("%w: %w: the files archive is %d bytes, more than %d; declare fewer files or raise the limit",
			ErrInvalidApp, ErrFilesTooLarge, buf.Len(), maxBytes)
	}
	return buf.Bytes(), nil
}

// checkParents refuses declared path p when one of its parent directories
// is a symbolic link, naming both.
func checkParents(fsys fs.FS, p string) error {
	var parents []string
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		parents = append(parents, d)
	}
	for i := len(parents) - 1; i >= 0; i-- {
		info, err := fs.Lstat(fsys, parents[i])
		if err != nil {
			return nil // the declared path's own Lstat reports it
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: declared file %q lies beyond the symbolic link %q; only regular files and directories can be packed", ErrInvalidApp, p, parents[i])
		}
	}
	return nil
}

// checkFilePath refuses paths that are not clean, relative and portable.
func checkFilePath(p string) error {
	switch {
	case !fs.ValidPath(p) || p == ".":
		return errors.New("is not a clean relative path (absolute, empty, \".\" or \"..\" elements)")
	case strings.Contains(p, `\`):
		return errors.New("contains a backslash")
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("contains control characters")
	}
	return nil
}

func modeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return "special file"
}

// ReadFiles unpacks a files archive (a tar, see MediaTypeFilesLayer) into
// a read-only, in-memory FileTree. It accepts only regular files and
// directories with clean, relative paths: an absolute path, a ".."
// element, a symbolic or hard link, a device, a duplicate entry or an entry
// below a file is refused with an error wrapping ErrInvalidArtifact that
// names the entry. The caller bounds the archive's size (file contents
// are copied, so the tree takes at most as much memory as the archive).
func ReadFiles(archive []byte) (*FileTree, error) {
	t := &FileTree{entries: map[string]*treeEntry{".": {name: ".", dir: true}}}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: files archive: %w", ErrInvalidArtifact, err)
		}
		name := hdr.Name
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: files archive entry %q: %s", ErrInvalidArtifact, name, fmt.Sprintf(format, args...))
		}
		var dir bool
		switch hdr.Typeflag {
		case tar.TypeReg:
		case tar.TypeDir:
			dir = true
		case tar.TypeSymlink:
			return nil, bad("is a symbolic link; only regular files and directories are allowed")
		case tar.TypeLink:
			return nil, bad("is a hard link; only regular files and directories are allowed")
		default:
			return nil, bad("has type %q; only regular files and directories are allowed", hdr.Typeflag)
		}
		p := name
		if dir {
			p = strings.TrimSuffix(p, "/")
		}
		if err := checkFilePath(p); err != nil {
			return nil, bad("%s", err)
		}
		if _, dup := t.entries[p]; dup {
			return nil, bad("appears twice")
		}
		e := &treeEntry{name: path.Base(p), dir: dir}
		if !dir {
			if hdr.Size < 0 || hdr.Size > int64(len(archive)) {
				return nil, bad("size %d out of range", hdr.Size)
			}
			e.data = make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, e.data); err != nil {
				return nil, bad("truncated: %v", err)
			}
			t.size += hdr.Size
		}
		t.entries[p] = e
	}
	if err := t.link(); err != nil {
		return nil, fmt.Errorf("%w: files archive %w", ErrInvalidArtifact, err)
	}
	return t, nil
}

// NewFileTree returns a FileTree holding files: contents by clean,
// slash-separated relative path ("static/index.html"). A key ending in "/"
// is a directory (its value is ignored), for empty directories; other
// parent directories are implied. A path that is not clean and relative, or
// a file that is also a parent, is refused. The contents are not copied.
func NewFileTree(files map[string][]byte) (*FileTree, error) {
	t := &FileTree{entries: map[string]*treeEntry{".": {name: ".", dir: true}}}
	for k, data := range files {
		p, dir := strings.CutSuffix(k, "/")
		if err := checkFilePath(p); err != nil {
			return nil, fmt.Errorf("registry: file %q %s", k, err)
		}
		if _, dup := t.entries[p]; dup {
			return nil, fmt.Errorf("registry: file %q appears twice", k)
		}
		e := &treeEntry{name: path.Base(p), dir: dir}
		if !dir {
			e.data = data
			t.size += int64(len(data))
		}
		t.entries[p] = e
	}
	if err := t.link(); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return t, nil
}

// link adds every entry to its parent's children, creating parents left
// out; a parent that is a file is refused.
func (t *FileTree) link() error {
	for _, p := range slices.Sorted(maps.Keys(t.entries)) {
		if p == "." {
			continue
		}
		child := p
		for {
			parent := path.Dir(child)
			pe, ok := t.entries[parent]
			if !ok {
				pe = &treeEntry{name: path.Base(parent), dir: true}
				t.entries[parent] = pe
			} else if !pe.dir {
				return fmt.Errorf("entry %q lies below %q, which is a file", p, parent)
			}
			base := path.Base(child)
			if i, found := slices.BinarySearch(pe.children, base); !found {
				pe.children = slices.Insert(pe.children, i, base)
			}
			if ok || parent == "." {
				break
			}
			child = parent
		}
	}
	return nil
}

// FileTree is a read-only, in-memory file tree: a component's files
// unpacked by ReadFiles, or built with NewFileTree. It implements fs.FS, fs.StatFS, fs.ReadFileFS and
// fs.ReadDirFS; files are read-only (mode 0444, directories 0555) and
// carry the Unix epoch as their time. It is safe for concurrent use.
type FileTree struct {
	entries map[string]*treeEntry // by path; "." is the root
	size    int64
}

type treeEntry struct {
	name     string
	dir      bool
	data     []byte
	children []string // sorted base names
}

var (
	_ fs.StatFS     = (*FileTree)(nil)
	_ fs.ReadFileFS = (*FileTree)(nil)
	_ fs.ReadDirFS  = (*FileTree)(nil)
)

// Size is the sum of the sizes of the tree's regular files.
func (t *FileTree) Size() int64 { return t.size }

// Paths lists the tree's regular files, sorted.
func (t *FileTree) Paths() []string {
	var out []string
	for p, e := range t.entries {
		if !e.dir {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (t *FileTree) lookup(op, name string) (*treeEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	e, ok := t.entries[name]
	if !ok {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return e, nil
}

// Open implements fs.FS.
func (t *FileTree) Open(name string) (fs.File, error) {
	e, err := t.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if e.dir {
		return &treeDir{t: t, e: e, path: name}, nil
	}
	return &treeFile{e: e, Reader: bytes.NewReader(e.data)}, nil
}

// Stat implements fs.StatFS.
func (t *FileTree) Stat(name string) (fs.FileInfo, error) {
	e, err := t.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return treeInfo{e}, nil
}

// ReadFile implements fs.ReadFileFS; the caller may modify the result.
func (t *FileTree) ReadFile(name string) ([]byte, error) {
	e, err := t.lookup("readfile", name)
	if err != nil {
		return nil, err
	}
	if e.dir {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	return slices.Clone(e.data), nil
}

// ReadDir implements fs.ReadDirFS: the entries of directory name, sorted.
func (t *FileTree) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := t.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !e.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return t.dirEntries(name, e), nil
}

func (t *FileTree) dirEntries(dir string, e *treeEntry) []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(e.children))
	for _, c := range e.children {
		out = append(out, fs.FileInfoToDirEntry(treeInfo{t.entries[path.Join(dir, c)]}))
	}
	return out
}

// treeInfo is the fs.FileInfo of a tree entry.
type treeInfo struct{ e *treeEntry }

func (i treeInfo) Name() string       { return i.e.name }
func (i treeInfo) Size() int64        { return int64(len(i.e.data)) }
func (i treeInfo) ModTime() time.Time { return time.Unix(0, 0).UTC() }
func (i treeInfo) IsDir() bool        { return i.e.dir }
func (i treeInfo) Sys() any           { return nil }
func (i treeInfo) Mode() fs.FileMode {
	if i.e.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}

// treeFile is an open regular file; it supports Seek and ReadAt.
type treeFile struct {
	e *treeEntry
	*bytes.Reader
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return treeInfo{f.e}, nil }
func (f *treeFile) Close() error               { return nil }

// treeDir is an open directory.
type treeDir struct {
	t    *FileTree
	e    *treeEntry
	path string
	list []fs.DirEntry // the entries not yet returned; nil before the first ReadDir
	read bool
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return treeInfo{d.e}, nil }
func (d *treeDir) Close() error               { return nil }
func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		d.list, d.read = d.t.dirEntries(d.path, d.e), true
	}
	if n <= 0 {
		all := d.list
		d.list = nil
		if all == nil {
			all = []fs.DirEntry{}
		}
		return all, nil
	}
	if len(d.list) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.list))
	out := d.list[:n:n]
	d.list = d.list[n:]
	return out, nil
}
