package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestUpAndAgentFlags: ferry up takes the notification flags ferry agent
// has, and both take the dashboard's viewer token.
func TestUpAndAgentFlags(t *testing.T) {
	s := streams{out: &strings.Builder{}, err: &strings.Builder{}}
	for name, cmd := range map[string]*cobra.Command{"up": newUpCmd(s), "agent": newAgentCmd(s)} {
		for _, f := range []string{"notify-webhook", "notify-secret-file", "notify-slack", "viewer-token-file"} {
			if cmd.Flags().Lookup(f) == nil {
				t.Errorf("ferry %s has no --%s", name, f)
			}
		}
	}
}

func TestViewerTokenFile(t *testing.T) {
	dir := t.TempDir()
	short, good := filepath.Join(dir, "short"), filepath.Join(dir, "good")
	os.WriteFile(short, []byte("tiny\n"), 0o600)
	os.WriteFile(good, []byte("a-viewer-token-long-enough\n"), 0o600)
	t.Setenv("FERRY_AGENT_VIEWER_TOKEN_FILE", "")
	for _, c := range []struct {
		file, want, err string
	}{
		{"", "", ""},
		{good, "a-viewer-token-long-enough", ""},
		{short, "", "at least 16"},
		{filepath.Join(dir, "missing"), "", "no such file"},
	} {
		f := dashboardFlags{viewerTokenFile: c.file}
		got, err := f.viewerToken()
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("viewerToken(%q) = %q, %v; want %q, error containing %q", c.file, got, err, c.want, c.err)
		}
		if err != nil && strings.Contains(err.Error(), "tiny") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}
