package builder

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Test for them with errors.Is; the error returned carries
// the component name and details.
var (
	// ErrToolchainMissing means the Go toolchain (Options.GoBinary) or the
	// shell for a command component cannot be found. Retrying does not help
	// until it is installed.
	ErrToolchainMissing = errors.New("toolchain not found")
	// ErrBuildFailed means the compiler or build command exited with an
	// error; the BuildError carries its output.
	ErrBuildFailed = errors.New("build failed")
	// ErrOutputMissing means a command component succeeded but did not
	// write its declared output file.
	ErrOutputMissing = errors.New("build output missing")
	// ErrInvalidModule means the bytes are not a valid WebAssembly module.
	ErrInvalidModule = errors.New("invalid wasm module")
	// ErrImportNotOffered means the module imports something ferry-host
	// does not offer.
	ErrImportNotOffered = errors.New("import not offered by the host")
	// ErrMissingExport means the module lacks an export its executor needs
	// (or has it with the wrong signature).
	ErrMissingExport = errors.New("missing export")
	// ErrInvalidComponent means the Component itself is malformed: an
	// unknown kind or executor, a missing or relative path, or a path that
	// escapes Component.Dir.
	ErrInvalidComponent = errors.New("invalid component")
	// ErrOutsideRoot means a file the build would read resolves, through a
	// symbolic link, to somewhere outside Component.Root (or Dir): a
	// prebuilt wasm file, a Go source, package directory, go.mod or local
	// replacement. The message names the path inside the root and shows
	// nothing of the outside file. Retrying does not help.
	ErrOutsideRoot = errors.New("path leads outside the repository")
	// ErrBuildDir means the scratch directory builds run in
	// (Options.WorkDir) cannot be used: it is a symbolic link, belongs to
	// another user, or the build user cannot reach it. Retrying does not
	// help until the directory is fixed or another is chosen.
	ErrBuildDir = errors.New("unusable build directory")
)

// BuildError is the error of one component. Its message starts with the
// component's name ("app/component") and, for a failed tool, ends with the
// tool's own output (trimmed to OutputLimit bytes).
type BuildError struct {
	// Component is "app/name".
	Component string
	// Op names the step that failed: "hash", "build", "check", "cache".
	Op string
	// Output is the tool's combined output, trimmed; empty for non-tool
	// errors.
	Output string
	// Err is the cause; it wraps one of the sentinel errors where one fits.
	Err error
}

// Error implements error.
func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %v", e.Component, e.Op, e.Err)
	if out := strings.TrimSpace(e.Output); out != "" {
		b.WriteString("\n")
		b.WriteString(out)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *BuildError) Unwrap() error { return e.Err }

// OutputLimit is the most bytes of a tool's output kept in a BuildError.
const OutputLimit = 8 << 10

// trimOutput keeps the head and the tail of out within OutputLimit bytes.
func trimOutput(out []byte) string {
	if len(out) <= OutputLimit {
		return string(out)
	}
	head, tail := OutputLimit*3/4, OutputLimit/4
	return fmt.Sprintf("%s\n… (%d bytes elided) …\n%s", out[:head], len(out)-head-tail, out[len(out)-tail:])
}
