package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
)

// goToolchain is the resolved Go toolchain of a Builder.
type goToolchain struct {
	path    string            // absolute path of the go command
	version string            // GOVERSION, e.g. "go1.26.8"
	env     map[string]string // settings passed through to builds
}

// goPassEnv are the go settings read once with `go env` and passed to every
// build explicitly (with GOENV=off), so module and build caches work
// offline as they do for the user and nothing else leaks in.
var goPassEnv = []string{
	"GOPATH", "GOMODCACHE", "GOCACHE", "GOROOT",
	"GOPROXY", "GONOPROXY", "GOPRIVATE", "GOSUMDB", "GONOSUMDB", "GOINSECURE", "GOAUTH",
	"GOFLAGS", "GOEXPERIMENT", "GOWASM",
}

// goKeyEnv are the passed settings that can change the output; they are
// part of the cache key. (Proxy and cache locations cannot: go.sum pins
// the content.)
var goKeyEnv = []string{"GOFLAGS", "GOEXPERIMENT", "GOWASM", "GOTOOLCHAIN"}

// goToolchain resolves the go command and its settings once per Builder.
func (b *Builder) goToolchain(ctx context.Context) (*goToolchain, error) {
	b.toolMu.Lock()
	defer b.toolMu.Unlock()
	if b.tool != nil {
		return b.tool, nil
	}
	path, err := exec.LookPath(b.goBinary)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v — install Go 1.26+ or set GoBinary", ErrToolchainMissing, b.goBinary, errors.Unwrap(err))
	}
	toolchain := os.Getenv("GOTOOLCHAIN")
	if toolchain == "" {
		toolchain = "local"
	}
	cmd := exec.CommandContext(ctx, path, append([]string{"env", "-json", "GOVERSION"}, goPassEnv...)...)
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+toolchain)
	cmd.Dir = os.TempDir() // no go.mod or go.work of the caller's directory
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s env: %v: %s", ErrToolchainMissing, path, err, bytes.TrimSpace(stderr.Bytes()))
	}
	env := map[string]string{}
	if err := json.Unmarshal(out, &env); err != nil {
		return nil, fmt.Errorf("%s env: %w", path, err)
	}
	version := env["GOVERSION"]
	if version == "" {
		return nil, fmt.Errorf("%w: %s env printed no GOVERSION", ErrToolchainMissing, path)
	}
	delete(env, "GOVERSION")
	env["GOTOOLCHAIN"] = toolchain
	b.tool = &goToolchain{path: path, version: version, env: env}
	b.log.Debug("go toolchain", "path", path, "version", version)
	return b.tool, nil
}

// goBuildArgs are the arguments of `go build` for c, writing to out.
func goBuildArgs(c Component, out string) []string {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid="}
	if c.executor() == ExecutorReactor {
		args = append(args, "-buildmode=c-shared")
	}
	return append(args, "-o", out, ".")
}

// goEnv is the complete environment of a Go build: PATH, HOME and TMPDIR
// of the sandbox, the toolchain's settings (with the build user's own
// caches when it is another user), the declared Env, then the fixed
// target.
func goEnv(c Component, tool *goToolchain, sb *sandbox) []string {
	env := sb.baseEnv()
	env["GOENV"], env["GOWORK"], env["LANG"], env["LC_ALL"] = "off", "off", "C", "C"
	for n, v := range tool.env {
		if v != "" {
			env[n] = v
		}
	}
	if sb.owner != nil {
		env["GOCACHE"] = filepath.Join(sb.state, "gocache")
		env["GOMODCACHE"] = filepath.Join(sb.state, "gomodcache")
		env["GOPATH"] = filepath.Join(sb.state, "gopath")
	}
	for n, v := range c.Env {
		env[n] = v
	}
	env["GOOS"], env["GOARCH"], env["CGO_ENABLED"] = "wasip1", "wasm", "0"
	return envList(env)
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for n, v := range env {
		list = append(list, n+"="+v)
	}
	sort.Strings(list)
	return list
}

// buildGo runs `go build` for c in a scratch copy of its source tree, as
// the build user, and returns the module bytes, or the compiler's output
// with the error.
func (b *Builder) buildGo(ctx context.Context, c Component, tool *goToolchain) ([]byte, string, error) {
	root := c.root()
	if root == "" {
		mod, err := findModuleRoot(c.GoPackage)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %s: %v", ErrInvalidComponent, c.GoPackage, err)
		}
		root = mod
	}
	sb, err := b.newSandbox(root)
	if err != nil {
		return nil, "", err
	}
	defer sb.done()
	pkg, err := sb.path(c.GoPackage)
	if err != nil {
		return nil, "", err
	}
	out := filepath.Join(sb.home, "out.wasm")
	cmd := exec.CommandContext(ctx, tool.path, goBuildArgs(c, out)...)
	cmd.Dir = pkg
	cmd.Env = goEnv(c, tool, sb)
	b.log.Debug("go build", "component", c.ID(), "dir", pkg, "args", cmd.Args[1:], "user", b.userName())
	if output, err := run(ctx, cmd, "go build", sb.owner); err != nil {
		return nil, output, err
	}
	wasm, err := sb.readOutput(out, "go build output")
	if err != nil {
		return nil, "", err
	}
	return wasm, "", nil
}

// run runs cmd in its own process group (killed as a whole when ctx ends)
// and returns its combined output, trimmed, when it fails. label names the
// tool in errors. With as set, cmd runs as that user.
func run(ctx context.Context, cmd *exec.Cmd, label string, as *User) (string, error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	setProcessGroup(cmd, as)
	err := cmd.Run()
	if err == nil {
		return "", nil
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("%w (%s killed)", ctx.Err(), label)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return trimOutput(buf.Bytes()), fmt.Errorf("%w: %s: %v", ErrBuildFailed, label, err)
	}
	return trimOutput(buf.Bytes()), fmt.Errorf("%s: %w", label, err)
}
