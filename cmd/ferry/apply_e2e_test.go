package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// e2eApplyResult is the part of `ferry apply -o json` (plan.ApplyResult)
// these tests read.
type e2eApplyResult struct {
	Changes *int `json:"changes"` // only in the no-change answer
	Targets []struct {
		Name string `json:"name"`
		Apps []struct {
			App          string `json:"app"`
			Action       string `json:"action"`
			Outcome      string `json:"outcome"`
			Digest       string `json:"digest"`
			Previous     string `json:"previous"`
			Error        string `json:"error"`
			RolledBack   bool   `json:"rolled_back"`
			RolledBackTo string `json:"rolled_back_to"`
			Detail       string `json:"detail"`
		} `json:"apps"`
	} `json:"targets"`
}

func parseApplyJSON(t *testing.T, out string) e2eApplyResult {
	t.Helper()
	var r e2eApplyResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("apply -o json printed no JSON result: %v\n%s", err, out)
	}
	return r
}

func e2eNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return names
}

func e2eSpec(names []string, wasm func(name string) []byte) []e2eApp {
	apps := make([]e2eApp, len(names))
	for i, n := range names {
		apps[i] = e2eApp{name: n, wasm: wasm(n)}
	}
	return apps
}

// TestApplySIGKILLMidApplyConverges is issue 5's crash proof with the real
// binaries: 20 apps run v1 on a ferry-host process; `ferry apply` of v2 is
// killed with SIGKILL once the host's control API shows at least one app
// changed; a probe polling every app throughout sees only v1 or v2 bodies
// (never an error or a 404); a new apply converges every app to v2, and
// then the plan is empty and a further apply changes nothing.
func TestApplySIGKILLMidApplyConverges(t *testing.T) {
	const n = 20
	w := newE2EWorld(t)
	v1, v2 := e2eWasm(t)
	names := e2eNames("crash", n)

	w.writeSpec(e2eSpec(names, func(string) []byte { return v1 }))
	if code, out, errs := w.apply(); code != 0 || !strings.Contains(out, fmt.Sprintf("%d applied", n)) {
		t.Fatalf("apply v1: exit %d\n%s\n%s", code, out, errs)
	}
	before := w.digests()
	if len(before) != n {
		t.Fatalf("the host runs %d apps after apply v1, want %d", len(before), n)
	}
	for _, a := range names {
		if code, body, err := w.getBody(a); err != nil || code != 200 || body != bodyV1 {
			t.Fatalf("%s after apply v1: %d %q %v", a, code, body, err)
		}
	}

	allowed := map[string][]string{}
	for _, a := range names {
		allowed[a] = []string{bodyV1, bodyV2}
	}
	probe := startProber(t, w.host.appsURL, allowed, 3)
	probe.waitFreshRound(t, 30*time.Second)

	// Apply v2 as a process and kill it once some app changed.
	w.writeSpec(e2eSpec(names, func(string) []byte { return v2 }))
	args := append([]string{"apply", "-auto-approve", "--lock-dir", filepath.Join(w.work, "locks"), "-lock-ttl", "5s"}, w.releaseArgs()...)
	cmd := w.command(append(args, w.specDir)...)
	var stdout, stderr testenv.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	killedAt := -1
	deadline := time.Now().Add(2 * time.Minute)
	for killedAt < 0 {
		select {
		case err := <-done:
			t.Fatalf("apply v2 ended (%v) before the host showed a changed app\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			t.Fatalf("apply v2 changed no app within 2 minutes\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		list, err := w.client.Apps(ctx)
		cancel()
		if err != nil {
			t.Fatalf("watching the host: %v", err)
		}
		changed := 0
		for _, a := range list {
			if a.Digest != before[a.Name] {
				changed++
			}
		}
		if changed > 0 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killedAt = changed
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	err := <-done
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("apply v2 did not die of SIGKILL: %v\nstdout:\n%s", err, stdout.String())
	}
	// Requests the killed process had in flight end on the host (done or
	// abandoned); then see how far it got.
	mid := w.waitQuiet(time.Second, 30*time.Second)
	changedAfterKill := 0
	for _, a := range names {
		if mid[a] != before[a] {
			changedAfterKill++
		}
	}
	t.Logf("SIGKILL after %d of %d apps changed; %d changed once the host settled", killedAt, n, changedAfterKill)
	if changedAfterKill == 0 || changedAfterKill == n {
		t.Fatalf("%d of %d apps changed by the killed apply: it was not killed mid-apply", changedAfterKill, n)
	}

	// A new apply converges: it updates exactly the apps still on v1 (the
	// killed process's flock is gone with it).
	code, out, errs := w.apply("-o", "json")
	if code != 0 {
		t.Fatalf("converging apply: exit %d\n%s\n%s", code, out, errs)
	}
	res := parseApplyJSON(t, out)
	if len(res.Targets) != 1 || len(res.Targets[0].Apps) != n {
		t.Fatalf("converging apply result has %d targets, want 1 with %d apps:\n%s", len(res.Targets), n, out)
	}
	final := w.digests()
	for _, r := range res.Targets[0].Apps {
		wantAction, wantOutcome := "update", "applied"
		if mid[r.App] != before[r.App] {
			wantAction, wantOutcome = "no-op", "unchanged"
		}
		if r.Action != wantAction || r.Outcome != wantOutcome {
			t.Errorf("converging apply: %s %s %s, want %s %s", r.App, r.Action, r.Outcome, wantAction, wantOutcome)
		}
		if r.Action == "update" && (r.Previous != before[r.App] || r.Digest != final[r.App]) {
			t.Errorf("converging apply: %s %s → %s, but the host ran %s and runs %s", r.App, r.Previous, r.Digest, before[r.App], final[r.App])
		}
	}
	for _, a := range names {
		if final[a] == before[a] {
			t.Errorf("%s still runs its v1 digest after the converging apply", a)
		}
		if code, body, err := w.getBody(a); err != nil || code != 200 || body != bodyV2 {
			t.Errorf("%s after converging: %d %q %v, want %q", a, code, body, err, bodyV2)
		}
	}
	probe.waitFreshRound(t, 30*time.Second)

	// Idempotent: the plan is empty and another apply changes nothing (the
	// host's generations stay as they are).
	if code, out, errs := w.planExit(); code != 0 {
		t.Fatalf("plan -detailed-exitcode after converging: exit %d (want 0)\n%s\n%s", code, out, errs)
	}
	gens := map[string]uint64{}
	for n, a := range w.apps() {
		gens[n] = a.Generation
	}
	code, out, errs = w.apply("-o", "json")
	if r := parseApplyJSON(t, out); code != 0 || r.Changes == nil || *r.Changes != 0 {
		t.Fatalf("second apply: exit %d, want 0 and {\"changes\": 0}\n%s\n%s", code, out, errs)
	}
	for n, a := range w.apps() {
		if a.Generation != gens[n] {
			t.Errorf("the no-op apply redeployed %s (generation %d → %d)", n, gens[n], a.Generation)
		}
	}

	probe.halt()
	probe.check(t)
	for _, a := range names {
		if probe.count(a, bodyV1) == 0 || probe.count(a, bodyV2) == 0 {
			t.Errorf("the probe saw %s answer v1 %d times and v2 %d times; want both", a, probe.count(a, bodyV1), probe.count(a, bodyV2))
		}
	}
	t.Logf("probe: %d requests", probe.total.Load())
}

// TestApplyHealthFailureRollsBack: one app's v2 traps on every request, so
// its health check fails. `ferry apply -o json` exits 1 and reports that
// app failed and rolled back to its v1 digest, while the other apps of the
// same apply get v2; the sick app serves v1 throughout (a probe checks),
// and the plan still shows its update as pending.
func TestApplyHealthFailureRollsBack(t *testing.T) {
	w := newE2EWorld(t)
	v1, v2 := e2eWasm(t)
	trap, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "trap.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	const sick = "health-sick"
	names := append(e2eNames("health-ok", 3), sick)

	w.writeSpec(e2eSpec(names, func(string) []byte { return v1 }))
	if code, out, errs := w.apply(); code != 0 {
		t.Fatalf("apply v1: exit %d\n%s\n%s", code, out, errs)
	}
	before := w.digests()

	allowed := map[string][]string{sick: {bodyV1}}
	for _, a := range names[:3] {
		allowed[a] = []string{bodyV1, bodyV2}
	}
	probe := startProber(t, w.host.appsURL, allowed, 2)
	probe.waitFreshRound(t, 30*time.Second)

	w.writeSpec(e2eSpec(names, func(n string) []byte {
		if n == sick {
			return trap
		}
		return v2
	}))
	code, out, errs := w.apply("-o", "json")
	if code != exitError {
		t.Fatalf("apply with a failing health check: exit %d, want %d\n%s\n%s", code, exitError, out, errs)
	}
	res := parseApplyJSON(t, out)
	if len(res.Targets) != 1 || len(res.Targets[0].Apps) != len(names) {
		t.Fatalf("apply result: want 1 target with %d apps:\n%s", len(names), out)
	}
	after := w.digests()
	for _, r := range res.Targets[0].Apps {
		if r.App == sick {
			if r.Outcome != "failed" || !r.RolledBack || r.RolledBackTo != before[sick] || r.Error == "" {
				t.Errorf("%s: outcome %s rolled_back %v to %s error %q; want failed, rolled back to %s with an error",
					r.App, r.Outcome, r.RolledBack, r.RolledBackTo, r.Error, before[sick])
			}
			if !strings.Contains(r.Error, "health") {
				t.Errorf("%s: error %q does not name the health check", r.App, r.Error)
			}
			continue
		}
		if r.Action != "update" || r.Outcome != "applied" || r.Digest != after[r.App] || r.Digest == before[r.App] {
			t.Errorf("%s: %s %s %s (host runs %s, ran %s); want update applied", r.App, r.Action, r.Outcome, r.Digest, after[r.App], before[r.App])
		}
	}
	if after[sick] != before[sick] {
		t.Errorf("%s runs %s after the failed apply, want its v1 %s", sick, after[sick], before[sick])
	}
	if code, body, err := w.getBody(sick); err != nil || code != 200 || body != bodyV1 {
		t.Errorf("%s after the failed apply: %d %q %v, want v1", sick, code, body, err)
	}
	for _, a := range names[:3] {
		if code, body, err := w.getBody(a); err != nil || code != 200 || body != bodyV2 {
			t.Errorf("%s after the apply: %d %q %v, want v2", a, code, body, err)
		}
	}

	// The human output says the same, and the plan still wants the update.
	code, out, errs = w.apply()
	if code != exitError || !strings.Contains(out, "local/"+sick+": update failed") || !strings.Contains(out, "rolled back to") ||
		!strings.Contains(out, "1 failed") || !strings.Contains(out, "3 unchanged") {
		t.Errorf("text apply: exit %d, want %d naming the failed app and its rollback\n%s\n%s", code, exitError, out, errs)
	}
	if code, out, errs := w.planExit(); code != exitUsage || !strings.Contains(out, "~ update "+sick) {
		t.Errorf("plan after the failed apply: exit %d, want 2 with the pending update of %s\n%s\n%s", code, sick, out, errs)
	}

	probe.waitFreshRound(t, 30*time.Second)
	probe.halt()
	probe.check(t)
	for _, a := range names[:3] {
		if probe.count(a, bodyV2) == 0 {
			t.Errorf("the probe never saw %s serve v2", a)
		}
	}
	if probe.count(sick, bodyV1) == 0 {
		t.Errorf("the probe never saw %s answer", sick)
	}
	t.Logf("probe: %d requests", probe.total.Load())
}
