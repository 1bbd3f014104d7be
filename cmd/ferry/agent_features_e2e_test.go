package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan"
)

// Webhook secrets of the GitLab and Gitea deliveries (test values).
const (
	agentE2EGitLabToken = "e2e-gitlab-token"
	agentE2EGiteaSecret = "e2e-gitea-secret"
)

// TestAgentE2EFeatures runs the agent's README features end to end in one
// world: `ferry agent` with the real release path (load, build, push to a
// CNCF Distribution registry, cosign signature with a real key) fetching
// from `git http-backend` over https (a test CA given with --git-ca-file),
// pushed to with the git CLI, deploying to the ferry-host binary, which
// verifies every signature. The interval is an hour, so only webhooks, the
// CLI and retries start rounds. The subtests run in order on the same
// world; each says what it proves.
func TestAgentE2EFeatures(t *testing.T) {
	e := agentE2ENewEnv(t)
	t.Setenv("FERRY_WEBHOOK_GITLAB_TOKEN", agentE2EGitLabToken)
	t.Setenv("FERRY_WEBHOOK_GITEA_SECRET", agentE2EGiteaSecret)
	reg := agentE2ENewRegistry(t)
	hp := agentE2EStartHostProc(t, e.pubPath)
	srv := gittest.NewServer(t, gittest.Options{TLS: true})
	w := srv.Clone(t)
	spec := agentE2ESpec(reg.Addr+"/e2e", hp.CtlURL, []string{"alpha", "beta"}, agentE2EAppHCL("alpha"), agentE2EAppHCL("beta"))
	w.Write("ferry.hcl", spec)
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.WriteBytes("beta.wasm", agentE2EWasm(t, "beta v1"))
	c1 := w.Commit("v1")
	w.Push()

	a := agentE2EStartAgent(t, e, srv.URL(), "--interval", "1h", "--git-ca-file", srv.CAFile())
	agentE2EWaitServing(t, hp.AppsURL, "alpha", "alpha v1", time.Minute)
	agentE2EWaitServing(t, hp.AppsURL, "beta", "beta v1", time.Minute)
	agentE2EIdle(t, a)
	if st := agentE2EStatus(t, a); st.LastSuccessfulCommit != c1 || !strings.HasPrefix(st.Repo, "https://127.0.0.1:") {
		t.Fatalf("status after the first round over https: repo %s last good %q, want %s; errors %v", st.Repo, st.LastSuccessfulCommit, c1, st.Errors)
	}

	// push commits msg with files (name → module) and returns its hash.
	push := func(msg string, files map[string][]byte) string {
		t.Helper()
		for name, b := range files {
			w.WriteBytes(name, b)
		}
		c := w.Commit(msg)
		w.Push()
		return c
	}
	last := func() uint64 { t.Helper(); return agentE2EIdle(t, a) }

	t.Run("status API auth and metrics values", func(t *testing.T) {
		for _, path := range []string{"/v1/status", "/metrics"} {
			for _, tc := range []struct {
				name, header string
				want         int
			}{
				{"no token", "", http.StatusUnauthorized},
				{"wrong token", "Bearer not-the-token", http.StatusUnauthorized},
				{"right token", "Bearer " + agentE2EAPIToken, http.StatusOK},
			} {
				code, body := agentE2EGet(t, a.URL+path, tc.header)
				if code != tc.want {
					t.Errorf("GET %s with %s: %d, want %d", path, tc.name, code, tc.want)
				}
				if code != http.StatusOK && (strings.Contains(body, "alpha") || strings.Contains(body, "ferry_agent_")) {
					t.Errorf("GET %s with %s answered %d but showed content: %q", path, tc.name, code, agentE2ETail(body, 5))
				}
			}
		}
		m := agentE2EWaitMetrics(t, a, func(m map[string]float64) bool { return m[`ferry_agent_rounds_total{result="succeeded"}`] >= 1 })
		if ts := m[`ferry_agent_last_success_timestamp_seconds`]; ts < float64(time.Now().Add(-time.Hour).Unix()) {
			t.Errorf("ferry_agent_last_success_timestamp_seconds = %v after a successful round, want a recent Unix time", ts)
		}
		if n := m[`ferry_agent_rounds_total{result="succeeded"}`]; n < 1 {
			t.Errorf(`ferry_agent_rounds_total{result="succeeded"} = %v after a successful round`, n)
		}
		if n := m[`ferry_agent_last_success_commit_info{commit="`+c1+`"}`]; n != 1 {
			t.Errorf("ferry_agent_last_success_commit_info for %s = %v, want 1", c1, n)
		}
	})

	for _, tc := range []struct {
		provider, app, version string
		bad, good              func(sha string) *http.Request
	}{
		{"gitlab", "alpha", "alpha v2",
			func(sha string) *http.Request { return agentE2EGitLabPush(t, a.URL, "not-the-token", sha) },
			func(sha string) *http.Request { return agentE2EGitLabPush(t, a.URL, agentE2EGitLabToken, sha) }},
		{"gitea", "beta", "beta v2",
			func(sha string) *http.Request { return agentE2EGiteaPush(t, a.URL, "not-the-secret", sha) },
			func(sha string) *http.Request { return agentE2EGiteaPush(t, a.URL, agentE2EGiteaSecret, sha) }},
	} {
		t.Run(tc.provider+" webhook", func(t *testing.T) {
			before := last()
			m0 := agentE2EMetrics(t, a)
			c := push(tc.version, map[string][]byte{tc.app + ".wasm": agentE2EWasm(t, tc.version)})
			if code := agentE2EDo(t, tc.bad(c)); code != http.StatusUnauthorized {
				t.Fatalf("%s webhook with a bad secret: %d, want 401", tc.provider, code)
			}
			time.Sleep(300 * time.Millisecond)
			if rs, err := a.Client.Rounds(context.Background(), 1); err != nil || len(rs) != 1 || rs[0].ID != before {
				t.Fatalf("a bad %s webhook started a round: %+v %v", tc.provider, rs, err)
			}
			if code := agentE2EDo(t, tc.good(c)); code != http.StatusAccepted {
				t.Fatalf("signed %s webhook: %d, want 202", tc.provider, code)
			}
			took := agentE2EWaitServing(t, hp.AppsURL, tc.app, tc.version, time.Minute)
			r := agentE2EWaitRound(t, a, "of the "+tc.provider+" delivery", time.Minute, func(r history.Round) bool {
				return r.ID > before && r.Commit == c && r.Result != history.RoundRunning
			})
			if r.Result != history.RoundSucceeded || r.Trigger != "webhook:"+tc.provider || !agentE2EApplied(r, tc.app, "update") {
				t.Fatalf("round %d: %s trigger %q apps %+v; want succeeded, webhook:%s, %s updated", r.ID, r.Result, r.Trigger, r.Apps, tc.provider, tc.app)
			}
			// The metrics moved with the round.
			const ok = `ferry_agent_rounds_total{result="succeeded"}`
			m1 := agentE2EWaitMetrics(t, a, func(m map[string]float64) bool { return m[ok] > m0[ok] })
			if m1[ok] != m0[ok]+1 {
				t.Errorf("%s went %v → %v over one successful round", ok, m0[ok], m1[ok])
			}
			const ts = "ferry_agent_last_success_timestamp_seconds"
			if m1[ts] <= m0[ts] || m1[`ferry_agent_last_success_commit_info{commit="`+c+`"}`] != 1 {
				t.Errorf("%s %v → %v, commit info for %s %v; want a later time and the new commit", ts, m0[ts], m1[ts], c, m1[`ferry_agent_last_success_commit_info{commit="`+c+`"}`])
			}
			t.Logf("%s push → serving in %v", tc.provider, took)
		})
	}

	trap, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "trap.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("one failing app blocks nothing else", func(t *testing.T) {
		before := last()
		m0 := agentE2EMetrics(t, a)
		c := push("alpha traps, beta v3", map[string][]byte{"alpha.wasm": trap, "beta.wasm": agentE2EWasm(t, "beta v3")})
		if code := agentE2EGitHubPush(t, a.URL, agentE2EHookSecret, c); code != http.StatusAccepted {
			t.Fatalf("webhook: %d", code)
		}
		agentE2EWaitServing(t, hp.AppsURL, "beta", "beta v3", time.Minute)
		r := agentE2EWaitRound(t, a, "of the commit with a failing app", time.Minute, func(r history.Round) bool {
			return r.ID > before && r.Commit == c && r.Result != history.RoundRunning
		})
		if r.Result != history.RoundPartial || !agentE2EApplied(r, "beta", "update") {
			t.Fatalf("round %d: %s apps %+v; want partial with beta updated", r.ID, r.Result, r.Apps)
		}
		if recs := agentE2ERecords(r, "alpha"); len(recs) != 1 || recs[0].Result != string(plan.OutcomeFailed) {
			t.Errorf("alpha in round %d: %+v, want failed", r.ID, recs)
		}
		agentE2EWantServing(t, hp.AppsURL, "alpha", "alpha v2")
		st := agentE2EStatus(t, a)
		if !strings.Contains(strings.Join(st.Errors, "\n"), "alpha") {
			t.Errorf("status errors %q do not name alpha", st.Errors)
		}
		m1 := agentE2EWaitMetrics(t, a, func(m map[string]float64) bool {
			return m[`ferry_agent_rounds_total{result="partial"}`] > m0[`ferry_agent_rounds_total{result="partial"}`]
		})
		if m1["ferry_agent_app_failures_total"] <= m0["ferry_agent_app_failures_total"] || m1[`ferry_agent_rounds_total{result="partial"}`] != m0[`ferry_agent_rounds_total{result="partial"}`]+1 {
			t.Errorf("metrics over the partial round: app failures %v → %v, partial rounds %v → %v",
				m0["ferry_agent_app_failures_total"], m1["ferry_agent_app_failures_total"],
				m0[`ferry_agent_rounds_total{result="partial"}`], m1[`ferry_agent_rounds_total{result="partial"}`])
		}
	})

	t.Run("suspend and resume from the CLI", func(t *testing.T) {
		if out := agentE2ECLI(t, a, "suspend", "beta"); !strings.Contains(out, "beta") {
			t.Errorf("ferry suspend beta printed %q", out)
		}
		if st := agentE2EStatus(t, a); len(st.Suspended) != 1 || st.Suspended[0].App != "beta" {
			t.Fatalf("status suspended %+v, want beta", st.Suspended)
		}
		before := last()
		c := push("alpha v3, beta v4", map[string][]byte{"alpha.wasm": agentE2EWasm(t, "alpha v3"), "beta.wasm": agentE2EWasm(t, "beta v4")})
		if code := agentE2EGitHubPush(t, a.URL, agentE2EHookSecret, c); code != http.StatusAccepted {
			t.Fatalf("webhook: %d", code)
		}
		agentE2EWaitServing(t, hp.AppsURL, "alpha", "alpha v3", time.Minute)
		r := agentE2EWaitRound(t, a, "with beta suspended", time.Minute, func(r history.Round) bool {
			return r.ID > before && r.Commit == c && r.Result != history.RoundRunning
		})
		for _, rec := range agentE2ERecords(r, "beta") {
			if rec.Result == string(plan.OutcomeApplied) {
				t.Errorf("round %d changed the suspended beta: %+v", r.ID, rec)
			}
		}
		agentE2EWantServing(t, hp.AppsURL, "beta", "beta v3")

		agentE2ECLI(t, a, "resume", "beta")
		agentE2EWaitServing(t, hp.AppsURL, "beta", "beta v4", time.Minute)
		r2 := agentE2EWaitRound(t, a, "after the resume", time.Minute, func(x history.Round) bool {
			return x.ID > r.ID && agentE2EApplied(x, "beta", "update")
		})
		if r2.Trigger != "resume" || r2.Commit != c {
			t.Errorf("round %d that deployed beta v4: trigger %q commit %s; want resume, %s", r2.ID, r2.Trigger, r2.Commit, c)
		}
		if st := agentE2EStatus(t, a); len(st.Suspended) != 0 {
			t.Errorf("status suspended after resume: %+v", st.Suspended)
		}
	})

	t.Run("backoff while the git server is down", func(t *testing.T) {
		before := last()
		m0 := agentE2EMetrics(t, a)
		c := push("alpha v4", map[string][]byte{"alpha.wasm": agentE2EWasm(t, "alpha v4")})
		srv.Down()
		down := time.Now()
		if code := agentE2EGitHubPush(t, a.URL, agentE2EHookSecret, c); code != http.StatusAccepted {
			t.Fatalf("webhook: %d", code)
		}
		first := agentE2EWaitRound(t, a, "that failed to fetch", time.Minute, func(r history.Round) bool {
			return r.ID > before && r.Result == history.RoundFailed
		})
		if !strings.Contains(first.Error, "unreachable") {
			t.Errorf("round %d error %q does not say git is unreachable", first.ID, first.Error)
		}
		time.Sleep(4 * time.Second)
		rs, err := a.Client.Rounds(context.Background(), 200)
		if err != nil {
			t.Fatal(err)
		}
		var failed []history.Round
		for _, r := range rs {
			if r.ID > before {
				if r.Result == history.RoundSucceeded {
					t.Fatalf("round %d succeeded while git was down", r.ID)
				}
				failed = append(failed, r)
			}
		}
		// Retries after 1, 2, 4 s (jittered): at least one retry in about
		// 4 s, and no busy loop.
		if len(failed) < 2 || len(failed) > 5 {
			t.Errorf("%d failed rounds in the %v git was down; want 2 to 5 (a retry with backoff)", len(failed), time.Since(down).Round(time.Second))
		}
		st := agentE2EStatus(t, a)
		if !strings.Contains(strings.Join(st.Errors, "\n"), "unreachable") || st.NextRoundAt.IsZero() || st.LastSuccessfulCommit == c {
			t.Errorf("status while git is down: errors %q next round %v last good %s", st.Errors, st.NextRoundAt, st.LastSuccessfulCommit)
		}
		if m := agentE2EMetrics(t, a); m[`ferry_agent_errors_total{step="fetch"}`] < m0[`ferry_agent_errors_total{step="fetch"}`]+2 {
			t.Errorf(`ferry_agent_errors_total{step="fetch"} %v → %v over %d failed fetches`, m0[`ferry_agent_errors_total{step="fetch"}`], m[`ferry_agent_errors_total{step="fetch"}`], len(failed))
		}
		agentE2EWantServing(t, hp.AppsURL, "alpha", "alpha v3")

		srv.Up()
		took := agentE2EWaitServing(t, hp.AppsURL, "alpha", "alpha v4", time.Minute)
		r := agentE2EWaitRound(t, a, "that recovered", time.Minute, func(r history.Round) bool {
			return r.Commit == c && r.Result == history.RoundSucceeded
		})
		if r.Trigger != "retry" {
			t.Errorf("round %d that recovered has trigger %q, want retry (no webhook was sent)", r.ID, r.Trigger)
		}
		if st := agentE2EStatus(t, a); st.LastSuccessfulCommit != c || len(st.Errors) != 0 {
			t.Errorf("status after git came back: last good %s errors %q", st.LastSuccessfulCommit, st.Errors)
		}
		t.Logf("git back → serving in %v (%d failed rounds while down)", took, len(failed))
	})
}

