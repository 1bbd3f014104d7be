package sync

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
	if st.LastRound.Result != RoundSucceeded || st.LastSuccessfulCommit == "" || len(st.Apps) != 2 || st.Repo != h.srv.URL() {
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
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitRound(rounds[0].ID, func(r Round) bool { return r.Trigger == "api" })

	req, _ := http.NewRequest("GET", h.http.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer api-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ferry_agent_rounds_total{result="succeeded"}`,
		`ferry_agent_step_duration_seconds_bucket{step="fetch"`,
		`ferry_agent_last_success_commit_info{commit="` + st.LastSuccessfulCommit + `"} 1`,
		`ferry_agent_last_success_timestamp_seconds`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// A second agent cannot register the same collectors in one registry.
	o := h.opts
	o.DataDir = t.TempDir()
	if _, err := NewAgent(o); !errors.Is(err, ErrAgentOptions) {
		t.Fatalf("duplicate registration: %v", err)
	}
}
