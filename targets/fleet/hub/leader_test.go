package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/httproute"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/device"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
	hostapi "github.com/ferry-wasm/ferry/targets/host/api"
)

// TestFollowerAnswers503: while the hub does not lead (a follower of
// several in-cluster agents), every device call — enroll, desired state,
// status — and every admin call answers 503 with Retry-After, and changes
// nothing: no device enrolls, no status is taken, no desired state is
// served. The device client reads the Retry-After and waits at least that
// long. Once the hub leads, the same calls succeed.
func TestFollowerAnswers503(t *testing.T) {
	var leading atomic.Bool
	h, err := hub.Open(hub.Options{Dir: t.TempDir(), Leading: leading.Load})
	if err != nil {
		t.Fatal(err)
	}
	devSrv := httptest.NewServer(h.DeviceHandler())
	defer devSrv.Close()
	mux := httproute.New()
	h.Routes(mux)
	adm := httptest.NewServer(mux)
	defer adm.Close()
	_, secret, err := h.Server().CreateToken(server.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A device enrolled while this agent led (before it lost the lease).
	leading.Store(true)
	d := enrollLabelled(t, devSrv.URL, secret, nil)
	if _, err := h.FleetTarget("edge", &spec.FleetTarget{Rollout: spec.DefaultRollout()}); err != nil {
		t.Fatal(err)
	}
	leading.Store(false)

	call := func(method, url, cred string, body any) *http.Response {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, url, bytes.NewReader(b))
		if cred != "" {
			req.Header.Set("Authorization", "Bearer "+cred)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, c := range []struct {
		name, method, url, cred string
		body                    any
	}{
		{"enroll", http.MethodPost, devSrv.URL + api.PathEnroll, "", api.EnrollRequest{Token: secret}},
		{"desired", http.MethodGet, devSrv.URL + fmt.Sprintf(api.PathDesiredFmt, d.id), d.cred, nil},
		{"status", http.MethodPut, devSrv.URL + fmt.Sprintf(api.PathStatusFmt, d.id), d.cred, api.StatusReport{Apps: []api.AppStatus{{Name: "alpha", Digest: digestA}}}},
		{"admin devices", http.MethodGet, adm.URL + "/v1/fleet/devices", "", nil},
		{"admin token", http.MethodPost, adm.URL + "/v1/fleet/tokens", "", hub.TokenRequest{}},
		{"admin pause", http.MethodPost, adm.URL + "/v1/fleet/rollouts/edge/alpha/pause", "", nil},
	} {
		resp := call(c.method, c.url, c.cred, c.body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
			t.Errorf("%s on a follower: %d, Retry-After %q; want 503 and 5", c.name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	devs := h.Server().Devices(nil)
	if len(devs) != 1 || devs[0].Status != nil || len(h.Server().Tokens()) != 1 {
		t.Fatalf("a follower changed the store: %d devices (status %+v), %d tokens", len(devs), devs[0].Status, len(h.Server().Tokens()))
	}

	// The real device client: a 503 with Retry-After is retryable and
	// says how long to wait.
	dc, err := device.NewClient(devSrv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dc.Enroll(context.Background(), api.EnrollRequest{Token: secret})
	if !errors.Is(err, device.ErrUnavailable) || device.RetryAfter(err) != hub.FollowerRetryAfter {
		t.Fatalf("enroll on a follower: %v (retry after %v), want ErrUnavailable after %v", err, device.RetryAfter(err), hub.FollowerRetryAfter)
	}

	// A device process started against the follower keeps retrying and
	// enrolls once the hub leads.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev, err := device.New(device.Options{Server: devSrv.URL, EnrollToken: secret, DataDir: t.TempDir(), Name: "late",
		Core: noApps{}, Backoff: device.Backoff{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	started := time.Now()
	go func() { errc <- dev.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	if n := len(h.Server().Devices(nil)); n != 1 {
		t.Fatalf("%d devices enrolled through a follower", n)
	}
	leading.Store(true)
	for deadline := time.Now().Add(30 * time.Second); len(h.Server().Devices(nil)) != 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the device did not enroll within 30s of the hub leading")
		}
	}
	// It waited the Retry-After, not its own 20-50 ms backoff.
	if took := time.Since(started); took < hub.FollowerRetryAfter {
		t.Errorf("enrolled %v after start, before the follower's Retry-After of %v", took, hub.FollowerRetryAfter)
	}
	if resp := call(http.MethodGet, devSrv.URL+fmt.Sprintf(api.PathDesiredFmt, d.id), d.cred, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("desired on the leader: %d", resp.StatusCode)
	}
	cancel()
	select {
	case <-errc:
	case <-time.After(30 * time.Second):
		t.Error("the device did not stop")
	}
}

// noApps is a device core that runs nothing: the test is about enrolling,
// and no rollout asks it to run an app.
type noApps struct{}

func (noApps) Put(ctx context.Context, name string, req hostapi.PutRequest) (hostapi.AppInfo, error) {
	return hostapi.AppInfo{}, errors.New("no apps here")
}
func (noApps) Delete(ctx context.Context, name string) error { return nil }
func (noApps) List() []hostapi.AppInfo                       { return nil }