// agentE2EWaitMetrics polls the agent's metrics until cond holds (the
// agent counts a round just after it shows in the history) or 10 s pass,
// and returns the last ones read.
func agentE2EWaitMetrics(t *testing.T, a *agentE2EAgent, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := agentE2EMetrics(t, a)
		if cond(m) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// agentE2EGet sends GET url with an Authorization header (none when
// empty) and returns the status and body.
func agentE2EGet(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// agentE2EMetrics reads the agent's /metrics and returns each sample
// ("name{labels}" as printed) and its value.
func agentE2EMetrics(t *testing.T, a *agentE2EAgent) map[string]float64 {
	t.Helper()
	code, body := agentE2EGet(t, a.URL+"/metrics", "Bearer "+agentE2EAPIToken)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(body, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			continue
		}
		out[l[:i]] = v
	}
	return out
}

// agentE2EPushBody is a push event of branch main at sha, in the shape
// GitHub, GitLab and Gitea share.
func agentE2EPushBody(sha string) string {
	return fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"full_name":"e2e/specs"}}`, sha)
}

// agentE2EGitLabPush is a GitLab push delivery carrying token.
func agentE2EGitLabPush(t *testing.T, agentURL, token, sha string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, agentURL+"/hooks/gitlab", strings.NewReader(agentE2EPushBody(sha)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", token)
	return req
}

// agentE2EGiteaPush is a Gitea push delivery signed with secret.
func agentE2EGiteaPush(t *testing.T, agentURL, secret, sha string) *http.Request {
	t.Helper()
	body := agentE2EPushBody(sha)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, agentURL+"/hooks/gitea", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitea-Event", "push")
	req.Header.Set("X-Gitea-Signature", hex.EncodeToString(m.Sum(nil)))
	return req
}

// agentE2EDo sends req and returns the status code.
func agentE2EDo(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
