package procsec

import "syscall"

// prSetDumpable is PR_SET_DUMPABLE of <linux/prctl.h>.
const prSetDumpable = 4

// HideFromSameUser marks the calling process non-dumpable
// (prctl(PR_SET_DUMPABLE, 0)): its /proc/<pid> files then belong to root,
// so processes of the same uid without CAP_SYS_PTRACE can no longer read
// its environment or memory or ptrace it, and it writes no core dump. It
// holds for the whole process (all threads) until it execs. It does not
// protect against root.
func HideFromSameUser() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// Dumpable reports whether the process is dumpable (PR_GET_DUMPABLE).
func Dumpable() (bool, error) {
	const prGetDumpable = 3
	r, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetDumpable, 0, 0)
	if errno != 0 {
		return false, errno
	}
	return r != 0, nil
}
