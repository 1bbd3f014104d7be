package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// buildIsoAttack is the build script a hostile committer pushes: it reads
// the environment of its parent (the agent), scans the environment and
// command line of every process, reads the agent's key, credentials and
// token files (their paths are on the agent's command line and in its
// credentials file), and writes everything it got to a world-writable
// loot directory outside the checkout. Then it builds normally, so the
// round succeeds and nothing looks wrong.
const buildIsoAttack = `#!/bin/sh
loot="$1/loot.$$"
{
  echo "attack ran as uid $(id -u) ppid $PPID"
  echo "--- parent environ"; cat /proc/$PPID/environ
  echo "--- parent cmdline"; cat /proc/$PPID/cmdline
  echo "--- parent mem"; head -c 4096 /proc/$PPID/mem
  for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do echo "--- $f"; cat "$f"; echo; done
  shift
  for f in "$@"; do echo "--- file $f"; cat "$f"; done
  echo "--- own env"; env
} > "$loot" 2>&1
cp hello.src out.wasm
`

// TestBuildCannotReadAgentSecrets: a spec committer's build command must
// not reach any secret of the agent — not its environment (the signing
// key's password, the API token, webhook secrets, host tokens), not its
// files (the signing key, the credentials file, a token file), not by
// /proc/$PPID/environ nor by scanning every process. The real ferry agent
// binary runs with its secrets in its environment and files, as an
// operator runs it; the attack is a real shell script in the pushed tree.
func TestBuildCannotReadAgentSecrets(t *testing.T) {
	bin := agentE2EBuild(t, "ferry")
	e := agentE2ENewEnv(t) // FERRY_PASSWORD, FERRY_HOST_TOKEN, FERRY_AGENT_TOKEN, FERRY_WEBHOOK_GITHUB_SECRET
	gitlab := buildIsoRandom(t, "gitlab-secret")
	t.Setenv("FERRY_WEBHOOK_GITLAB_TOKEN", gitlab)
	reg := agentE2ENewRegistry(t)
	h := agentE2ENewHost(t, e.pubPath)

	// The agent's files: a host token file and the credentials file naming
	// it, both 0600 in the operator's data directory.
	dataDir := t.TempDir()
	tokenFile := filepath.Join(dataDir, "host.token")
	if err := os.WriteFile(tokenFile, []byte(agentE2EHostToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	credMarker := buildIsoRandom(t, "credentials-file")
	creds := filepath.Join(dataDir, "creds.hcl")
	if err := os.WriteFile(creds, []byte(fmt.Sprintf("# %s\ncredential \"local\" {\n  endpoints  = [\"http://127.0.0.1:*\"]\n  token_file = %q\n}\n", credMarker, tokenFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(e.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	keyLines := strings.Split(strings.TrimSpace(string(key)), "\n")
	keyBody := keyLines[len(keyLines)/2] // a line of the encrypted key itself

	// Where the attack drops what it found: a directory anyone can write.
	loot, err := os.MkdirTemp("", "ferry-loot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(loot) })
	if err := os.Chmod(loot, 0o777); err != nil {
		t.Fatal(err)
	}

	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	stealHCL := fmt.Sprintf(`app "steal" {
  hosts = ["steal.localhost"]

  component "web" {
    build {
      command = "sh ./attack.sh '%s' '%s' '%s' '%s'"
      output  = "./out.wasm"
      watch   = ["attack.sh", "hello.src"]
    }
    executor = "wagi"
    routes   = ["/..."]
  }
}
`, loot, e.keyPath, creds, tokenFile)
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"steal"}, stealHCL))
	w.Write("attack.sh", buildIsoAttack)
	w.WriteBytes("hello.src", agentE2EWasm(t, "built anyway"))
	c1 := w.Commit("an innocent-looking build")
	w.Push()

	args := agentE2EAgentArgs(t, e, srv.URL(), t.TempDir(), "--interval", "1h", "--credentials", creds)
	a := agentE2EStartAgentProc(t, bin, args)
	r := agentE2EWaitRound(t, a, "for "+c1, 2*time.Minute, func(r history.Round) bool {
		return r.Commit == c1 && r.Result != history.RoundRunning
	})
	if r.Result != history.RoundSucceeded {
		t.Fatalf("the round of %s: %s, error %q; a build that only reads what it may must still succeed", c1, r.Result, r.Error)
	}
	agentE2EWantServing(t, h.AppsURL, "steal", "built anyway")

	found, err := filepath.Glob(filepath.Join(loot, "loot.*"))
	if err != nil || len(found) != 1 {
		t.Fatalf("the attack left %d loot files (%v), want 1: the build command did not run as written", len(found), err)
	}
	got, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "attack ran as uid") {
		t.Fatalf("the attack did not run:\n%s", got)
	}
	secrets := map[string]string{
		"FERRY_PASSWORD (the signing key's password)": agentE2EKeyPass,
		"FERRY_HOST_TOKEN / the host token file":      agentE2EHostToken,
		"FERRY_AGENT_TOKEN":                           agentE2EAPIToken,
		"FERRY_WEBHOOK_GITHUB_SECRET":                 agentE2EHookSecret,
		"FERRY_WEBHOOK_GITLAB_TOKEN":                  gitlab,
		"the signing key file":                        keyBody,
		"the credentials file":                        credMarker,
	}
	for what, v := range secrets {
		if strings.Contains(string(got), v) {
			t.Errorf("the build command read %s", what)
		}
	}
	if t.Failed() {
		t.Logf("what the attack got (head):\n%s", buildIsoHead(string(got), 40))
	}
}

func buildIsoRandom(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func buildIsoHead(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	for i, l := range lines {
		if len(l) > 200 {
			lines[i] = l[:200] + "…"
		}
	}
	return strings.Join(lines, "\n")
}
