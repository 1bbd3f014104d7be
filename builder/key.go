package builder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/parser"
	"go/token"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// formatVersion changes whenever the builder's output for the same inputs
// may change (flags, checks, cache layout), so old entries are not reused.
const formatVersion = "ferry-builder/1"

// keyHash accumulates the inputs of a build, each as a length-prefixed
// name/value pair so no two input sets hash alike.
type keyHash struct{ h hash.Hash }

func newKeyHash() *keyHash { return &keyHash{h: sha256.New()} }

func (k *keyHash) add(name, value string) {
	fmt.Fprintf(k.h, "%d:%s=%d:%s\n", len(name), name, len(value), value)
}

func (k *keyHash) sum() string { return hex.EncodeToString(k.h.Sum(nil)) }

// addEnv adds the declared environment in sorted order.
func (k *keyHash) addEnv(env map[string]string) {
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k.add("env", n+"="+env[n])
	}
}

// addFiles adds files (name → content hash) in sorted order.
func (k *keyHash) addFiles(files map[string]string) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k.add("file", n+" "+files[n])
	}
}

// key returns the hex SHA-256 of every input of c's build.
func (b *Builder) key(c Component, tool *goToolchain) (string, error) {
	k := newKeyHash()
	k.add("format", formatVersion)
	k.add("kind", string(c.Kind))
	k.add("executor", c.executor())
	k.addEnv(c.Env)
	switch c.Kind {
	case KindGo:
		k.add("toolchain", tool.version)
		for _, n := range goKeyEnv {
			k.add("goenv", n+"="+tool.env[n])
		}
		k.add("args", strings.Join(goBuildArgs(c, "OUT"), " "))
		src, err := goSources(c.GoPackage)
		if err != nil {
			return "", err
		}
		k.add("module", src.module)
		k.add("package", src.pkgRel)
		k.addFiles(src.files)
	case KindCommand:
		k.add("command", c.Command)
		rel, err := filepath.Rel(c.Workdir, c.Output)
		if err != nil {
			return "", fmt.Errorf("output %q: %w", c.Output, err)
		}
		k.add("output", filepath.ToSlash(rel))
		for _, w := range c.Watch {
			k.add("watch", w)
		}
		files, err := commandSources(c)
		if err != nil {
			return "", err
		}
		k.addFiles(files)
	case KindWasm:
		sum, err := hashFile(c.Wasm)
		if err != nil {
			return "", err
		}
		k.add("wasm", sum)
	}
	return k.sum(), nil
}

// hashFile returns the hex SHA-256 of the file at p.
func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ---- Go sources ----

// goSourceSet is what a Go component's key covers.
type goSourceSet struct {
	module string            // module path of the main module
	pkgRel string            // package dir relative to the module root
	files  map[string]string // key name → content hash
}

// goBuildExts are the file extensions `go build` reads from a package
// directory for GOOS=wasip1 with cgo off (a superset).
var goBuildExts = map[string]bool{".go": true, ".s": true, ".S": true, ".h": true, ".syso": true}

// modRoot is a directory whose packages are built from local files: the
// main module or a module replaced by a local directory.
type modRoot struct {
	path string // module path
	dir  string // absolute directory
	name string // prefix of key names for its files
}

