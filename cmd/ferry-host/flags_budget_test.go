package main

import (
	"io"
	"testing"
)

// TestMemoryBudgetFlag: --memory-budget takes sizes with binary suffixes
// and refuses anything else with a usage error.
func TestMemoryBudgetFlag(t *testing.T) {
	base := []string{"--state-dir", t.TempDir(), "--insecure-skip-verify"}
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"2GiB", 2 << 30, true}, {"512MiB", 512 << 20, true}, {"64KiB", 64 << 10, true}, {"1000", 1000, true},
		{"0", 0, true}, {"-1", 0, false}, {"lots", 0, false}, {"2GB", 0, false},
	} {
		c, err := parseFlags(append(base, "--memory-budget", tt.in), func(string) string { return "" }, io.Discard)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if tt.ok && int64(c.memoryBudget) != tt.want {
			t.Errorf("%q: %d, want %d", tt.in, c.memoryBudget, tt.want)
		}
	}
}
