package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
)

// specReleaser is the test Releaser: it loads the spec for real with
// spec.Load (so diagnostics are real) and stands in for build/push/sign by
// deriving each app's digest from its name and the bytes of its component
// files. A component file starting with "FAIL" fails that app's build.
type specReleaser struct {
	mu       stdsync.Mutex
	releases map[string]int // commit → Release calls
	block    chan struct{}  // when set, Release waits for it
}

func newSpecReleaser() *specReleaser { return &specReleaser{releases: map[string]int{}} }

func (s *specReleaser) Release(ctx context.Context, dir, commit string) (*release.RoundInput, error) {
	s.mu.Lock()
	s.releases[commit]++
	block := s.block
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cfg, diags := spec.Load(dir, spec.LoadOptions{})
	in := &release.RoundInput{Config: cfg, Diagnostics: diags, AppErrors: map[string]error{}}
	if diags.HasErrors() {
		return in, nil
	}
	in.Desired.Commit = commit
	digests := map[string]targets.DesiredApp{}
	for _, a := range cfg.Apps {
		var content []byte
		for _, c := range a.Components {
			b, err := os.ReadFile(filepath.Join(dir, c.Name+".wasm"))
			if err != nil {
				b, err = os.ReadFile(filepath.Join(dir, a.Name+".wasm"))
			}
			if err != nil {
				return nil, err
			}
			content = append(content, b...)
		}
		if strings.HasPrefix(string(content), "FAIL") {
			in.AppErrors[a.Name] = fmt.Errorf("build %s: compile error", a.Name)
			continue
		}
		da, _ := cfg.DeployApp(a.Name)
		d := plantest.Dg(a.Name + ":" + string(content))
		digests[a.Name] = targets.DesiredApp{Name: a.Name, Ref: "reg.test/" + a.Name + "@" + d, Digest: d, App: da}
	}
	for _, t := range cfg.Targets {
		dt := plan.DesiredTarget{Name: t.Name, Type: string(t.Type), Apps: []targets.DesiredApp{}}
		for _, n := range t.Apps {
			if a, ok := digests[n]; ok {
				dt.Apps = append(dt.Apps, a)
			}
		}
		in.Desired.Targets = append(in.Desired.Targets, dt)
	}
	return in, nil
}

func (s *specReleaser) count(commit string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.releases[commit]
}

// appDigest is the digest specReleaser gives app when its file holds content.
func appDigest(app, content string) string { return plantest.Dg(app + ":" + content) }

// specFiles returns a spec with apps a and b on target "local", whose
// component files hold the given contents.
func specFiles(a, b string) map[string]string {
	return map[string]string{
		"ferry.hcl": `app "a" {
  component "a" {
    wasm = "./a.wasm"
  }
}

app "b" {
  component "b" {
    wasm = "./b.wasm"
  }
}

target "local" {
  type     = "host"
  apps     = ["a", "b"]
  endpoint = "http://127.0.0.1:9"
}
`,
		"a.wasm": a,
		"b.wasm": b,
	}
}

type harness struct {
	t      testing.TB
	srv    *gittest.Server
	work   *gittest.Work
	mem    *plantest.MemTarget
	rel    *specReleaser
	agent  *Agent
	opts   Options
	http   *httptest.Server
	cancel context.CancelFunc
	done   chan error
}

// newHarness starts a git server with an initial commit (a=v1, b=v1) and
// builds an agent for it; call start to run it.
func newHarness(t testing.TB, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, srv: gittest.NewServer(t, gittest.Options{}), mem: plantest.NewMem(), rel: newSpecReleaser()}
	h.work = h.srv.Clone(t)
	h.work.CommitPush("initial", specFiles("v1", "v1"))
	h.opts = Options{
		Repo:       h.srv.URL(),
		DataDir:    filepath.Join(t.TempDir(), "data"),
		Interval:   time.Hour,
		MaxBackoff: 200 * time.Millisecond,
		Releaser:   h.rel,
		Targets: func(ctx context.Context, cfg *spec.Config) (map[string]targets.Target, error) {
			return map[string]targets.Target{"local": h.mem}, nil
		},
		Webhooks: WebhookSecrets{GitHub: "gh-secret", GitLab: "gl-token", Gitea: "gt-secret"},
		APIToken: "api-token",
		Logger:   testLogger(t),
	}
	if mod != nil {
		mod(&h.opts)
	}
	h.newAgent()
	return h
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (h *harness) newAgent() {
	h.t.Helper()
	a, err := NewAgent(h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.agent = a
	if h.http != nil {
		h.http.Close()
	}
	h.http = httptest.NewServer(a.Handler())
	h.t.Cleanup(h.http.Close)
}

func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	a := h.agent
	go func() { h.done <- a.Start(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop cancels the agent, waits for Start to return and closes it.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Start: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Error("agent did not stop")
	}
	if err := h.agent.Close(); err != nil {
		h.t.Errorf("Close: %v", err)
	}
}

// waitFor polls cond until it holds or 30s pass.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			st := h.agent.Status()
			h.t.Fatalf("timed out waiting for %s; target runs %v; status: last round %+v errors %v", what, h.mem.Digests(), st.LastRound, st.Errors)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRunning waits until the target runs exactly want (app → content).
func (h *harness) waitRunning(want map[string]string) {
	h.t.Helper()
	wd := map[string]string{}
	for app, c := range want {
		wd[app] = appDigest(app, c)
	}
	h.waitFor(fmt.Sprintf("target to run %v", want), func() bool {
		got := h.mem.Digests()
		if len(got) != len(wd) {
			return false
		}
		for k, v := range wd {
			if got[k] != v {
				return false
			}
		}
		return true
	})
}

// waitRound waits for a finished round with an ID above after that
// satisfies cond, and returns it.
func (h *harness) waitRound(after uint64, cond func(history.Round) bool) history.Round {
	h.t.Helper()
	var found history.Round
	h.waitFor("a matching round", func() bool {
		rs, err := h.agent.Rounds(50)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, r := range rs {
			if r.ID > after && r.Result != history.RoundRunning && cond(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

func (h *harness) lastRoundID() uint64 {
	rs, err := h.agent.Rounds(1)
	if err != nil || len(rs) == 0 {
		return 0
	}
	return rs[0].ID
}

// push commits files with content for apps a and b and pushes.
func (h *harness) push(msg, a, b string) string {
	h.t.Helper()
	return h.work.CommitPush(msg, specFiles(a, b))
}

// githubHook sends a GitHub push event signed with secret and returns the
// status code.
func (h *harness) githubHook(secret, ref, after string) int {
	h.t.Helper()
	body := fmt.Sprintf(`{"ref":%q,"after":%q,"repository":{"full_name":"x/y"}}`, ref, after)
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/hooks/github", strings.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func hmacHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func (h *harness) client() *Client {
	return &Client{BaseURL: h.http.URL, Token: "api-token"}
}

func roundApps(r history.Round, app string) []history.AppRecord {
	return slices.DeleteFunc(slices.Clone(r.Apps), func(a history.AppRecord) bool { return a.App != app })
}

var errTest = errors.New("test")
