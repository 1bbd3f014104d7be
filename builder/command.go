package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// buildCommand runs `sh -c Command` in the scratch copy of Workdir, as the
// build user, with PATH, a scratch HOME and TMPDIR, the build user's Go
// caches and the declared Env only, and returns the bytes of Output.
func (b *Builder) buildCommand(ctx context.Context, c Component) ([]byte, string, error) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, "", fmt.Errorf("%w: sh: %v", ErrToolchainMissing, err)
	}
	root := c.root()
	if root == "" {
		root = c.Workdir
	}
	if !within(root, c.Output) {
		return nil, "", fmt.Errorf("%w: output path %q is outside %q", ErrInvalidComponent, c.Output, root)
	}
	sb, err := b.newSandbox(root)
	if err != nil {
		return nil, "", err
	}
	defer sb.done()
	workdir, err := sb.path(c.Workdir)
	if err != nil {
		return nil, "", err
	}
	output, err := sb.path(c.Output)
	if err != nil {
		return nil, "", err
	}
	if err := os.Remove(output); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("remove stale output: %w", err)
	}
	env := sb.baseEnv()
	env["GOCACHE"] = filepath.Join(sb.state, "gocache")
	env["GOMODCACHE"] = filepath.Join(sb.state, "gomodcache")
	env["GOPATH"] = filepath.Join(sb.state, "gopath")
	for n, v := range c.Env {
		env[n] = v
	}
	cmd := exec.CommandContext(ctx, sh, "-c", c.Command)
	cmd.Dir = workdir
	cmd.Env = envList(env)
	b.log.Debug("build command", "component", c.ID(), "dir", workdir, "command", c.Command, "user", b.userName())
	if output, err := run(ctx, cmd, "sh -c", sb.owner); err != nil {
		return nil, output, err
	}
	wasm, err := sb.readOutput(output, "output")
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("%w: the command succeeded but did not write %s", ErrOutputMissing, c.Output)
	}
	if err != nil {
		return nil, "", err
	}
	return wasm, "", nil
}

// baseEnv is what every build sees before its own settings: PATH, and
// HOME and TMPDIR inside the scratch directory.
func (s *sandbox) baseEnv() map[string]string {
	return map[string]string{
		"PATH":   os.Getenv("PATH"),
		"HOME":   s.home,
		"TMPDIR": filepath.Join(s.home, "tmp"),
	}
}

// userName names the build user in logs.
func (b *Builder) userName() string {
	if b.switchUser() {
		return b.user.String()
	}
	return "self"
}
