package device

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// madvPageout is MADV_PAGEOUT (Linux 5.4+), the same on every architecture.
const madvPageout = 21

// pageOutExecutable asks the kernel to drop the resident pages of the
// executable's read-only mappings (text and read-only data) from this
// process. Errors (an older kernel's EINVAL) are ignored: the pages then
// stay, as before.
func pageOutExecutable() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	for _, r := range exeReadOnlyRanges(maps, exe) {
		syscall.Syscall(syscall.SYS_MADVISE, r[0], r[1]-r[0], madvPageout) //nolint:errcheck // best effort
	}
}

// exeReadOnlyRanges returns the [start, end) of each mapping in a
// /proc/PID/maps text that maps file exe private and not writable.
func exeReadOnlyRanges(maps []byte, exe string) [][2]uintptr {
	var out [][2]uintptr
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || strings.Join(f[5:], " ") != exe {
			continue
		}
		perms := f[1]
		if len(perms) < 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, [2]uintptr{uintptr(start), uintptr(end)})
	}
	return out
}
