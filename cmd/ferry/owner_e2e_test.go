package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestOwnerTwoSpecsShareOneHost applies two different specs (two spec
// directories, so two owners) to one real ferry-host process: neither
// prunes the other's apps, each plan shows the other's apps as notes and
// not as deletes, an app name the other spec owns is a plan error naming
// that owner (exit 1), -adopt takes it over, and the recorded owners
// survive a restart of the host.
func TestOwnerTwoSpecsShareOneHost(t *testing.T) {
	w := newE2EWorld(t)
	v1, v2 := e2eWasm(t)
	dirA := w.specDir
	dirB := filepath.Join(w.work, "spec-b")
	useSpec := func(dir string, apps []e2eApp) {
		w.specDir = dir
		w.writeSpec(apps)
	}
	ownerOf := func(dir string) string {
		abs, err := filepath.EvalSymlinks(dir)
		if err != nil {
			t.Fatal(err)
		}
		return plan.OwnerOf("dir:"+filepath.ToSlash(abs), "local")
	}
	const a1, a2, b1 = "own-a1", "own-a2", "own-b1"

	useSpec(dirA, []e2eApp{{a1, v1}, {a2, v1}})
	if code, out, errs := w.apply(); code != 0 {
		t.Fatalf("apply spec A: exit %d\n%s\n%s", code, out, errs)
	}
	ownerA := ownerOf(dirA)
	useSpec(dirB, []e2eApp{{b1, v2}})
	ownerB := ownerOf(dirB)
	if ownerA == ownerB {
		t.Fatalf("both specs have owner %q", ownerA)
	}

	// B's plan: one create, A's apps are notes, not deletes.
	pl := planJSON(t, w)
	if len(pl.Targets) != 1 {
		t.Fatalf("plan of B: %d targets, want 1", len(pl.Targets))
	}
	tp := pl.Targets[0]
	if len(tp.Changes) != 1 || tp.Changes[0].App != b1 || tp.Changes[0].Action != plan.ActionCreate {
		t.Errorf("plan of B: changes %+v, want only create %s", tp.Changes, b1)
	}
	for _, app := range []string{a1, a2} {
		if !hasNote(tp.Diagnostics, app, "App of another owner left alone", ownerA) {
			t.Errorf("plan of B has no note that %s (owned by %s) is left alone:\n%+v", app, ownerA, tp.Diagnostics)
		}
	}
	if code, out, errs := w.apply(); code != 0 {
		t.Fatalf("apply spec B: exit %d\n%s\n%s", code, out, errs)
	}
	wantOwners := map[string]string{a1: ownerA, a2: ownerA, b1: ownerB}
	checkOwners(t, "after applying A and B", w.apps(), wantOwners)

	// A again: nothing to do, B's app is not a delete.
	w.specDir = dirA
	if code, out, errs := w.planExit(); code != 0 {
		t.Errorf("plan of A after B applied: exit %d, want 0 (no changes)\n%s\n%s", code, out, errs)
	}
	w.specDir = dirB

	// A name A owns, in B: an error naming the app and its owner; nothing
	// changes on the host.
	useSpec(dirB, []e2eApp{{b1, v2}, {a1, v2}})
	code, out, errs := w.planExit()
	all := out + errs
	if code != exitError || !strings.Contains(all, "App is owned by another spec") ||
		!strings.Contains(all, `"`+a1+`"`) || !strings.Contains(all, ownerA) {
		t.Errorf("plan of B with A's app: exit %d, want %d naming %s and owner %s\n%s\n%s", code, exitError, a1, ownerA, out, errs)
	}
	if code, out, errs := w.apply(); code != exitError {
		t.Errorf("apply of B with A's app: exit %d, want %d\n%s\n%s", code, exitError, out, errs)
	}
	checkOwners(t, "after the refused apply", w.apps(), wantOwners)
	if code, body, err := w.getBody(a1); err != nil || code != 200 || body != bodyV1 {
		t.Errorf("%s after the refused apply: %d %q %v, want A's v1", a1, code, body, err)
	}

	// -adopt takes it over: B's version serves, owned by B; A's plan now
	// sees a clash the other way round, and does not delete it either.
	if code, out, errs := w.apply("-adopt"); code != 0 {
		t.Fatalf("apply -adopt of B: exit %d\n%s\n%s", code, out, errs)
	}
	wantOwners[a1] = ownerB
	checkOwners(t, "after adopting", w.apps(), wantOwners)
	if code, body, err := w.getBody(a1); err != nil || code != 200 || body != bodyV2 {
		t.Errorf("%s after adopting: %d %q %v, want B's v2", a1, code, body, err)
	}
	w.specDir = dirA
	if code, out, errs := w.planExit(); code != exitError || !strings.Contains(out+errs, ownerB) {
		t.Errorf("plan of A after B adopted %s: exit %d, want %d naming owner %s\n%s\n%s", a1, code, exitError, ownerB, out, errs)
	}
	useSpec(dirA, []e2eApp{{a2, v1}})
	if code, out, errs := w.apply(); code != 0 {
		t.Errorf("apply of A without %s: exit %d\n%s\n%s", a1, code, out, errs)
	}
	checkOwners(t, "after A dropped the adopted app", w.apps(), wantOwners)

	// The owners are in the host's state directory: a restarted host
	// reports them.
	if err := w.host.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.host.done:
	case <-time.After(30 * time.Second):
		t.Fatal("ferry-host did not stop on SIGTERM")
	}
	_, hostBin := e2eBinaries(t)
	w.host = startE2EHost(t, w.env, hostBin,
		"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
		"--state-dir", filepath.Join(w.work, "host-state"),
		"--trust-key", filepath.Join(w.work, "cosign.pub"))
	c, err := driver.NewClient(w.host.ctlURL, e2eToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.client = c
	apps := w.apps()
	checkOwners(t, "after a host restart", apps, wantOwners)
	for name, a := range apps {
		if a.Status != api.StatusServing {
			t.Errorf("%s after the restart: status %s, want serving", name, a.Status)
		}
	}
}

// planJSON runs `ferry plan -o json` on the world's spec.
func planJSON(t *testing.T, w *e2eWorld) *plan.Plan {
	t.Helper()
	args := append([]string{"plan", "-o", "json"}, w.releaseArgs()...)
	code, out, errs := w.ferry(append(args, w.specDir)...)
	if code != 0 {
		t.Fatalf("ferry plan -o json: exit %d\n%s\n%s", code, out, errs)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("decoding the plan: %v\n%s", err, out)
	}
	return &p
}

func hasNote(ds plan.Diagnostics, app, summary, detail string) bool {
	for _, d := range ds {
		if d.Severity == plan.SeverityNote && d.App == app && d.Summary == summary && strings.Contains(d.Detail, detail) {
			return true
		}
	}
	return false
}

func checkOwners(t *testing.T, when string, apps map[string]api.AppInfo, want map[string]string) {
	t.Helper()
	if len(apps) != len(want) {
		t.Errorf("%s: the host runs %d apps, want %d (%v)", when, len(apps), len(want), want)
	}
	for name, owner := range want {
		a, ok := apps[name]
		if !ok {
			t.Errorf("%s: app %s is gone from the host", when, name)
			continue
		}
		if a.Owner != owner {
			t.Errorf("%s: app %s has owner %q, want %q", when, name, a.Owner, owner)
		}
	}
}
