//go:build !unix

package builder

import (
	"io/fs"
	"os/exec"
	"time"
)

// setProcessGroup only bounds the wait for output pipes after a kill on
// systems without process groups; builds run as the builder's own user.
func setProcessGroup(cmd *exec.Cmd, _ *User) { cmd.WaitDelay = 5 * time.Second }

// fileUID is unknown on systems without unix owners.
func fileUID(fs.FileInfo) (uint32, bool) { return 0, false }
