//go:build unix

package builder

import (
	"os/exec"
	"syscall"
	"time"
)

// setProcessGroup makes cmd the leader of a new process group and, when its
// context ends, kills the whole group: the go command's compilers and a
// shell's children die with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
}
