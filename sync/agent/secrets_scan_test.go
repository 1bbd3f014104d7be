package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/hosttest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/control"
	"github.com/ferry-wasm/ferry/targets/host/driver"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// secretsScanSpec is a spec with two secret variables, both used by the
// varecho guest (it answers with the value of its variable "key").
const secretsScanSpec = `variable "api_key" {
  secret = true
}

variable "db_pass" {
  secret = true
}

app "sec" {
  hosts = ["sec.localhost"]

  component "web" {
    wasm     = "./varecho.wasm"
    executor = "wagi"
    routes   = ["/..."]
    variables = {
      key   = "{{ api_key }}"
      other = "{{ db_pass }}"
    }
  }
}

target "local" {
  type     = "host"
  apps     = ["sec"]
  endpoint = "http://127.0.0.1:9"
}
`

// TestSecretsOnlyInHostStore deploys an app with two secret variables
// through both real paths — ferry plan/apply by hand (plan file written and
// read back), then the agent rotating both values on a commit — onto a real
// ferry-host pulling from a real registry, and checks that the guest sees
// the values. Then it searches everything ferry wrote or said for the four
// values, raw and in base64 (std, url, raw) and hex: the agent's and the
// host's logs, the rendered and JSON plans and the plan file, the apply
// result, the agent's status, history and metrics over its API, the host's
// control API, every file in the registry's storage, the agent's data
// directory (history store, checkout, caches), the builder cache and the
// host's state directory. Only the host's secret store — 0600 files in a
// 0700 directory — may hold them.
func TestSecretsOnlyInHostStore(t *testing.T) {
	ctx := context.Background()
	secret := func(name string) string {
		b := make([]byte, 24)
		rand.Read(b)
		return name + "-" + hex.EncodeToString(b)
	}
	byHand := map[string]string{"api_key": secret("ak1"), "db_pass": secret("dp1")}
	rotated := map[string]string{"api_key": secret("ak2"), "db_pass": secret("dp2")}

	root := t.TempDir()
	dir := func(name string) string { return filepath.Join(root, name) }
	regDir, hostDir, agentDir, buildDir, handDir := dir("registry"), dir("host"), dir("agent"), dir("build"), dir("hand")
	reg, err := embedded.NewServer(ctx, embedded.Options{Dir: regDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	pub, priv := hosttest.SecretKeys(t)

	// The host, logging everything at debug level.
	hostLog, agentLog := &testenv.Buffer{}, &testenv.Buffer{}
	hlog := slog.New(slog.NewTextHandler(hostLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hostMetrics := prometheus.NewRegistry()
	rt, err := host.New(host.Options{StateDir: hostDir, Logger: hlog, Metrics: hostMetrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rt.Close(cctx)
	})
	st, err := state.Open(filepath.Join(hostDir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	hrc, err := registry.New(registry.Options{CacheDir: filepath.Join(hostDir, "oci"), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := control.NewServer(control.Options{Runtime: rt, Store: st, Registry: hrc, Policy: signer.Policy{Keys: []signer.Key{pub}},
		Token: hosttest.SecretToken, Logger: hlog, Metrics: hostMetrics})
	if err != nil {
		t.Fatal(err)
	}
	apps, ctl := httptest.NewServer(rt), httptest.NewServer(srv)
	t.Cleanup(apps.Close)
	t.Cleanup(ctl.Close)
	hc, err := driver.NewClient(ctl.URL, hosttest.SecretToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tgts := map[string]targets.Target{"local": hc}
	guest := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, apps.URL+"/", nil)
		req.Host = "sec.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	// The spec repository.
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "control", "testdata", "varecho.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	gs := gittest.NewServer(t, gittest.Options{})
	work := gs.Clone(t)
	work.Write("ferry.hcl", secretsScanSpec)
	work.Write("varecho.wasm", string(wasm))
	work.Commit("secret app")
	work.Push()

	arc, err := registry.New(registry.Options{CacheDir: filepath.Join(agentDir, "oci"), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]string // what ReleaseOptions.Secret answers
	ropts := release.ReleaseOptions{
		Builder: builder.New(builder.Options{CacheDir: buildDir}), Registry: arc, Repository: reg.Addr() + "/sec", Key: priv,
		Secret: func(name string) (string, bool) { v, ok := values[name]; return v, ok },
	}

	// 1. By hand: plan, a plan file, apply it.
	values = byHand
	specDir := filepath.Join(handDir, "spec")
	if err := os.MkdirAll(specDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(specDir, "ferry.hcl"), []byte(secretsScanSpec), 0o644)
	os.WriteFile(filepath.Join(specDir, "varecho.wasm"), wasm, 0o644)
	rel, err := release.BuildRelease(ctx, specDir, "", ropts)
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	desired := rel.Desired()
	pl, err := plan.Compute(ctx, desired, tgts, plan.PlanOptions{})
	if err != nil || pl.Applyable() != nil || pl.Counts().Create != 1 {
		t.Fatalf("plan: %v %v %+v", err, pl.Applyable(), pl.Counts())
	}
	var outputs []struct{ what, text string }
	say := func(what, text string) { outputs = append(outputs, struct{ what, text string }{what, text}) }
	var rendered bytes.Buffer
	pl.Render(&rendered)
	say("rendered plan", rendered.String())
	planFile := filepath.Join(handDir, "plan.json")
	if err := plan.WritePlanFile(planFile, pl); err != nil {
		t.Fatal(err)
	}
	saved, err := plan.ReadPlanFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Apply(ctx, saved, tgts, plan.ApplyOptions{SecretsFor: plan.SecretsFrom(desired)})
	if err != nil || res.Count(plan.OutcomeApplied) != 1 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	say("apply result", fmt.Sprintf("%+v", res))
	if got := guest(); got != byHand["api_key"] {
		t.Fatalf("after apply the guest answers %q, want the secret", got)
	}

	// 2. The agent rotates both values on the next commit.
	values = rotated
	a, err := agent.NewAgent(agent.Options{
		Repo: gs.URL(), Interval: time.Hour, MaxBackoff: time.Second, DataDir: filepath.Join(agentDir, "data"),
		Releaser: release.SpecReleaser(ropts),
		Targets:  func(context.Context, *spec.Config) (map[string]targets.Target, error) { return tgts, nil },
		APIToken: "agent-api-token", Webhooks: agent.WebhookSecrets{GitHub: "hook-secret"},
		Logger: slog.New(slog.NewTextHandler(agentLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(a.Handler())
	t.Cleanup(api.Close)
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Start(actx) }()
	stopAgent := func() {
		if cancel == nil {
			return
		}
		cancel()
		cancel = nil
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		a.Close()
	}
	t.Cleanup(stopAgent)
	deadline := time.Now().Add(2 * time.Minute)
	for guest() != rotated["api_key"] {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not rotate the secret; status %+v", a.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for time.Now().Before(deadline) && (a.Status().LastRound == nil || a.Status().Running != nil) {
		time.Sleep(20 * time.Millisecond)
	}

	// What the agent and the host answer over their APIs.
	get := func(base, path, token string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	for _, p := range []string{"/v1/status", "/v1/history", "/v1/history?app=sec", "/metrics"} {
		say("agent API "+p, get(api.URL, p, "agent-api-token"))
	}
	for _, p := range []string{"/v1/apps", "/v1/apps/sec", "/v1/lock", "/metrics"} {
		say("host API "+p, get(ctl.URL, p, hosttest.SecretToken))
	}
	if hist := get(api.URL, "/v1/history?app=sec", "agent-api-token"); !strings.Contains(hist, "sec") {
		t.Fatalf("the history has no record of the app: %s", hist)
	}
	stopAgent() // flush the history store
	say("agent log", agentLog.String())
	say("host log", hostLog.String())
	if !strings.Contains(hostLog.String(), "sec") || !strings.Contains(agentLog.String(), "sec") {
		t.Fatalf("the logs say nothing about the app; is logging captured?\nagent: %.500s\nhost: %.500s", agentLog, hostLog)
	}

	// Every file.
	secretFile := regexp.MustCompile(`^state/apps/sec/secrets-[0-9a-f]{32}\.json$`)
	var storeFiles []string
	walked := map[string]int{}
	for _, d := range []string{regDir, agentDir, buildDir, handDir, hostDir} {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !e.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if rel, _ := filepath.Rel(hostDir, p); d == hostDir && secretFile.MatchString(filepath.ToSlash(rel)) {
				storeFiles = append(storeFiles, p)
				return nil
			}
			say("file "+p, string(b))
			walked[d]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if walked[d] == 0 {
			t.Fatalf("no file under %s to search", d)
		}
	}
	if !strings.Contains(strings.Join(func() (ps []string) {
		for _, o := range outputs {
			ps = append(ps, o.what)
		}
		return ps
	}(), "\n"), filepath.Join(regDir, "docker", "registry", "v2", "blobs")) {
		t.Fatalf("the registry's blobs were not searched")
	}

	// The search.
	type needle struct{ name, value string }
	var needles []needle
	for _, set := range []map[string]string{byHand, rotated} {
		for name, v := range set {
			needles = append(needles,
				needle{name + " raw", v},
				needle{name + " base64", base64.StdEncoding.EncodeToString([]byte(v))},
				needle{name + " base64url", base64.URLEncoding.EncodeToString([]byte(v))},
				needle{name + " base64 unpadded", base64.RawStdEncoding.EncodeToString([]byte(v))},
				needle{name + " hex", hex.EncodeToString([]byte(v))},
				needle{name + " HEX", strings.ToUpper(hex.EncodeToString([]byte(v)))},
			)
		}
	}
	searched := 0
	for _, o := range outputs {
		searched += len(o.text)
		for _, n := range needles {
			if strings.Contains(o.text, n.value) {
				t.Errorf("%s holds secret %s", o.what, n.name)
			}
		}
	}
	t.Logf("searched %d outputs and files (%d bytes) for %d encodings of 4 secret values", len(outputs), searched, len(needles))

	// The store holds them, owner-only.
	if len(storeFiles) == 0 {
		t.Fatal("the host's secret store has no secrets file")
	}
	var store strings.Builder
	for _, p := range storeFiles {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("secrets file %s has mode %v, want 0600", p, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		store.Write(b)
	}
	for d := filepath.Dir(storeFiles[0]); d != hostDir && d != filepath.Dir(hostDir); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("directory %s of the secret store is open to others: %v %v", d, fi.Mode(), err)
			break
		}
	}
	for name, v := range rotated {
		if !strings.Contains(store.String(), v) {
			t.Errorf("the host's secret store lacks the current value of %s", name)
		}
	}
}