// goSources finds the files a build of the main package in pkgDir reads
// from local directories: the package, every package it transitively
// imports from the main module or from locally replaced modules, their
// embedded files, and go.mod, go.sum and vendor/modules.txt. See the package
// documentation for why this does not call `go list`.
func goSources(pkgDir string) (*goSourceSet, error) {
	root, err := findModuleRoot(pkgDir)
	if err != nil {
		return nil, err
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	modPath, replaces := parseGoMod(gomod)
	if modPath == "" {
		return nil, fmt.Errorf("%s: no module line", filepath.Join(root, "go.mod"))
	}
	pkgRel, err := filepath.Rel(root, pkgDir)
	if err != nil {
		return nil, err
	}
	s := &goSourceSet{module: modPath, pkgRel: filepath.ToSlash(pkgRel), files: map[string]string{}}
	s.files["go.mod"] = hashBytes(gomod)
	for _, name := range []string{"go.sum", filepath.Join("vendor", "modules.txt")} {
		if sum, err := hashFile(filepath.Join(root, name)); err == nil {
			s.files[filepath.ToSlash(name)] = sum
		} else if !os.IsNotExist(err) {
			return nil, err
		}
	}
	main := modRoot{path: modPath, dir: root, name: ""}
	roots := []modRoot{main}
	for _, r := range replaces {
		dir := r.dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		r := modRoot{path: r.path, dir: filepath.Clean(dir), name: "replace:" + r.path + "/"}
		if sum, err := hashFile(filepath.Join(r.dir, "go.mod")); err == nil {
			s.files[r.name+"go.mod"] = sum
		}
		roots = append(roots, r)
	}
	// Longest module path first, so a nested replaced module wins over its
	// parent.
	slices.SortFunc(roots, func(a, b modRoot) int { return len(b.path) - len(a.path) })
	vendor := filepath.Join(root, "vendor")
	if _, err := os.Stat(filepath.Join(vendor, "modules.txt")); err == nil {
		roots = append(roots, modRoot{path: "", dir: vendor, name: "vendor/"})
	}

	type pkg struct {
		dir  string
		root modRoot
	}
	seen := map[string]bool{pkgDir: true}
	queue := []pkg{{dir: pkgDir, root: main}}
	fset := token.NewFileSet()
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		imports, embeds, err := s.addPackage(fset, p.dir, p.root)
		if err != nil {
			return nil, err
		}
		if embeds {
			if err := s.addTree(p.dir, p.root); err != nil {
				return nil, err
			}
		}
		for _, imp := range imports {
			dir, r, ok := resolveImport(imp, roots)
			if !ok || seen[dir] {
				continue
			}
			seen[dir] = true
			queue = append(queue, pkg{dir: dir, root: r})
		}
	}
	return s, nil
}

// addPackage hashes the build files of the package in dir and returns its
// imports (from all files, whatever their build constraints) and whether
// any file has a //go:embed directive. A missing directory adds nothing:
// the build will report it.
func (s *goSourceSet) addPackage(fset *token.FileSet, dir string, r modRoot) ([]string, bool, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var imports []string
	embeds := false
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
			strings.HasSuffix(name, "_test.go") || !goBuildExts[filepath.Ext(name)] {
			continue
		}
		full := filepath.Join(dir, name)
		data, err := os.ReadFile(full)
		if err != nil {
			return nil, false, err
		}
		s.files[r.keyName(full)] = hashBytes(data)
		if filepath.Ext(name) != ".go" {
			continue
		}
		if bytes.Contains(data, []byte("//go:embed")) {
			embeds = true
		}
		f, err := parser.ParseFile(fset, full, data, parser.ImportsOnly)
		if err != nil || f == nil {
			continue // the compiler will report it; the file is hashed
		}
		for _, im := range f.Imports {
			if p, err := strconv.Unquote(im.Path.Value); err == nil {
				imports = append(imports, p)
			}
		}
	}
	return imports, embeds, nil
}

// addTree hashes every file below dir, as //go:embed may read any of them,
// skipping .git and nested modules (which embed cannot reach).
func (s *goSourceSet) addTree(dir string, r modRoot) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir {
				if d.Name() == ".git" {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		name := r.keyName(p)
		if _, done := s.files[name]; done {
			return nil
		}
		sum, err := hashFile(p)
		if err != nil {
			return err
		}
		s.files[name] = sum
		return nil
	})
}

func (r modRoot) keyName(p string) string {
	rel, err := filepath.Rel(r.dir, p)
	if err != nil {
		return p
	}
	return r.name + filepath.ToSlash(rel)
}

// resolveImport maps an import path to the local directory it is built
// from, if any. Standard library and required modules are not local: the
// toolchain version and go.sum pin them.
func resolveImport(imp string, roots []modRoot) (string, modRoot, bool) {
	for _, r := range roots {
		var rest string
		switch {
		case r.path == "": // vendor
			rest = imp
		case imp == r.path:
			rest = ""
		case strings.HasPrefix(imp, r.path+"/"):
			rest = strings.TrimPrefix(imp, r.path+"/")
		default:
			continue
		}
		dir := filepath.Join(r.dir, filepath.FromSlash(rest))
		if r.path == "" {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				continue
			}
		}
		if nestedModule(r.dir, dir) {
			continue
		}
		return dir, r, true
	}
	return "", modRoot{}, false
}

