package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
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

// TestFleetEventsReachTheBus: a real fleet hub's device enrollment (over
// its device API) and a controller's rollout event become bus events.
func TestFleetEventsReachTheBus(t *testing.T) {
	var bus eventBus
	got := make(chan agent.Event, 100)
	bus.publish(agent.Event{Kind: agent.EventDevice}) // before attach: dropped
	bus.attach(func(e agent.Event) { got <- e })
	h, err := hub.Open(hub.Options{Dir: t.TempDir(), OnEvent: bus.fleetEvent})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bus.publishDevices(ctx, h, 10*time.Millisecond)
	srv := httptest.NewServer(h.DeviceHandler())
	defer srv.Close()
	_, secret, err := h.Server().CreateToken(server.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(api.EnrollRequest{Token: secret, Name: "board"})
	resp, err := http.Post(srv.URL+api.PathEnroll, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("enroll = %d", resp.StatusCode)
	}
	select {
	case e := <-got:
		if e.Kind != agent.EventDevice {
			t.Fatalf("first event %+v, want a device event", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the enrollment reached no bus event")
	}
	bus.fleetEvent(controller.Event{Kind: controller.EventAborted, Target: "edge", App: "api", To: "sha256:bb", Reason: "2 of 2 failed", Devices: 2})
	for e := range got {
		if e.Kind == agent.EventFleet {
			if e.Target != "edge" || e.App != "api" || e.Phase != "aborted" || !strings.Contains(e.Message, "2 of 2 failed") {
				t.Fatalf("fleet event %+v", e)
			}
			break
		}
	}
}
