package builder

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

// Kind says how a component is built.
type Kind string

// The kinds of component.
const (
	// KindGo builds Component.GoPackage with the Go toolchain for wasip1.
	KindGo Kind = "go"
	// KindCommand runs Component.Command and collects Component.Output.
	KindCommand Kind = "command"
	// KindWasm reads the prebuilt module Component.Wasm.
	KindWasm Kind = "wasm"
)

// Executors a component can target. The empty string means ExecutorWAGI.
const (
	// ExecutorWAGI runs a WASI command (_start) per request.
	ExecutorWAGI = "wagi"
	// ExecutorReactor initialises a module once (_initialize) and calls its
	// handler export per request.
	ExecutorReactor = "reactor"
)

// Component is the builder's input: one component of an app. All paths are
// absolute. The zero value is not buildable; Kind and the fields that kind
// uses must be set.
type Component struct {
	// App and Name identify the component in messages as "App/Name".
	App, Name string
	// Kind selects the build: KindGo, KindCommand or KindWasm.
	Kind Kind
	// Dir is the source root (the repository or spec directory). When set,
	// GoPackage, Workdir, Output and Wasm must lie inside it, and Watch
	// patterns may not leave it. Empty disables the check.
	Dir string
	// Root is the repository root (Dir or a directory above it): every file
	// the build reads — a prebuilt wasm file, Go sources, package
	// directories, go.mod and local replacements — must resolve inside it,
	// through any symbolic link, or the build fails with ErrOutsideRoot.
	// Empty means Dir; with both empty nothing is checked.
	Root string
	// GoPackage is the directory of the Go main package (KindGo).
	GoPackage string
	// Executor is ExecutorWAGI or ExecutorReactor; empty means WAGI. For Go,
	// reactor builds use -buildmode=c-shared.
	Executor string
	// Command is run with `sh -c` in Workdir (KindCommand).
	Command string
	// Workdir is the command's working directory (KindCommand).
	Workdir string
	// Output is the file the command writes (KindCommand). It is removed
	// before the command runs, so a stale file is never collected.
	Output string
	// Watch lists the inputs of a command build as slash-separated globs
	// relative to Workdir ("*" within a path element, "**" across elements;
	// a pattern naming a directory covers everything below it). Empty means
	// every file under Workdir except Output and .git directories.
	Watch []string
	// Wasm is the prebuilt module (KindWasm).
	Wasm string
	// Env is the declared build environment. Go builds and commands see it
	// on top of a minimal environment; nothing else leaks in. It is part of
	// the cache key.
	Env map[string]string
}

// ID returns "App/Name".
func (c Component) ID() string { return c.App + "/" + c.Name }

func (c Component) executor() string {
	if c.Executor == "" {
		return ExecutorWAGI
	}
	return c.Executor
}

// validate checks the fields the component's kind needs.
func (c Component) validate() error {
	switch c.executor() {
	case ExecutorWAGI, ExecutorReactor:
	default:
		return fmt.Errorf("%w: unknown executor %q (want %q or %q)", ErrInvalidComponent, c.Executor, ExecutorWAGI, ExecutorReactor)
	}
	var paths []namedPath
	switch c.Kind {
	case KindGo:
		paths = []namedPath{{"go package", c.GoPackage}}
	case KindCommand:
		if strings.TrimSpace(c.Command) == "" {
			return fmt.Errorf("%w: command is empty", ErrInvalidComponent)
		}
		paths = []namedPath{{"workdir", c.Workdir}, {"output", c.Output}}
		for _, w := range c.Watch {
			if err := checkPattern(w); err != nil {
				return err
			}
		}
	case KindWasm:
		paths = []namedPath{{"wasm", c.Wasm}}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidComponent, c.Kind)
	}
	for _, p := range paths {
		if p.path == "" {
			return fmt.Errorf("%w: %s path is empty", ErrInvalidComponent, p.name)
		}
		if !filepath.IsAbs(p.path) {
			return fmt.Errorf("%w: %s path %q is not absolute", ErrInvalidComponent, p.name, p.path)
		}
		if c.Dir != "" && !within(c.Dir, p.path) {
			return fmt.Errorf("%w: %s path %q escapes %q", ErrInvalidComponent, p.name, p.path, c.Dir)
		}
	}
	return nil
}

type namedPath struct{ name, path string }

// within reports whether path is root or below it.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// requiredExports is abi.RequiredExports for the component's executor.
func (c Component) requiredExports() []string { return abi.RequiredExports(c.executor()) }
