package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/internal/httproute"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

const digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

// enrolled is an enrolled device speaking the real device API.
type enrolled struct{ id, cred string }

func enrollLabelled(t *testing.T, devURL, secret string, labels map[string]string) enrolled {
	t.Helper()
	body, _ := json.Marshal(api.EnrollRequest{Token: secret, Labels: labels, Info: api.DeviceInfo{Arch: "amd64"}})
	resp, err := http.Post(devURL+api.PathEnroll, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er api.EnrollResponse
	if err := json.NewDecoder(resp.Body).Decode(&er); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("enroll: %d %v", resp.StatusCode, err)
	}
	return enrolled{er.DeviceID, er.Credential}
}

func (d enrolled) report(t *testing.T, devURL, digest string) {
	t.Helper()
	body, _ := json.Marshal(api.StatusReport{Apps: []api.AppStatus{{Name: "alpha", Digest: digest, Phase: api.PhaseServing, Healthy: true}}})
	req, _ := http.NewRequest(http.MethodPut, devURL+fmt.Sprintf(api.PathStatusFmt, d.id), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.cred)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status report: %d", resp.StatusCode)
	}
}

// TestRemoteMatchesAgent: a fleet target read through the admin API
// (hub.Remote, what `ferry plan` run by hand uses) observes exactly what
// the agent's controller observes and previews exactly what it previews;
// with a policy changed in the spec at hand it previews that policy; a
// target the agent does not know yet previews over the whole inventory;
// it refuses to Put or Delete.
func TestRemoteMatchesAgent(t *testing.T) {
	h, err := hub.Open(hub.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	devSrv := httptest.NewServer(h.DeviceHandler())
	defer devSrv.Close()
	mux := httproute.New()
	h.Routes(mux)
	adm := httptest.NewServer(mux)
	defer adm.Close()
	client := &hub.Client{BaseURL: adm.URL}

	_, secret, err := h.Server().CreateToken(server.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var edge []enrolled
	for i := range 12 {
		ring := "edge"
		if i%4 == 3 {
			ring = "lab" // 3 devices the selector leaves out
		}
		d := enrollLabelled(t, devSrv.URL, secret, map[string]string{"ring": ring})
		if ring == "edge" {
			edge = append(edge, d)
		}
	}
	policy := &spec.FleetTarget{Selector: mustSel(t, "ring=edge"), Rollout: &spec.Rollout{
		Waves:         []spec.Wave{{Percent: 34}, {Percent: 100}},
		RateLimit:     2,
		RateGrowth:    3,
		HealthGate:    spec.HealthGate{SuccessRatio: 1},
		Abort:         spec.Abort{FailureRatio: 0.5, MinSample: 1},
		DeviceTimeout: time.Hour,
		AutoRollback:  true,
	}}
	tg, err := h.FleetTarget("edge", policy)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := tg.Put(ctx, targets.DesiredApp{Name: "alpha", Ref: "127.0.0.1:1/x/alpha@" + digestA, Digest: digestA, Owner: "repo#edge"}); err != nil {
		t.Fatal(err)
	}
	c, _ := h.Controller("edge")
	c.StepAll() // wave 1: 2 of its 4 devices at 2 a minute
	for _, d := range edge {
		if got, ok := h.Server().DesiredApp(d.id, "edge/alpha"); ok && got.Digest == digestA {
			d.report(t, devSrv.URL, digestA)
		}
	}
	c.StepAll()

	remote := &hub.Remote{Client: client, Name: "edge", Fleet: policy}
	want, _ := c.Observe(ctx)
	got, err := remote.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" || len(got) != 1 || got[0].Owner != "repo#edge" || got[0].Phase != targets.PhaseProgressing {
		t.Fatalf("Observe through the admin API differs from the agent's (-agent +remote):\n%s\n%+v", diff, got)
	}
	next := targets.DesiredApp{Name: "alpha", Ref: "127.0.0.1:1/x/alpha@" + digestB, Digest: digestB}
	wantPV, err := c.PreviewRollout(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	gotPV, err := remote.PreviewRollout(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantPV, gotPV); diff != "" {
		t.Fatalf("PreviewRollout through the admin API differs (-agent +remote):\n%s", diff)
	}
	cur := gotPV.Current
	if gotPV.Devices != 9 || fmt.Sprint(gotPV.Waves) != "[4 5]" || fmt.Sprint(gotPV.Rates) != "[2 6]" || cur == nil ||
		cur.To != digestA || cur.Outcome != "running" || cur.Wave != 1 || cur.Waves != 2 || cur.Healthy != 2 || cur.Pending != 7 || cur.Updating != 0 {
		t.Fatalf("preview: %+v, current %+v", gotPV, cur)
	}

	// Paused on the agent: the remote preview says so.
	if _, err := client.Act(ctx, "edge", "alpha", "pause", ""); err != nil {
		t.Fatal(err)
	}
	if pv, err := remote.PreviewRollout(ctx, next); err != nil || !pv.Current.Paused {
		t.Fatalf("after pause: %+v %v", pv.Current, err)
	}
	// Aborted by a person, with a reason: rolled back, and why.
	if _, err := client.Act(ctx, "edge", "alpha", "abort", "the canaries look slow"); err != nil {
		t.Fatal(err)
	}
	if pv, err := remote.PreviewRollout(ctx, next); err != nil || pv.Current.Outcome != "aborted" || pv.Current.Reason != "the canaries look slow" || pv.Current.RolledBack != 2 {
		t.Fatalf("after abort: %+v %v", pv.Current, err)
	}

	// The spec at hand changed the policy: its waves are previewed.
	changed := *policy
	r := *policy.Rollout
	r.Waves = []spec.Wave{{Percent: 10}, {Percent: 50}, {Percent: 100}}
	r.RateGrowth = 0
	changed.Rollout = &r
	pv, err := (&hub.Remote{Client: client, Name: "edge", Fleet: &changed}).PreviewRollout(ctx, next)
	if err != nil || fmt.Sprint(pv.Waves) != "[1 4 4]" || fmt.Sprint(pv.Rates) != "[2 2 2]" {
		t.Fatalf("changed policy: %+v %v", pv, err)
	}

	// A fleet target the agent has not seen: no apps, every device it selects.
	fresh := &hub.Remote{Client: client, Name: "store", Fleet: &spec.FleetTarget{}}
	if obs, err := fresh.Observe(ctx); err != nil || len(obs) != 0 {
		t.Fatalf("unknown target observes %+v %v", obs, err)
	}
	if pv, err := fresh.PreviewRollout(ctx, next); err != nil || pv.Devices != 12 || pv.Current != nil || len(pv.Waves) != 1 {
		t.Fatalf("unknown target previews %+v %v", pv, err)
	}

	if _, err := remote.Put(ctx, next); !errors.Is(err, hub.ErrReadOnly) {
		t.Errorf("Put: %v, want ErrReadOnly", err)
	}
	if err := remote.Delete(ctx, "alpha"); !errors.Is(err, hub.ErrReadOnly) {
		t.Errorf("Delete: %v, want ErrReadOnly", err)
	}
	// The agent's API is protected by the caller: a refusal there is an
	// error, not an empty fleet.
	deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
	}))
	defer deny.Close()
	if _, err := (&hub.Remote{Client: &hub.Client{BaseURL: deny.URL}, Name: "edge", Fleet: policy}).Observe(ctx); err == nil {
		t.Error("Observe through an agent that refuses the token succeeded")
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if _, err := (&hub.Remote{Client: &hub.Client{BaseURL: down.URL}, Name: "edge", Fleet: policy}).Observe(ctx); !errors.Is(err, targets.ErrUnavailable) {
		t.Errorf("Observe of an agent that is down: %v, want ErrUnavailable", err)
	}
}

func mustSel(t *testing.T, s string) spec.LabelSelector {
	t.Helper()
	sel, err := spec.ParseLabelSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}