// nestedModule reports whether dir lies in a module nested below root (a
// directory between them, or dir itself, has a go.mod).
func nestedModule(root, dir string) bool {
	for d := dir; d != root && within(root, d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return true
		}
	}
	return false
}

// findModuleRoot returns the nearest directory at or above dir with a
// go.mod.
func findModuleRoot(dir string) (string, error) {
	for d := filepath.Clean(dir); ; {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod at or above %s", dir)
		}
		d = parent
	}
}

// localReplace is a go.mod replace directive pointing at a directory.
type localReplace struct{ path, dir string }

// parseGoMod returns the module path and the local-directory replacements
// of a go.mod file. It understands just enough of the syntax for that.
func parseGoMod(data []byte) (string, []localReplace) {
	var module string
	var reps []localReplace
	inReplace, inOther := false, false
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		for i := range f {
			if u, err := strconv.Unquote(f[i]); err == nil {
				f[i] = u
			}
		}
		switch {
		case inReplace || inOther:
			if f[0] == ")" {
				inReplace, inOther = false, false
				continue
			}
			if inReplace {
				if r, ok := replaceLine(f); ok {
					reps = append(reps, r)
				}
			}
		case f[0] == "module" && len(f) >= 2:
			module = f[1]
		case f[0] == "replace" && len(f) >= 2 && f[1] == "(":
			inReplace = true
		case f[0] == "replace":
			if r, ok := replaceLine(f[1:]); ok {
				reps = append(reps, r)
			}
		case len(f) >= 2 && f[len(f)-1] == "(":
			inOther = true
		}
	}
	return module, reps
}

// replaceLine parses "old [v] => new [v]" and keeps it if new is a
// directory (starts with ./, ../ or /).
func replaceLine(f []string) (localReplace, bool) {
	i := slices.Index(f, "=>")
	if i < 1 || i+1 >= len(f) {
		return localReplace{}, false
	}
	dst := f[i+1]
	if !(strings.HasPrefix(dst, "./") || strings.HasPrefix(dst, "../") || filepath.IsAbs(dst) || dst == "." || dst == "..") {
		return localReplace{}, false
	}
	return localReplace{path: f[0], dir: filepath.FromSlash(dst)}, true
}

// ---- command sources ----

// commandSources hashes the inputs of a command build: files under Workdir
// matched by Watch (all of them when Watch is empty) except Output and
// .git directories. A file's key covers its content and its executable bit.
func commandSources(c Component) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(c.Workdir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" && p != c.Workdir {
				return filepath.SkipDir
			}
			return nil
		}
		if p == c.Output {
			return nil
		}
		rel, err := filepath.Rel(c.Workdir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if len(c.Watch) > 0 && !slices.ContainsFunc(c.Watch, func(w string) bool { return matchGlob(w, rel) }) {
			return nil
		}
		switch {
		case d.Type().IsRegular():
			sum, err := hashFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			files[rel] = fmt.Sprintf("%s x=%t", sum, info.Mode()&0o111 != 0)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			files[rel] = "symlink " + target
		}
		return nil
	})
	return files, err
}

// checkPattern validates a Watch pattern: relative, slash-separated, no
// "..", valid path.Match syntax in every element.
func checkPattern(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || filepath.IsAbs(p) {
		return fmt.Errorf("%w: watch pattern %q must be a relative path", ErrInvalidComponent, p)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return fmt.Errorf("%w: watch pattern %q leaves the work directory", ErrInvalidComponent, p)
		}
		if _, err := path.Match(e, ""); err != nil {
			return fmt.Errorf("%w: watch pattern %q: %v", ErrInvalidComponent, p, err)
		}
	}
	return nil
}

// matchGlob reports whether the slash-separated relative path name matches
// pattern: "*", "?" and classes within an element as in path.Match, "**"
// for any number of elements, and a pattern that matches a leading part of
// name (a directory) matches everything below it.
func matchGlob(pattern, name string) bool {
	return matchElems(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchElems(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchElems(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if pat[0] == "." || pat[0] == "" {
			pat = pat[1:]
			continue
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return true // pattern exhausted: name is it, or lies below it
}
