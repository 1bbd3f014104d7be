package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// TestAgentAuthTable calls every route of a running agent's Handler (the
// status API and the three webhook schemes) with each bad credential and
// then with the right one. No bad call may change anything (pins,
// suspensions, queued wakes, rounds run, what the target runs) and each
// gets 401; the right credential gets a 2xx. The table must cover
// Agent.Routes exactly: a route added without a row fails the test.
func TestAgentAuthTable(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	h.push("v2", "v2", "v2")
	h.Sync()
	h.waitRunning(map[string]string{"a": "v2", "b": "v2"})
	h.waitIdle()

	const token = "api-token"
	push := `{"ref":"refs/heads/main","after":"0123456789abcdef","repository":{"full_name":"x/y"}}`
	var delivery atomic.Int64
	id := func() string { return fmt.Sprintf("auth-table-%d", delivery.Add(1)) }
	type cred struct {
		name string
		set  func(r *http.Request)
	}
	bearer := func(v string) func(*http.Request) {
		return func(r *http.Request) {
			if v != "" {
				r.Header.Set("Authorization", v)
			}
		}
	}
	apiBad := []cred{
		{"no credential", bearer("")},
		{"wrong token", bearer("Bearer api-tokem")},
		{"basic scheme", bearer("Basic " + token)},
		{"token without scheme", bearer(token)},
		{"prefix of the token", bearer("Bearer api-")},
		{"token plus a byte", bearer("Bearer " + token + "x")},
		{"empty bearer", bearer("Bearer ")},
		{"webhook secret as token", bearer("Bearer gh-secret")},
	}
	hook := func(event, eventName, sigHeader string, sig func(body string) string, deliveryHeader string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set(event, eventName)
			r.Header.Set(deliveryHeader, id())
			if s := sig(push); s != "" {
				r.Header.Set(sigHeader, s)
			}
		}
	}
	none := func(string) string { return "" }
	type row struct {
		pattern string
		method  string
		path    string
		body    string
		bad     []cred
		right   cred
		wakes   bool // the right call queues a round
		after   func(t *testing.T)
	}
	api := func(pattern, body string, wakes bool, after func(t *testing.T)) row {
		method, path, _ := strings.Cut(pattern, " ")
		return row{pattern: pattern, method: method, path: path, body: body, bad: apiBad, right: cred{"right token", bearer("Bearer " + token)}, wakes: wakes, after: after}
	}
	pinned := func(app string) bool {
		return slices.ContainsFunc(h.agent.Status().Pins, func(p history.Pin) bool { return p.App == app })
	}
	suspended := func(app string) bool {
		return slices.ContainsFunc(h.agent.Status().Suspended, func(s history.Suspension) bool { return s.App == app })
	}
	gh := func(s func(string) string) func(*http.Request) {
		return hook("X-GitHub-Event", "push", "X-Hub-Signature-256", s, "X-GitHub-Delivery")
	}
	gl := func(s func(string) string) func(*http.Request) {
		return hook("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", s, "X-Gitlab-Event-UUID")
	}
	gt := func(s func(string) string) func(*http.Request) {
		return hook("X-Gitea-Event", "push", "X-Gitea-Signature", s, "X-Gitea-Delivery")
	}
	rows := []row{
		{pattern: "/hooks/github", method: "POST", path: "/hooks/github", body: push, wakes: true,
			bad: []cred{
				{"no signature", gh(none)},
				{"signed with another secret", gh(func(b string) string { return "sha256=" + hmacHex("gh-secreT", b) })},
				{"signature of another body", gh(func(b string) string { return "sha256=" + hmacHex("gh-secret", b+" ") })},
				{"no sha256= prefix", gh(func(b string) string { return hmacHex("gh-secret", b) })},
				{"truncated signature", gh(func(b string) string { return "sha256=" + hmacHex("gh-secret", b)[:32] })},
				{"the secret itself", gh(func(string) string { return "sha256=gh-secret" })},
				{"API token as bearer", func(r *http.Request) { gh(none)(r); r.Header.Set("Authorization", "Bearer "+token) }},
			},
			right: cred{"right signature", gh(func(b string) string { return "sha256=" + hmacHex("gh-secret", b) })}},
		{pattern: "/hooks/gitlab", method: "POST", path: "/hooks/gitlab", body: push, wakes: true,
			bad: []cred{
				{"no token", gl(none)},
				{"wrong token", gl(func(string) string { return "gl-tokeN" })},
				{"prefix of the token", gl(func(string) string { return "gl-" })},
				{"HMAC instead of the token", gl(func(b string) string { return hmacHex("gl-token", b) })},
				{"API token as bearer", func(r *http.Request) { gl(none)(r); r.Header.Set("Authorization", "Bearer "+token) }},
			},
			right: cred{"right token", gl(func(string) string { return "gl-token" })}},
		{pattern: "/hooks/gitea", method: "POST", path: "/hooks/gitea", body: push, wakes: true,
			bad: []cred{
				{"no signature", gt(none)},
				{"signed with another secret", gt(func(b string) string { return hmacHex("gt-secreT", b) })},
				{"signature of another body", gt(func(b string) string { return hmacHex("gt-secret", "{}") })},
				{"GitHub-style prefix", gt(func(b string) string { return "sha256=" + hmacHex("gt-secret", b) })},
				{"the secret itself", gt(func(string) string { return "gt-secret" })},
			},
			right: cred{"right signature", gt(func(b string) string { return hmacHex("gt-secret", b) })}},
		api("GET /v1/status", "", false, nil),
		api("GET /v1/history", "", false, nil),
		api("GET /metrics", "", false, nil),
		api("POST /v1/sync", "", true, nil),
		api("POST /v1/rollback", `{"app":"a","digest":"`+appDigest("a", "v1")+`"}`, true, func(t *testing.T) {
			h.waitRunning(map[string]string{"a": "v1", "b": "v2"})
			if !pinned("a") {
				t.Errorf("a is not pinned after the rollback: %+v", h.agent.Status().Pins)
			}
		}),
		api("POST /v1/unpin", `{"app":"a"}`, true, func(t *testing.T) {
			h.waitRunning(map[string]string{"a": "v2", "b": "v2"})
			if pinned("a") {
				t.Errorf("a is still pinned after unpin")
			}
		}),
		api("POST /v1/suspend", `{"app":"b"}`, false, func(t *testing.T) {
			if !suspended("b") {
				t.Errorf("b is not suspended")
			}
		}),
		api("POST /v1/resume", `{"app":"b"}`, true, func(t *testing.T) {
			if suspended("b") {
				t.Errorf("b is still suspended")
			}
		}),
	}

	var covered []string
	for _, r := range rows {
		covered = append(covered, r.pattern)
	}
	slices.Sort(covered)
	routes := slices.Sorted(slices.Values(h.agent.Routes()))
	if !slices.Equal(routes, covered) {
		t.Fatalf("the auth table does not cover the agent's routes exactly:\n routes %q\n table  %q", routes, covered)
	}

	call := func(t *testing.T, r row, c cred) (int, string) {
		t.Helper()
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		req, err := http.NewRequest(r.method, h.http.URL+r.path, body)
		if err != nil {
			t.Fatal(err)
		}
		c.set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, r := range rows {
		t.Run(r.pattern, func(t *testing.T) {
			before := h.agentSnapshot()
			for _, c := range r.bad {
				if code, body := call(t, r, c); code != http.StatusUnauthorized {
					t.Errorf("%s with %s = %d %s, want 401", r.pattern, c.name, code, body)
				}
				if now := h.agentSnapshot(); now != before {
					t.Fatalf("%s with %s changed the agent:\n before %s\n after  %s", r.pattern, c.name, before, now)
				}
			}
			last := h.lastRoundID()
			code, body := call(t, r, r.right)
			if code < 200 || code > 299 {
				t.Fatalf("%s with %s = %d %s, want 2xx", r.pattern, r.right.name, code, body)
			}
			if r.wakes {
				h.waitRound(last, func(history.Round) bool { return true })
			}
			if r.after != nil {
				r.after(t)
			}
			h.waitIdle()
		})
	}
}

// waitIdle waits until no round runs and none is queued.
func (h *harness) waitIdle() {
	h.t.Helper()
	h.waitFor("the agent to be idle", func() bool { return len(h.agent.wake) == 0 && h.agent.Status().Running == nil })
}

// Sync wakes the harness's agent.
func (h *harness) Sync() { h.agent.Sync() }

// agentSnapshot describes what a call to the agent could change: pins,
// suspensions, queued wakes, rounds run or running, what the target runs.
func (h *harness) agentSnapshot() string {
	st := h.agent.Status()
	b, _ := json.Marshal(struct {
		Pins      []history.Pin
		Suspended []history.Suspension
		Wakes     int
		LastRound uint64
		Running   bool
		Target    map[string]string
	}{st.Pins, st.Suspended, len(h.agent.wake), h.lastRoundID(), st.Running != nil, h.mem.Digests()})
	return string(b)
}
