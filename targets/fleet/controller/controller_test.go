package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// unit is a real server and controller on a fake clock; devices talk to
// the real handler in-process and the test steps the controller itself.
type unit struct {
	t       *testing.T
	clk     *fakeClock
	srvDir  string
	ctlDir  string
	srv     *server.Server
	ctl     *Controller
	policy  *spec.FleetTarget
	secret  string
	devices []api.EnrollResponse
}

func twoWaves() *spec.FleetTarget {
	return &spec.FleetTarget{Rollout: &spec.Rollout{
		Waves:         []spec.Wave{{Percent: 50}, {Percent: 100}},
		HealthGate:    spec.HealthGate{SuccessRatio: 1},
		Abort:         spec.Abort{FailureRatio: 0.5, MinSample: 100},
		DeviceTimeout: time.Minute,
		AutoRollback:  true,
	}}
}

func newUnit(t *testing.T, policy *spec.FleetTarget) *unit {
	u := &unit{t: t, clk: &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, srvDir: t.TempDir(), ctlDir: t.TempDir(), policy: policy}
	u.open()
	_, secret, err := u.srv.CreateToken(server.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u.secret = secret
	return u
}

func (u *unit) open() {
	u.t.Helper()
	srv, err := server.Open(u.srvDir, server.Options{Now: u.clk.Now})
	if err != nil {
		u.t.Fatal(err)
	}
	ctl, err := New(Options{Name: "edge", Fleet: u.policy, Server: srv, Dir: u.ctlDir, Now: u.clk.Now})
	if err != nil {
		u.t.Fatal(err)
	}
	u.srv, u.ctl = srv, ctl
}

func (u *unit) call(method, path, cred string, body any) *httptest.ResponseRecorder {
	data, _ := json.Marshal(body)
	req := httptest.NewRequest(method, path, bytes.NewReader(data))
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	rec := httptest.NewRecorder()
	u.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func (u *unit) enroll(n int, labels map[string]string) {
	u.t.Helper()
	for i := range n {
		rec := u.call("POST", api.PathEnroll, "", api.EnrollRequest{Token: u.secret, Name: fmt.Sprintf("d%d", len(u.devices)+i), Labels: labels})
		var er api.EnrollResponse
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &er) != nil {
			u.t.Fatalf("enroll: %d %s", rec.Code, rec.Body)
		}
		u.devices = append(u.devices, er)
	}
}

// report has every device that was told to run a version report it, healthy
// or not.
func (u *unit) reportAll(healthy bool) {
	u.t.Helper()
	u.clk.Add(time.Second)
	for _, er := range u.devices {
		a, ok := u.srv.DesiredApp(er.DeviceID, "edge/"+app)
		if !ok {
			continue
		}
		st := api.AppStatus{Name: app, Digest: a.Digest, Phase: api.PhaseServing, Healthy: true}
		if !healthy {
			st.Phase, st.Healthy = api.PhaseUnhealthy, false
		}
		if rec := u.call("PUT", fmt.Sprintf(api.PathStatusFmt, er.DeviceID), er.Credential, api.StatusReport{Apps: []api.AppStatus{st}}); rec.Code != 204 {
			u.t.Fatalf("status: %d %s", rec.Code, rec.Body)
		}
	}
}

// told counts the devices whose desired state has digest.
func (u *unit) told(digest string) int {
	n := 0
	for _, er := range u.devices {
		if a, ok := u.srv.DesiredApp(er.DeviceID, "edge/"+app); ok && a.Digest == digest {
			n++
		}
	}
	return n
}

func (u *unit) rollout() Rollout {
	u.t.Helper()
	r, err := u.ctl.Rollout(app)
	if err != nil {
		u.t.Fatal(err)
	}
	return r
}

func (u *unit) phase() targets.ObservedApp {
	u.t.Helper()
	obs, err := u.ctl.Observe(context.Background())
	if err != nil || len(obs) != 1 {
		u.t.Fatalf("Observe: %v %v", obs, err)
	}
	return obs[0]
}

func TestPauseResumeAbort(t *testing.T) {
	u := newUnit(t, twoWaves())
	u.enroll(10, nil)
	ctx := context.Background()
	res, err := u.ctl.Put(ctx, want(v1))
	if err != nil || res.Phase != targets.PhaseProgressing {
		t.Fatalf("Put: %+v %v", res, err)
	}
	if n := u.told(v1); n != 0 {
		t.Fatalf("%d devices told v1 before the first step", n)
	}
	u.ctl.StepAll()
	if n := u.told(v1); n != 5 {
		t.Fatalf("wave 1: %d devices told v1, want 5", n)
	}

	if err := u.ctl.Pause(app); err != nil {
		t.Fatal(err)
	}
	u.reportAll(true)
	u.ctl.StepAll()
	if r := u.rollout(); r.State.Counts().Healthy != 0 || !r.Paused || !strings.Contains(u.phase().Message, "paused") {
		t.Fatalf("paused rollout stepped: %s", r.Summary)
	}
	// A pause survives a restart.
	u.open()
	if !u.rollout().Paused {
		t.Fatal("pause lost across a restart")
	}
	if err := u.ctl.Resume(app); err != nil {
		t.Fatal(err)
	}
	u.ctl.StepAll()
	if r := u.rollout(); r.State.Counts().Healthy != 5 || r.State.Wave != 1 || u.told(v1) != 10 {
		t.Fatalf("after resume: %s (told v1: %d)", r.Summary, u.told(v1))
	}
	if ph := u.phase(); ph.Phase != targets.PhaseProgressing || ph.Digest != v1 || !strings.Contains(ph.Message, "wave 2/2") {
		t.Errorf("Observe: %+v", ph)
	}

	if err := u.ctl.Abort(app, ""); err != nil {
		t.Fatal(err)
	}
	r := u.rollout()
	if r.State.Outcome != fleet.OutcomeAborted || r.State.Counts().RolledBack != 10 || r.State.Reason != "aborted by a person" {
		t.Fatalf("after Abort: %s", r.Summary)
	}
	// Rolled back to the from-digest, none: the app is removed.
	if n := u.told(v1); n != 0 {
		t.Errorf("%d devices still told v1 after the abort", n)
	}
	if ph := u.phase(); ph.Phase != targets.PhaseFailed {
		t.Errorf("Observe after abort: %+v", ph)
	}
	if _, err := u.ctl.Put(ctx, want(v1)); !errors.Is(err, ErrAborted) {
		t.Errorf("Put of the aborted digest: %v, want ErrAborted", err)
	}
	// A newer digest supersedes it; its from is the old from (none).
	if _, err := u.ctl.Put(ctx, want(v2)); err != nil {
		t.Fatal(err)
	}
	if r := u.rollout(); r.State.Outcome != fleet.OutcomeRunning || r.State.From != "" || r.State.Supersedes != v1 {
		t.Errorf("superseding rollout: %s", r.Summary)
	}
	for _, op := range []func(string) error{u.ctl.Pause, u.ctl.Resume, func(a string) error { return u.ctl.Abort(a, "") }} {
		if err := op("nope"); !errors.Is(err, ErrNoRollout) {
			t.Errorf("op on an unknown app: %v", err)
		}
	}
}

func TestCompletesThenJoiners(t *testing.T) {
	u := newUnit(t, twoWaves())
	u.enroll(4, nil)
	ctx := context.Background()
	u.ctl.Put(ctx, want(v1))
	for range 4 {
		u.ctl.StepAll()
		u.reportAll(true)
	}
	u.ctl.StepAll()
	if ph := u.phase(); ph.Phase != targets.PhaseReady || !ph.Healthy {
		t.Fatalf("after all healthy: %+v", ph)
	}
	if res, err := u.ctl.Put(ctx, want(v1)); err != nil || res.Phase != targets.PhaseReady {
		t.Errorf("Put of the completed digest: %+v %v, want ready", res, err)
	}
	// A joiner after completion gets the version at once.
	u.enroll(1, nil)
	u.ctl.StepAll()
	if n := u.told(v1); n != 5 {
		t.Errorf("%d devices told v1, want 5 with the joiner", n)
	}
	// v2: devices not started yet keep v1, also after a restart.
	u.ctl.Put(ctx, want(v2))
	u.ctl.StepAll()
	if a, b := u.told(v1), u.told(v2); a+b != 5 || b == 0 || a == 0 {
		t.Fatalf("first wave of v2: %d on v1, %d on v2", a, b)
	}
	versions := map[string]string{}
	for _, d := range u.srv.Devices(nil) {
		versions[d.ID] = d.DesiredVersion
	}
	u.reportAll(true)
	u.open() // a restart: desired states come back from the saved rollout and the reports
	for _, d := range u.srv.Devices(nil) {
		if d.DesiredVersion != versions[d.ID] {
			t.Errorf("device %s: desired version %s after the restart, %s before", d.ID, d.DesiredVersion, versions[d.ID])
		}
	}
}

func TestDeviceTimeoutAndNextCheck(t *testing.T) {
	u := newUnit(t, twoWaves())
	u.enroll(2, nil)
	u.ctl.Put(context.Background(), want(v1))
	start := u.clk.Now()
	next := u.ctl.StepAll()
	if !next.Equal(start.Add(time.Minute)) {
		t.Errorf("NextCheck %v, want the device timeout %v", next, start.Add(time.Minute))
	}
	u.clk.Add(time.Minute)
	u.ctl.StepAll()
	r := u.rollout()
	var failed []string
	for id, p := range r.State.Devices {
		if p.Status == fleet.StatusFailed && p.Reason == fleet.ReasonTimeout {
			failed = append(failed, id)
		}
	}
	if len(failed) != 1 {
		t.Errorf("%v timed out, want the one silent wave-1 device: %s", failed, r.Summary)
	}
}

func TestSelectorValuesDelete(t *testing.T) {
	sel, err := spec.ParseLabelSelector("ring=a")
	if err != nil {
		t.Fatal(err)
	}
	p := twoWaves()
	p.Selector = sel
	u := newUnit(t, p)
	u.enroll(3, map[string]string{"ring": "a"})
	u.enroll(3, map[string]string{"ring": "b"})
	ctx := context.Background()
	u.ctl.Put(ctx, want(v1))
	for range 3 {
		u.ctl.StepAll()
		u.reportAll(true)
	}
	u.ctl.StepAll()
	if n := u.told(v1); n != 3 || u.rollout().State.Outcome != fleet.OutcomeCompleted {
		t.Fatalf("%d devices told v1, want the 3 of ring a; %s", n, u.rollout().Summary)
	}
	if n := len(u.ctl.Devices()); n != 3 {
		t.Errorf("Devices: %d, want 3", n)
	}
	// New values for the same digest reach the devices without a new rollout.
	w := want(v1)
	w.Secrets = map[string]string{"token": "rotated"}
	if _, err := u.ctl.Put(ctx, w); err != nil {
		t.Fatal(err)
	}
	for _, er := range u.devices[:3] {
		a, _ := u.srv.DesiredApp(er.DeviceID, "edge/"+app)
		if a.Values["token"] != "rotated" {
			t.Errorf("device %s values not updated", er.DeviceID)
		}
	}
	if u.rollout().State.Outcome != fleet.OutcomeCompleted {
		t.Error("a values change restarted the rollout")
	}
	if err := u.ctl.Delete(ctx, app); err != nil {
		t.Fatal(err)
	}
	if n := u.told(v1); n != 0 {
		t.Errorf("%d devices still told v1 after Delete", n)
	}
	if _, err := os.Stat(u.ctl.appDir(app)); !os.IsNotExist(err) {
		t.Errorf("app folder after Delete: %v", err)
	}
	if err := u.ctl.Delete(ctx, app); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := u.ctl.Put(ctx, targets.DesiredApp{Name: "Bad Name", Digest: v1, Ref: "r@" + v1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Put of a bad name: %v", err)
	}
}

// TestRevokedLeavesInventory: a revoked device is no longer part of the
// rollout (its credential fails at once; it gets no desired state).
func TestRevokedLeavesInventory(t *testing.T) {
	u := newUnit(t, twoWaves())
	u.enroll(2, nil)
	if err := u.srv.RevokeDevice(u.devices[0].DeviceID); err != nil {
		t.Fatal(err)
	}
	u.ctl.Put(context.Background(), want(v1))
	u.ctl.StepAll()
	u.reportAll(true)
	u.ctl.StepAll()
	r := u.rollout()
	if _, ok := r.State.Devices[u.devices[0].DeviceID]; ok || r.State.Outcome != fleet.OutcomeCompleted {
		t.Errorf("revoked device in the rollout: %s", r.Summary)
	}
	if rec := u.call("GET", fmt.Sprintf(api.PathDesiredFmt, u.devices[0].DeviceID), u.devices[0].Credential, nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("revoked device's GET: %d", rec.Code)
	}
}
