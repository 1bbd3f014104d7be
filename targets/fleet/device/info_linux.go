package device

import "syscall"

// freeDisk is the space available to an unprivileged user on the file
// system holding dir, in bytes (0 when statfs fails).
func freeDisk(dir string) uint64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0
	}
	return uint64(st.Bavail) * uint64(st.Bsize) //nolint:unconvert,gosec // field types differ per GOARCH
}
