//go:build unix

package builder

import (
	"io/fs"
	"os/exec"
	"syscall"
	"time"
)

// setProcessGroup makes cmd the leader of a new process group and, when its
// context ends, kills the whole group: the go command's compilers and a
// shell's children die with it. With u set, cmd runs as u's uid and gid
// with no supplementary groups.
func setProcessGroup(cmd *exec.Cmd, u *User) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
	}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
}

// fileUID returns the owner of a file.
func fileUID(st fs.FileInfo) (uint32, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return s.Uid, true
}
