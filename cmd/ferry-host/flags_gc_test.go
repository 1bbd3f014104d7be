package main

import (
	"errors"
	"io"
	"testing"

	"github.com/ferry-wasm/ferry/targets/host"
)

func TestGCFlags(t *testing.T) {
	tests := []struct {
		args        []string
		wantGC      bool
		wantBallast int64
	}{
		{nil, true, host.DefaultGCBallast},
		{[]string{"--deploy-gc=false"}, false, host.DefaultGCBallast},
		{[]string{"--deploy-gc=true", "--gc-ballast-mib", "64"}, true, 64 << 20},
		{[]string{"--gc-ballast-mib", "0"}, true, -1},
	}
	for _, tt := range tests {
		args := append([]string{"--state-dir", t.TempDir(), "--insecure-skip-verify"}, tt.args...)
		c, err := parseFlags(args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", args, err)
		}
		if c.deployGC != tt.wantGC || c.gcBallast() != tt.wantBallast {
			t.Errorf("parseFlags(%q): deployGC %v, ballast %d; want %v, %d", tt.args, c.deployGC, c.gcBallast(), tt.wantGC, tt.wantBallast)
		}
	}
	if c, err := parseFlags([]string{"--state-dir", t.TempDir(), "--insecure-skip-verify", "--compile-workers", "1"}, func(string) string { return "" }, io.Discard); err != nil || c.compileWorkers != 1 {
		t.Errorf("--compile-workers 1: %+v %v", c, err)
	}
	if _, err := parseFlags([]string{"--state-dir", t.TempDir(), "--insecure-skip-verify", "--compile-workers", "-2"}, func(string) string { return "" }, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("--compile-workers -2: err %v, want a usage error", err)
	}
	if _, err := parseFlags([]string{"--state-dir", t.TempDir(), "--insecure-skip-verify", "--gc-ballast-mib", "-1"}, func(string) string { return "" }, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("--gc-ballast-mib -1: err %v, want a usage error", err)
	}
}
