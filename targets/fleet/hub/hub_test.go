package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/httproute"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

const digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// enroll enrolls a device through the real device API and returns its ID
// and credential.
func enroll(t *testing.T, h *hub.Hub) (string, string) {
	t.Helper()
	_, secret, err := h.Server().CreateToken(server.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	devSrv := httptest.NewServer(h.DeviceHandler())
	defer devSrv.Close()
	body, _ := json.Marshal(api.EnrollRequest{Token: secret, Name: "rpi", Info: api.DeviceInfo{Arch: "arm64"}})
	resp, err := http.Post(devSrv.URL+api.PathEnroll, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er api.EnrollResponse
	if err := json.NewDecoder(resp.Body).Decode(&er); err != nil || resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("enroll: %d %v", resp.StatusCode, err)
	}
	return er.DeviceID, er.Credential
}

// TestHubRestoresFleetsOnOpen: a rollout put through a fleet target is
// what the device is told after the hub is reopened over the same
// directory, before anything opens the target again (the agent's first
// round after a restart comes later than the devices' polls).
func TestHubRestoresFleetsOnOpen(t *testing.T) {
	dir := t.TempDir()
	h, err := hub.Open(hub.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := enroll(t, h)
	tg, err := h.FleetTarget("edge", &spec.FleetTarget{Rollout: spec.DefaultRollout()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Put(context.Background(), targets.DesiredApp{Name: "alpha", Ref: "127.0.0.1:1/x/alpha@" + digestA, Digest: digestA}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.Start(ctx)
	c, _ := h.Controller("edge")
	c.StepAll()
	cancel()
	if got, ok := h.Server().DesiredApp(id, "edge/alpha"); !ok || got.Digest != digestA {
		t.Fatalf("before the restart the device is told %+v (%v), want %s", got, ok, digestA)
	}

	h2, err := hub.Open(hub.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := h2.Server().DesiredApp(id, "edge/alpha"); !ok || got.Digest != digestA {
		t.Fatalf("after reopening, the device is told %+v (%v), want %s", got, ok, digestA)
	}
	if _, err := h2.Controller("edge"); err != nil {
		t.Fatal(err)
	}
}

// TestHubAdminAPI drives the admin API through Client: tokens, devices,
// rollouts, and the errors of unknown names and bad input.
func TestHubAdminAPI(t *testing.T) {
	h, err := hub.Open(hub.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mux := httproute.New()
	h.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := &hub.Client{BaseURL: srv.URL}
	ctx := context.Background()

	tok, err := c.CreateToken(ctx, hub.TokenRequest{TTL: "1h", Uses: 3, Labels: map[string]string{"ring": "canary"}})
	if err != nil || tok.Secret == "" || tok.Token.MaxUses != 3 || tok.Token.Expires.IsZero() {
		t.Fatalf("create token: %+v %v", tok, err)
	}
	toks, err := c.Tokens(ctx)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
	if b, _ := json.Marshal(toks); strings.Contains(string(b), tok.Secret) {
		t.Error("the token list shows the secret")
	}
	var apiErr *hub.APIError
	if _, err := c.CreateToken(ctx, hub.TokenRequest{TTL: "soon"}); !errors.As(err, &apiErr) || apiErr.Code != http.StatusBadRequest {
		t.Errorf("bad ttl: %v, want 400", err)
	}
	if _, err := c.Devices(ctx, "a in"); !errors.As(err, &apiErr) || apiErr.Code != http.StatusBadRequest {
		t.Errorf("bad selector: %v, want 400", err)
	}
	if err := c.RevokeDevice(ctx, "nope"); !errors.As(err, &apiErr) || apiErr.Code != http.StatusNotFound {
		t.Errorf("revoke unknown device: %v, want 404", err)
	}
	if _, err := c.Rollouts(ctx, "nope"); !errors.As(err, &apiErr) || apiErr.Code != http.StatusNotFound {
		t.Errorf("rollouts of an unknown target: %v, want 404", err)
	}
	if _, err := h.FleetTarget("edge", &spec.FleetTarget{Rollout: spec.DefaultRollout()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Act(ctx, "edge", "alpha", "pause", ""); !errors.As(err, &apiErr) || apiErr.Code != http.StatusNotFound {
		t.Errorf("pause without a rollout: %v, want 404", err)
	}
	if err := c.RevokeToken(ctx, tok.Token.ID); err != nil {
		t.Fatal(err)
	}
	if toks, _ := c.Tokens(ctx); len(toks) != 1 || toks[0].Revoked.IsZero() {
		t.Errorf("after revoke: %+v", toks)
	}
}
