package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/targets"
)

// fileTarget is a targets.Target whose state lives in a JSON file, so that
// it outlives a killed agent process. Writes are atomic (temp + rename).
type fileTarget struct {
	path  string
	block func(ctx context.Context, app string) // called before a Put takes effect
	mu    stdsync.Mutex
	puts  int
}

func (f *fileTarget) load() ([]targets.ObservedApp, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var apps []targets.ObservedApp
	return apps, json.Unmarshal(b, &apps)
}

func (f *fileTarget) save(apps []targets.ObservedApp) error {
	b, err := json.Marshal(apps)
	if err != nil {
		return err
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f.path)
}

func (f *fileTarget) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.load()
}

func (f *fileTarget) Put(ctx context.Context, want targets.DesiredApp) (targets.PutResult, error) {
	return targets.PutResult{}, f.put(ctx, want)
}

func (f *fileTarget) put(ctx context.Context, want targets.DesiredApp) error {
	if f.block != nil {
		f.block(ctx, want.Name)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	apps, err := f.load()
	if err != nil {
		return err
	}
	o := targets.ObservedApp{Name: want.Name, Ref: want.Ref, Digest: want.Digest, Managed: true, Healthy: true, Status: "serving"}
	for i := range apps {
		if apps[i].Name == want.Name {
			o.Previous = apps[i].Digest
			apps[i] = o
			return f.save(apps)
		}
	}
	return f.save(append(apps, o))
}

func (f *fileTarget) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	apps, err := f.load()
	if err != nil {
		return err
	}
	for i := range apps {
		if apps[i].Name == name {
			return f.save(append(apps[:i], apps[i+1:]...))
		}
	}
	return nil
}

func (f *fileTarget) digests(t *testing.T) map[string]string {
	apps, err := f.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range apps {
		out[a.Name] = a.Digest
	}
	return out
}

// TestAgentKillHelper is the agent process TestAgentSIGKILLMidRound kills.
// It does nothing unless FERRY_AGENT_KILL_HELPER is set.
func TestAgentKillHelper(t *testing.T) {
	if os.Getenv("FERRY_AGENT_KILL_HELPER") == "" {
		return
	}
	marker := os.Getenv("FERRY_AGENT_KILL_MARKER")
	ft := &fileTarget{path: os.Getenv("FERRY_AGENT_KILL_TARGET"), block: func(ctx context.Context, app string) {
		if app != "a" {
			return
		}
		os.WriteFile(marker, []byte("putting a"), 0o644)
		<-ctx.Done() // hangs until killed
	}}
	a, err := NewAgent(Options{
		Repo: os.Getenv("FERRY_AGENT_KILL_REPO"), DataDir: os.Getenv("FERRY_AGENT_KILL_DATA"), Interval: time.Hour,
		Releaser: newSpecReleaser(),
		Targets: func(context.Context, *spec.Config) (map[string]targets.Target, error) {
			return map[string]targets.Target{"local": ft}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Start(context.Background()) //nolint:errcheck // runs until killed
}

func TestAgentSIGKILLMidRound(t *testing.T) {
	h := newHarness(t, nil)
	h.agent.Close() // the child process owns the data directory first
	tmp := t.TempDir()
	marker := filepath.Join(tmp, "marker")
	targetFile := filepath.Join(tmp, "target.json")

	cmd := exec.Command(os.Args[0], "-test.run=^TestAgentKillHelper$", "-test.v")
	cmd.Env = append(os.Environ(),
		"FERRY_AGENT_KILL_HELPER=1",
		"FERRY_AGENT_KILL_MARKER="+marker,
		"FERRY_AGENT_KILL_TARGET="+targetFile,
		"FERRY_AGENT_KILL_REPO="+h.srv.URL(),
		"FERRY_AGENT_KILL_DATA="+h.opts.DataDir,
	)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the agent process never started deploying")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// b may have been deployed concurrently; wait until it is, so the
	// kill lands with a deployed and a half done.
	ft := &fileTarget{path: targetFile}
	for ft.digests(t)["b"] == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := ft.digests(t); got["b"] != appDigest("b", "v1") || got["a"] != "" {
		t.Fatalf("target after the kill: %v", got)
	}

	// Restart on the same data directory.
	h.opts.Targets = func(context.Context, *spec.Config) (map[string]targets.Target, error) {
		return map[string]targets.Target{"local": ft}, nil
	}
	h.newAgent()
	rs, err := h.agent.Rounds(10)
	if err != nil || len(rs) != 1 || rs[0].Result != history.RoundInterrupted {
		t.Fatalf("history after the kill: %+v %v", rs, err)
	}
	h.start()
	r := h.waitRound(rs[0].ID, func(r history.Round) bool { return r.Result == history.RoundSucceeded })
	if got := ft.digests(t); got["a"] != appDigest("a", "v1") || got["b"] != appDigest("b", "v1") {
		t.Fatalf("target after restart: %v", got)
	}
	// Converged without redeploying what was already there.
	ft.mu.Lock()
	puts := ft.puts
	ft.mu.Unlock()
	if puts != 1 {
		t.Fatalf("restarted agent made %d puts, want 1 (only a)", puts)
	}
	if recs := roundApps(r, "b"); len(recs) != 1 || recs[0].Result != "unchanged" {
		t.Fatalf("b in the converging round: %+v", recs)
	}
	checkHistoryConsistent(t, h.agent)
}
