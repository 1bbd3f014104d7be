package main

import (
	"errors"
	"io"
	"testing"
)

// TestDeviceMemoryFlags: a device has no GC ballast, no memory limit and
// trims its memory unless told otherwise; bad values are usage errors.
func TestDeviceMemoryFlags(t *testing.T) {
	base := []string{"--server", "http://127.0.0.1:1", "--data-dir", t.TempDir(), "--trust-key", "k.pub"}
	env := func(string) string { return "" }
	for _, tc := range []struct {
		args    []string
		ballast int64
		limit   int64
		noTrim  bool
	}{
		{nil, -1, 0, false},
		{[]string{"--gc-ballast-mib", "8", "--memory-limit", "64MiB", "--no-trim"}, 8 << 20, 64 << 20, true},
		{[]string{"--gc-ballast-mib", "0", "--memory-limit", "1048576"}, -1, 1 << 20, false},
	} {
		c, err := parseDeviceFlags(append(append([]string{}, base...), tc.args...), env, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := c.gcBallast(); got != tc.ballast {
			t.Errorf("%q: ballast %d, want %d", tc.args, got, tc.ballast)
		}
		if int64(c.memoryLimit) != tc.limit || c.noTrim != tc.noTrim {
			t.Errorf("%q: memory limit %d, no-trim %v; want %d, %v", tc.args, c.memoryLimit, c.noTrim, tc.limit, tc.noTrim)
		}
	}
	for _, bad := range [][]string{{"--gc-ballast-mib", "-1"}, {"--memory-limit", "lots"}, {"--memory-limit", "-5MiB"}} {
		if _, err := parseDeviceFlags(append(append([]string{}, base...), bad...), env, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: err %v, want a usage error", bad, err)
		}
	}
}
