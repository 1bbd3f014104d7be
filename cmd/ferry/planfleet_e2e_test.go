package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
)

// TestPlanFleetPreview: `ferry plan` run by hand, on a working copy ahead
// of the agent, previews the fleet target against the agent's device
// inventory — three real ferry-host device processes, two of them
// selected — as "roll out DIGEST to 2 matching devices in 2 waves" with
// the current rollout's state, in text and in -o json; the agent's own
// history and status carry the same preview. Without a reachable agent the
// fleet target is left out with a warning, and ferry apply of a plan
// saved with it leaves it to the agent.
func TestPlanFleetPreview(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	specHCL := func() string {
		s := fleetE2ESpec(reg.Addr+"/fleet", agentE2EAppHCL("alpha"))
		s = strings.Replace(s, `soak          = "10s"`, `soak          = "1s"`, 1)
		return strings.Replace(s, "    device_timeout", "    rate_limit  = 60\n    rate_growth = 2\n    device_timeout", 1)
	}
	// First the fleet without the app, so that the devices have enrolled
	// when v1's rollout is planned.
	w.Write("ferry.hcl", strings.Replace(specHCL(), `apps     = ["alpha"]`, `apps     = []`, 1))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.Commit("an empty fleet")
	w.Push()

	ctx, cancel := context.WithCancel(context.Background())
	out, stderr := &testenv.Buffer{}, &testenv.Buffer{}
	done := make(chan int, 1)
	args := agentE2EAgentArgs(t, e, srv.URL(), t.TempDir(), "--interval", "1s", "--device-listen", "127.0.0.1:0")
	go func() { done <- run(ctx, args, strings.NewReader(""), out, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ferry agent exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("ferry agent did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("ferry agent log (tail):\n%s", agentE2ETail(stderr.String(), 80))
		}
	})
	var agentURL, deviceAPI string
	for deadline := time.Now().Add(30 * time.Second); agentURL == "" || deviceAPI == ""; time.Sleep(20 * time.Millisecond) {
		if m := agentE2EAPIRE.FindStringSubmatch(out.String()); m != nil {
			agentURL = m[1]
		}
		if m := fleetE2EDeviceAPIRE.FindStringSubmatch(out.String()); m != nil {
			deviceAPI = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry agent printed no API and device API addresses within 30s:\n%s\n%s", out.String(), stderr.String())
		}
	}
	a := &agentE2EAgent{URL: agentURL, Client: &agent.Client{BaseURL: agentURL, Token: agentE2EAPIToken}}
	cli := func(args ...string) string {
		t.Helper()
		var o, eb testenv.Buffer
		if code := run(context.Background(), append(args, "--agent", agentURL), strings.NewReader(""), &o, &eb); code != 0 {
			t.Fatalf("ferry %s: exit %d\n%s%s", strings.Join(args, " "), code, o.String(), eb.String())
		}
		return o.String()
	}
	token := func(labels string) string {
		var tok struct {
			Secret string `json:"secret"`
		}
		if err := json.Unmarshal([]byte(cli("fleet", "token", "create", "--ttl", "1h", "--labels", labels, "-o", "json")), &tok); err != nil || tok.Secret == "" {
			t.Fatalf("token create: %v", err)
		}
		return tok.Secret
	}
	edgeTok, labTok := token("ring=edge"), token("ring=lab")
	_, hostBin := e2eBinaries(t)
	var appsURLs []string
	for i, tok := range []string{edgeTok, edgeTok, labTok} {
		name := fmt.Sprintf("box-%d", i)
		cmd := exec.Command(hostBin, "device", "--server", deviceAPI, "--enroll-token", tok, "--name", name,
			"--data-dir", filepath.Join(t.TempDir(), name), "--trust-key", e.pubPath, "--listen", "127.0.0.1:0",
			"--poll-wait", "5s", "--heartbeat", "1s")
		cmd.Env = append(cmd.Environ(), "DOCKER_CONFIG="+filepath.Join(t.TempDir(), "docker"))
		proc, m := testenv.StartProcess(t, cmd, fleetE2EDeviceRE, time.Minute)
		if i < 2 {
			appsURLs = append(appsURLs, m[1])
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("device %s log (tail):\n%s", name, agentE2ETail(proc.Stderr.String(), 30))
			}
		})
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if strings.Count(cli("fleet", "devices"), "box-") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the three devices did not enroll within 1m")
		}
	}
	w.Write("ferry.hcl", specHCL())
	w.Commit("alpha v1")
	w.Push()
	for _, u := range appsURLs {
		agentE2EWaitServing(t, u, "alpha", "alpha v1", 2*time.Minute)
	}
	var v1 controller.Rollout
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var ros []controller.Rollout
		if err := json.Unmarshal([]byte(cli("fleet", "rollout", "status", "edge", "-o", "json")), &ros); err == nil && len(ros) == 1 &&
			ros[0].State.Outcome == fleet.OutcomeCompleted && ros[0].State.Counts().Healthy == 2 {
			v1 = ros[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("v1 did not complete on both edge devices within 2m")
		}
	}

	// The working copy is ahead of the agent: alpha v2, not pushed.
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v2"))
	planArgs := []string{"plan", "--key", e.keyPath, "--build-cache", filepath.Join(t.TempDir(), "build"),
		"--cache-dir", filepath.Join(t.TempDir(), "oci"), "--agent", agentURL}
	var jout, jerr testenv.Buffer
	if code := run(context.Background(), append(planArgs, "-o", "json", w.Dir), strings.NewReader(""), &jout, &jerr); code != 0 {
		t.Fatalf("ferry plan -o json: exit %d\n%s%s", code, jout.String(), jerr.String())
	}
	p, err := plan.UnmarshalPlan([]byte(jout.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, jout.String())
	}
	tp := p.Target("edge")
	if tp == nil || tp.Errored || len(tp.Changes) != 1 {
		t.Fatalf("plan of the fleet target: %+v\n%s", tp, jerr.String())
	}
	ch := tp.Changes[0]
	pv := ch.Rollout
	if ch.Action != plan.ActionUpdate || ch.Before == nil || ch.Before.Digest != v1.State.To || pv == nil || pv.Digest != ch.After.Digest ||
		pv.Devices != 2 || fmt.Sprint(pv.Waves) != "[1 1]" || fmt.Sprint(pv.Rates) != "[60 120]" {
		t.Fatalf("fleet change: %s %+v rollout %+v", ch.Action, ch.Before, pv)
	}
	if c := pv.Current; c == nil || c.To != v1.State.To || c.Outcome != "completed" || c.Wave != 2 || c.Waves != 2 || c.Healthy != 2 || c.Pending != 0 {
		t.Fatalf("current rollout: %+v", pv.Current)
	}
	if !strings.Contains(jerr.String(), "fleet target edge is planned against the devices of the agent at "+agentURL) {
		t.Errorf("no note that the fleet is planned against the agent:\n%s", jerr.String())
	}
	var tout, terr testenv.Buffer
	run(context.Background(), append(planArgs, w.Dir), strings.NewReader(""), &tout, &terr)
	for _, want := range []string{
		fmt.Sprintf("rollout: roll out %s to 2 matching devices in 2 waves (1, 1 devices; at most 60, 120 a minute)", plan.ShortDigest(ch.After.Digest)),
		fmt.Sprintf("current: (none) → %s completed, wave 2/2: 2 healthy, 0 updating, 0 failed, 0 rolled back, 0 pending", plan.ShortDigest(v1.State.To)),
	} {
		if !strings.Contains(tout.String(), want) {
			t.Errorf("ferry plan lacks %q:\n%s%s", want, tout.String(), terr.String())
		}
	}

	// The agent's own plan recorded the preview of v1's rollout.
	var rec history.AppRecord
	for _, r := range agentE2EHistory(t, a) {
		for _, ar := range agentE2ERecords(r, "alpha") {
			if ar.Target == "edge" && ar.Action == string(plan.ActionCreate) {
				rec = ar
			}
		}
	}
	if !strings.Contains(rec.Rollout, fmt.Sprintf("rollout: roll out %s to 2 matching devices in 2 waves", plan.ShortDigest(v1.State.To))) {
		t.Errorf("the agent's history of v1's create: %+v", rec)
	}
	st := agentE2EStatus(t, a)
	found := false
	for _, app := range st.Apps {
		for _, tg := range app.Targets {
			found = found || (app.Name == "alpha" && tg.Target == "edge" && strings.Contains(tg.Rollout, "current: (none) → "+plan.ShortDigest(v1.State.To)))
		}
	}
	if !found {
		t.Errorf("ferry status shows no rollout for alpha on edge: %+v", st.Apps)
	}

	// With the agent out of reach the fleet is left out, with a warning.
	var dout, derr testenv.Buffer
	down := append(slicesClone(planArgs[:len(planArgs)-1]), "http://127.0.0.1:1", w.Dir)
	if code := run(context.Background(), down, strings.NewReader(""), &dout, &derr); code != 0 {
		t.Fatalf("ferry plan with the agent down: exit %d\n%s%s", code, dout.String(), derr.String())
	}
	if !strings.Contains(derr.String(), "could not be read") || strings.Contains(dout.String(), "Target edge") {
		t.Errorf("agent down: want a warning and no fleet target:\n%s%s", dout.String(), derr.String())
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }
