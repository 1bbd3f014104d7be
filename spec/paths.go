package spec

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// within reports whether path p (absolute, clean) is dir or below it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// specPath checks p, a path written in the spec relative to the spec
// directory, and returns it made absolute. It reports absolute paths and
// paths that climb out of the spec directory with "..".
func (l *loader) specPath(p string, rng hcl.Range, what string) (string, bool) {
	if p == "" {
		l.diags = append(l.diags, errDiag(rng, "Invalid path", "The %s path is empty.", what))
		return "", false
	}
	if filepath.IsAbs(p) || strings.HasPrefix(p, "~") {
		l.diags = append(l.diags, errDiag(rng, "Path outside the spec directory",
			"The %s path %q is absolute; write it relative to the spec directory so the repository works wherever it is checked out.", what, p))
		return "", false
	}
	abs := filepath.Join(l.absDir, p)
	if !within(l.absDir, abs) {
		l.diags = append(l.diags, errDiag(rng, "Path outside the spec directory",
			"The %s path %q leaves the spec directory; everything a spec uses must be inside it, so a commit fully describes what is deployed.", what, p))
		return "", false
	}
	return abs, true
}

// checkExists reports when abs does not exist, is not of the wanted kind
// (a directory when wantDir, else a file), or resolves through symbolic
// links to somewhere outside the spec directory.
func (l *loader) checkExists(abs, written string, rng hcl.Range, notFound, what string, wantDir bool) bool {
	fi, err := os.Stat(abs)
	if err != nil {
		l.diags = append(l.diags, errDiag(rng, notFound,
			"The %s %q does not exist in the spec directory %s.", what, written, l.dir))
		return false
	}
	if wantDir && !fi.IsDir() {
		l.diags = append(l.diags, errDiag(rng, "Not a directory",
			"The %s %q must be a directory.", what, written))
		return false
	}
	if !wantDir && !fi.Mode().IsRegular() {
		l.diags = append(l.diags, errDiag(rng, "Not a file",
			"The %s %q must be a regular file.", what, written))
		return false
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil || l.realDir == "" || !within(l.realDir, real) {
		l.diags = append(l.diags, errDiag(rng, "Path outside the spec directory",
			"The %s %q leads outside the spec directory through a symbolic link; everything a spec uses must be inside it.", what, written))
		return false
	}
	return true
}

// credPath makes a credential path absolute against the spec directory
// when it is relative; absolute and "~/" paths are kept as written.
func (l *loader) credPath(p string) string {
	if p == "" || filepath.IsAbs(p) || p == "~" || strings.HasPrefix(p, "~/") {
		return p
	}
	return filepath.Join(l.absDir, p)
}

// notLinkedOut reports when abs exists and resolves through symbolic links
// to somewhere outside the spec directory. A path that does not exist (yet)
// passes.
func (l *loader) notLinkedOut(abs, written string, rng hcl.Range, what string) bool {
	if _, err := os.Lstat(abs); err != nil {
		return true
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil || l.realDir == "" || !within(l.realDir, real) {
		l.diags = append(l.diags, errDiag(rng, "Path outside the spec directory",
			"The %s %q leads outside the spec directory through a symbolic link; everything a spec uses must be inside it.", what, written))
		return false
	}
	return true
}
