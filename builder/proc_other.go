//go:build !unix

package builder

import (
	"os/exec"
	"time"
)

// setProcessGroup only bounds the wait for output pipes after a kill on
// systems without process groups.
func setProcessGroup(cmd *exec.Cmd) { cmd.WaitDelay = 5 * time.Second }
