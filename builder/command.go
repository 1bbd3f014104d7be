package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// buildCommand runs `sh -c Command` in Workdir with PATH, HOME and the
// declared Env only, and returns the bytes of Output.
func (b *Builder) buildCommand(ctx context.Context, c Component) ([]byte, string, error) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, "", fmt.Errorf("%w: sh: %v", ErrToolchainMissing, err)
	}
	if err := os.Remove(c.Output); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("remove stale output: %w", err)
	}
	env := map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME")}
	for n, v := range c.Env {
		env[n] = v
	}
	cmd := exec.CommandContext(ctx, sh, "-c", c.Command)
	cmd.Dir = c.Workdir
	cmd.Env = envList(env)
	b.log.Debug("build command", "component", c.ID(), "dir", c.Workdir, "command", c.Command)
	if output, err := run(ctx, cmd, "sh -c"); err != nil {
		return nil, output, err
	}
	wasm, err := os.ReadFile(c.Output)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("%w: the command succeeded but did not write %s", ErrOutputMissing, c.Output)
	}
	if err != nil {
		return nil, "", err
	}
	return wasm, "", nil
}
