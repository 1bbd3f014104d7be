package agent

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/sync/agent/history"
)

func TestStatusAPIAuth(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name, method, path, auth string
		code                     int
	}{
		{"no token", "GET", "/v1/status", "", 401},
		{"wrong token", "GET", "/v1/status", "Bearer api-tokem", 401},
		{"not bearer", "GET", "/v1/status", "Basic api-token", 401},
		{"prefix of token", "GET", "/v1/status", "Bearer api-", 401},
		{"good", "GET", "/v1/status", "Bearer api-token", 200},
		{"metrics need token", "GET", "/metrics", "", 401},
		{"metrics", "GET", "/metrics", "Bearer api-token", 200},
		{"sync without token", "POST", "/v1/sync", "", 401},
		{"rollback without token", "POST", "/v1/rollback", "", 401},
		{"unknown path", "GET", "/v1/nope", "Bearer api-token", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, h.http.URL+tt.path, strings.NewReader(`{"app":"a"}`))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.code)
			}
		})
	}
	if n := len(h.agent.wake); n != 0 {
		t.Fatalf("unauthenticated calls queued %d wakes", n)
	}
	c := &Client{BaseURL: h.http.URL, Token: "wrong"}
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("client with a wrong token: %v", err)
	}
	t.Run("empty token refuses everything", func(t *testing.T) {
		h2 := newHarness(t, func(o *Options) { o.APIToken = ""; o.MetricsPublic = true })
		c := &Client{BaseURL: h2.http.URL, Token: ""}
		if _, err := c.Status(context.Background()); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("empty token: %v", err)
		}
		resp, err := http.Get(h2.http.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("public metrics: %d", resp.StatusCode)
		}
	})
}

func TestStatusAPIAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(o *Options) { o.Metrics = reg })
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	c := h.client()
	ctx := context.Background()
	var st *Status
	h.waitFor("status", func() bool {
		var err error
		st, err = c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.LastRound != nil
	})
	if st.LastRound.Result != history.RoundSucceeded || st.LastSuccessfulCommit == "" || len(st.Apps) != 2 || st.Repo != h.srv.URL() {
		t.Fatalf("status = %+v", st)
	}
	for _, a := range st.Apps {
		if len(a.Targets) != 1 || a.Targets[0].Digest != appDigest(a.Name, "v1") || !a.Targets[0].Healthy || a.Desired != a.Targets[0].Digest {
			t.Fatalf("app status %+v", a)
		}
	}
	var steps []string
	for _, s := range st.LastRound.Steps {
		steps = append(steps, s.Step+"="+string(s.Status))
	}
	if got := strings.Join(steps, " "); got != "fetch=ok load=ok build=ok plan=ok apply=ok" {
		t.Fatalf("steps: %s", got)
	}
	rounds, err := c.Rounds(ctx, 5)
	if err != nil || len(rounds) != 1 {
		t.Fatalf("rounds %v %v", rounds, err)
	}
	// The first round's figures: one succeeded round, one fetch timed, and
	// the success timestamp is the round's own finish time.
	var m1 map[string]float64
	h.waitFor("first round in the metrics", func() bool {
		m1 = h.scrapeMetrics()
		return m1[`ferry_agent_rounds_total{result="succeeded"}`] >= 1
	})
	series := []string{
		`ferry_agent_rounds_total{result="succeeded"}`,
		`ferry_agent_step_duration_seconds_count{step="fetch"}`,
		`ferry_agent_step_duration_seconds_count{step="plan"}`,
		`ferry_agent_last_success_commit_info{commit="` + st.LastSuccessfulCommit + `"}`,
	}
	for _, s := range series {
		if v, ok := m1[s]; !ok || v != 1 {
			t.Errorf("after one round, %s = %v (present %v), want 1", s, v, ok)
		}
	}
	ts1 := m1["ferry_agent_last_success_timestamp_seconds"]
	if want := unixSeconds(st.LastSuccessfulAt); ts1 <= 0 || math.Abs(ts1-want) > 0.001 {
		t.Errorf("last success timestamp = %v, want the round's finish %v", ts1, want)
	}

	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitRound(rounds[0].ID, func(r history.Round) bool { return r.Trigger == "api" })
	// The collectors are updated just after the round is recorded: wait for
	// the counter rather than race it.
	var m2 map[string]float64
	h.waitFor("second round in the metrics", func() bool {
		m2 = h.scrapeMetrics()
		return m2[series[0]] >= 2
	})
	for _, s := range series[:3] {
		if m2[s] != 2 {
			t.Errorf("after two rounds, %s = %v, want 2", s, m2[s])
		}
	}
	st2 := h.agent.Status()
	ts2 := m2["ferry_agent_last_success_timestamp_seconds"]
	if want := unixSeconds(st2.LastSuccessfulAt); ts2 <= ts1 || math.Abs(ts2-want) > 0.001 {
		t.Errorf("last success timestamp after the second round = %v (first %v), want the second round's finish %v", ts2, ts1, want)
	}
	// A second agent cannot register the same collectors in one registry.
	o := h.opts
	o.DataDir = t.TempDir()
	if _, err := NewAgent(o); !errors.Is(err, ErrAgentOptions) {
		t.Fatalf("duplicate registration: %v", err)
	}
}

// scrapeMetrics reads the agent's /metrics with the API token and returns
// each sample line's series (name with labels, as printed) and value.
func (h *harness) scrapeMetrics() map[string]float64 {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.http.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer api-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		h.t.Fatalf("metrics: %d %v", resp.StatusCode, err)
	}
	out := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			h.t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// unixSeconds is t as the float Unix time Prometheus gauges carry.
func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
