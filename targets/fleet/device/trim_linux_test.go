package device

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExeReadOnlyRanges(t *testing.T) {
	const exe = "/opt/ferry/ferry host"
	maps := `00400000-0103c000 r-xp 00000000 fd:01 123 /opt/ferry/ferry host
0103c000-01e42000 r--p 00c3c000 fd:01 123 /opt/ferry/ferry host
01e42000-01f10000 rw-p 01a42000 fd:01 123 /opt/ferry/ferry host
01f10000-03f5f000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fd:01 456 /opt/ferry/other
7f0000002000-7f0000003000 r--s 00000000 fd:01 123 /opt/ferry/ferry host
7f0000004000-7f0000003000 r--p 00000000 fd:01 123 /opt/ferry/ferry host
zzzz-7f0000005000 r--p 00000000 fd:01 123 /opt/ferry/ferry host
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
`
	got := exeReadOnlyRanges([]byte(maps), exe)
	want := [][2]uintptr{{0x400000, 0x103c000}, {0x103c000, 0x1e42000}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ranges (-want +got):\n%s", diff)
	}
}

// TestPageOutExecutable: after it, this test binary's file-backed resident
// memory is smaller than before (the pages the test run touched are
// dropped; the few needed to go on fault back in).
func TestPageOutExecutable(t *testing.T) {
	before := rssFileKB(t)
	pageOutExecutable()
	after := rssFileKB(t)
	t.Logf("RssFile %d kB -> %d kB", before, after)
	if after >= before || before-after < 512 {
		t.Errorf("RssFile went from %d kB to %d kB, want it at least 512 kB smaller", before, after)
	}
}

func rssFileKB(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}
