package builder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// A build runs code a spec committer wrote (a build command, or a go build
// whose declared Env can name a -toolexec). It must not reach what the
// process running the builder holds: its environment, its files, its
// memory. So every build (Go or command) runs
//
//   - in a scratch copy of the component's source tree, below
//     Options.WorkDir, owned by the build user; the checkout itself is
//     never written and need not be readable by the build user;
//   - with an environment made from an allow-list (PATH, HOME and TMPDIR
//     inside the scratch directory, the Go settings, the declared Env);
//   - as Options.User when set (the builder must then run as root):
//     another uid cannot read /proc/<agent>/environ, its memory or its
//     0600 files.
//
// The build user's Go build and module caches persist below WorkDir
// (u<uid>/), so only its first Go build compiles the standard library.

// User is the account builds run as.
type User struct {
	// Name is the account's name, for messages; may be empty.
	Name string
	// UID and GID are the numeric ids builds get; supplementary groups are
	// dropped.
	UID, GID uint32
}

func (u *User) String() string {
	if u.Name != "" {
		return fmt.Sprintf("%s (uid %d)", u.Name, u.UID)
	}
	return "uid " + strconv.FormatUint(uint64(u.UID), 10)
}

// sandbox is the scratch directory of one build.
type sandbox struct {
	dir   string // the whole scratch directory; removed by done
	src   string // the copy of the source tree
	root  string // the directory src copies
	home  string // HOME and TMPDIR
	state string // the build user's persistent Go caches (WorkDir/u<uid>)
	owner *User  // nil: the builder's own user
}

// switchUser reports whether builds run under another uid than ours.
func (b *Builder) switchUser() bool {
	return b.user != nil && int(b.user.UID) != os.Geteuid()
}

// newSandbox makes a scratch directory below WorkDir holding a copy of
// root (without .git directories).
func (b *Builder) newSandbox(root string) (*sandbox, error) {
	if b.workErr != nil {
		return nil, b.workErr
	}
	var owner *User
	if b.switchUser() {
		owner = b.user
	}
	state, err := b.stateDir(owner)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(b.workDir, "run-")
	if err != nil {
		return nil, fmt.Errorf("build scratch directory: %w", err)
	}
	s := &sandbox{dir: dir, src: filepath.Join(dir, "src"), root: root, home: filepath.Join(dir, "home"), state: state, owner: owner}
	if err := s.chown(dir); err != nil {
		s.done()
		return nil, err
	}
	for _, d := range []string{s.home, filepath.Join(s.home, "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			s.done()
			return nil, err
		}
		if err := s.chown(d); err != nil {
			s.done()
			return nil, err
		}
	}
	if err := s.copyTree(); err != nil {
		s.done()
		return nil, fmt.Errorf("copying %s to the build's scratch directory: %w", root, err)
	}
	return s, nil
}

// stateDir makes (once per Builder; builds run in parallel) WorkDir and the
// build user's persistent directory WorkDir/u<uid>, and returns the latter.
func (b *Builder) stateDir(owner *User) (state string, err error) {
	b.dirMu.Lock()
	defer b.dirMu.Unlock()
	if b.stateReady != "" {
		return b.stateReady, nil
	}
	if err := ensureDir(b.workDir, 0o711, nil); err != nil {
		return "", err
	}
	if owner != nil {
		if err := searchableByOthers(b.workDir); err != nil {
			return "", err
		}
	}
	uid := uint32(os.Geteuid())
	if owner != nil {
		uid = owner.UID
	}
	state = filepath.Join(b.workDir, "u"+strconv.FormatUint(uint64(uid), 10))
	if err := ensureDir(state, 0o700, owner); err != nil {
		return "", err
	}
	for _, d := range []string{"gocache", "gomodcache", "gopath"} {
		if err := ensureDir(filepath.Join(state, d), 0o700, owner); err != nil {
			return "", err
		}
	}
	b.stateReady = state
	return state, nil
}

// done removes the scratch directory.
func (s *sandbox) done() { os.RemoveAll(s.dir) }

