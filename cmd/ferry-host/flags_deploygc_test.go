package main

import (
	"io"
	"testing"
)

func TestDeployGCFlag(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--deploy-gc=false"}, false},
		{[]string{"--deploy-gc=true"}, true},
	}
	for _, tt := range tests {
		args := append([]string{"--state-dir", t.TempDir(), "--insecure-skip-verify"}, tt.args...)
		c, err := parseFlags(args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", args, err)
		}
		if c.deployGC != tt.want {
			t.Errorf("parseFlags(%q).deployGC = %v, want %v", tt.args, c.deployGC, tt.want)
		}
	}
}