// path maps p, a path inside root, to its place in the copy.
func (s *sandbox) path(p string) (string, error) {
	rel, err := filepath.Rel(s.root, p)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("%w: %s is not inside %s", ErrInvalidComponent, p, s.root)
	}
	return filepath.Join(s.src, rel), nil
}

func (s *sandbox) chown(p string) error {
	if s.owner == nil {
		return nil
	}
	return os.Lchown(p, int(s.owner.UID), int(s.owner.GID))
}

// copyTree copies root to src through an os.Root: directories, regular
// files (keeping their executable bits) and symbolic links as links (the
// build user's own permissions decide what a link reaches). .git
// directories and special files are left out.
func (s *sandbox) copyTree() error {
	r, err := os.OpenRoot(s.root)
	if err != nil {
		return err
	}
	defer r.Close()
	return fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(s.src, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			if d.Name() == ".git" && p != "." {
				return fs.SkipDir
			}
			if err := os.Mkdir(dst, 0o755); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			target, err := r.Readlink(filepath.FromSlash(p))
			if err != nil {
				return err
			}
			if err := os.Symlink(target, dst); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if err := copyFile(r, filepath.FromSlash(p), dst); err != nil {
				return err
			}
		default:
			return nil // fifos, sockets, devices: never opened
		}
		return s.chown(dst)
	})
}

func copyFile(r *os.Root, rel, dst string) error {
	in, err := r.OpenFile(rel, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	mode := os.FileMode(0o644)
	if st.Mode()&0o111 != 0 {
		mode = 0o755
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// readOutput reads the file the build wrote at p (inside the scratch
// directory) through an os.Root, so a link cannot make the builder read a
// file outside it, and refuses a file the build user does not own (a hard
// link to someone else's file).
func (s *sandbox) readOutput(p, what string) ([]byte, error) {
	rel, err := filepath.Rel(s.dir, p)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%w: the %s %s is not inside the build's scratch directory", ErrInvalidComponent, what, p)
	}
	r, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: the %s %s cannot be opened inside the build's scratch directory: %v", ErrOutsideRoot, what, p, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: the %s %s is not a regular file", ErrBuildFailed, what, p)
	}
	if s.owner != nil {
		if uid, ok := fileUID(st); ok && uid != s.owner.UID {
			return nil, fmt.Errorf("%w: the %s %s is not owned by the build user %s", ErrOutsideRoot, what, p, s.owner)
		}
	}
	return io.ReadAll(f)
}

// ensureDir makes dir with mode if it is missing, owned by owner (nil: by
// us), and refuses one that is a symbolic link or belongs to someone else:
// a local user must not be able to plant the directory builds run in.
func ensureDir(dir string, mode os.FileMode, owner *User) error {
	if err := os.Mkdir(dir, mode); err == nil {
		if owner != nil {
			if err := os.Lchown(dir, int(owner.UID), int(owner.GID)); err != nil {
				return err
			}
		}
		return os.Chmod(dir, mode) // umask
	} else if !errors.Is(err, fs.ErrExist) {
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
				return fmt.Errorf("build directory: %w", err)
			}
			return ensureDir(dir, mode, owner)
		}
		return fmt.Errorf("build directory: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: the build directory %s is not a directory (a symbolic link?)", ErrBuildDir, dir)
	}
	want := uint32(os.Geteuid())
	if owner != nil {
		want = owner.UID
	}
	if uid, ok := fileUID(st); ok && uid != want {
		if owner != nil && int(uid) == os.Geteuid() {
			// Ours, made by a concurrent builder that has not chowned it yet.
			if err := os.Lchown(dir, int(owner.UID), int(owner.GID)); err != nil {
				return err
			}
			return os.Chmod(dir, mode)
		}
		return fmt.Errorf("%w: the build directory %s belongs to uid %d, not %d", ErrBuildDir, dir, uid, want)
	}
	return nil
}

// searchableByOthers checks that another user can reach dir: it and every
// directory above it must be searchable by others.
func searchableByOthers(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%w: the build user cannot reach %s: %s is not searchable by other users (mode %s); choose a build directory below one that is, such as /var/tmp", ErrBuildDir, dir, d, st.Mode().Perm())
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}
