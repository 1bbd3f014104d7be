package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/google/go-cmp/cmp"
)

func desiredOne(target string, apps ...targets.DesiredApp) Desired {
	return Desired{Commit: "c1", Targets: []DesiredTarget{{Name: target, Type: "host", Apps: apps}}}
}

func mustPlan(t testing.TB, d Desired, tg map[string]targets.Target) *Plan {
	t.Helper()
	p, err := Compute(context.Background(), d, tg, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Applyable(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplyThenReplanIsNoop(t *testing.T) {
	m := plantest.NewMem()
	m.Set("old", plantest.Dg("v0"), true, true)
	m.Set("keep", plantest.Dg("v1"), true, true)
	m.Set("legacy", plantest.Dg("x"), false, true)
	tg := plantest.Tmap("local", m)
	d := desiredOne("local", plantest.App("keep", "v2"), plantest.App("new", "v1"))
	p := mustPlan(t, d, tg)
	if c := p.Counts(); c != (Counts{Create: 1, Update: 1, Delete: 1}) {
		t.Fatalf("counts = %+v", c)
	}
	res, err := Apply(context.Background(), p, tg, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep": plantest.Dg("v2"), "new": plantest.Dg("v1"), "legacy": plantest.Dg("x")}
	if diff := cmp.Diff(want, m.Digests()); diff != "" {
		t.Errorf("target state (-want +got):\n%s", diff)
	}
	var outcomes []string
	for _, a := range res.Targets[0].Apps {
		outcomes = append(outcomes, a.App+" "+string(a.Action)+" "+string(a.Outcome))
	}
	if diff := cmp.Diff([]string{"keep update applied", "new create applied", "old delete applied"}, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}

	// Idempotent: a plan computed right after is all no-ops; applying it
	// touches nothing.
	p2 := mustPlan(t, d, tg)
	if p2.HasChanges() {
		var b strings.Builder
		p2.Render(&b)
		t.Fatalf("second plan has changes:\n%s", b.String())
	}
	puts, dels, _, _ := m.Counts()
	res2, err := Apply(context.Background(), p2, tg, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	puts2, dels2, _, _ := m.Counts()
	if puts2 != puts || dels2 != dels {
		t.Errorf("no-op apply made %d puts, %d deletes", puts2-puts, dels2-dels)
	}
	if n := res2.Count(OutcomeUnchanged); n != 2 {
		t.Errorf("unchanged = %d, want 2", n)
	}
	// The same (now stale) first plan is refused.
	if _, err := Apply(context.Background(), p, tg, ApplyOptions{}); !errors.Is(err, ErrStalePlan) {
		t.Errorf("re-applying the first plan: %v, want ErrStalePlan", err)
	}
}

func TestApplyRefusesStalePlan(t *testing.T) {
	m := plantest.NewMem()
	m.Set("hello", plantest.Dg("d1"), true, true)
	m.Set("web", plantest.Dg("w1"), true, true)
	tg := plantest.Tmap("local", m, "other", plantest.NewMem())
	d := Desired{Targets: []DesiredTarget{
		{Name: "local", Apps: []targets.DesiredApp{plantest.App("hello", "d2"), plantest.App("web", "w1")}},
		{Name: "other", Apps: []targets.DesiredApp{plantest.App("x", "v1")}},
	}}
	p := mustPlan(t, d, tg)

	// The world moves: hello is changed by hand, api appears, web turns
	// unhealthy.
	m.Set("hello", plantest.Dg("abc"), true, true)
	m.Set("api", plantest.Dg("a1"), false, true)
	m.Set("web", plantest.Dg("w1"), true, false)

	res, err := Apply(context.Background(), p, tg, ApplyOptions{})
	if !errors.Is(err, ErrStalePlan) || res != nil {
		t.Fatalf("Apply = %v, %v; want ErrStalePlan and no result", res, err)
	}
	var se *StaleError
	if !errors.As(err, &se) {
		t.Fatalf("error %T is not a *StaleError", err)
	}
	wantMoves := []string{
		"app api appeared (runs " + ShortDigest(plantest.Dg("a1")) + ")",
		"app hello now runs " + ShortDigest(plantest.Dg("abc")) + ", plan saw " + ShortDigest(plantest.Dg("d1")),
		"app web is now unhealthy (failed), plan saw it healthy",
	}
	if len(se.Targets) != 1 || se.Targets[0].Name != "local" {
		t.Fatalf("stale targets = %+v", se.Targets)
	}
	if diff := cmp.Diff(wantMoves, se.Targets[0].Moves); diff != "" {
		t.Errorf("moves (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "target local: app api appeared") {
		t.Errorf("message %q does not say what moved", err)
	}
	if puts, dels, _, _ := m.Counts(); puts != 0 || dels != 0 {
		t.Errorf("stale plan changed the target: %d puts %d deletes", puts, dels)
	}
	if puts, _, _, _ := tg["other"].(*plantest.MemTarget).Counts(); puts != 0 {
		t.Errorf("stale plan applied to the other target")
	}

	// A target that cannot be checked refuses the plan too.
	p = mustPlan(t, d, tg)
	m.Mu.Lock()
	m.Unavailable = true
	m.Mu.Unlock()
	if _, err := Apply(context.Background(), p, tg, ApplyOptions{}); !errors.Is(err, targets.ErrUnavailable) {
		t.Errorf("Apply with unreachable target = %v, want ErrUnavailable", err)
	}
	// A target missing from the map is refused.
	if _, err := Apply(context.Background(), p, plantest.Tmap("local", m), ApplyOptions{}); !errors.Is(err, ErrNoTarget) {
		t.Errorf("Apply without target other = %v, want ErrNoTarget", err)
	}
}

func TestApplyParallelPartialFailure(t *testing.T) {
	m := plantest.NewMem()
	m.PutDelay = 20 * time.Millisecond
	var apps []targets.DesiredApp
	for i := range 12 {
		a := plantest.App(fmt.Sprintf("app%02d", i), fmt.Sprintf("v%d", i))
		if i == 3 || i == 8 {
			m.Fail[a.Digest] = plantest.FailKeep
		}
		apps = append(apps, a)
	}
	other := plantest.NewMem()
	tg := plantest.Tmap("local", m, "other", other)
	d := Desired{Targets: []DesiredTarget{{Name: "local", Apps: apps}, {Name: "other", Apps: []targets.DesiredApp{plantest.App("x", "v1")}}}}
	p := mustPlan(t, d, tg)
	res, err := Apply(context.Background(), p, tg, ApplyOptions{AppParallelism: 3})
	if !errors.Is(err, ErrApplyFailed) {
		t.Fatalf("Apply = %v, want ErrApplyFailed", err)
	}
	if res == nil {
		t.Fatal("no partial result")
	}
	if got := [3]int{res.Count(OutcomeApplied), res.Count(OutcomeFailed), res.Count(OutcomeSkipped)}; got != [3]int{11, 2, 0} {
		t.Errorf("applied/failed/skipped = %v, want [11 2 0]", got)
	}
	for _, n := range []string{"app03", "app08"} {
		r := res.App("local", n)
		if r.Outcome != OutcomeFailed || !errors.Is(r.Err, targets.ErrUnhealthy) || r.Error == "" {
			t.Errorf("%s: %+v", n, r)
		}
		if !r.RolledBack || r.RolledBackTo != "" || !strings.Contains(r.Detail, "not created") {
			t.Errorf("%s: failed create should leave nothing: %+v", n, r)
		}
	}
	if r := res.App("local", "app00"); r.Outcome != OutcomeApplied || r.Duration <= 0 {
		t.Errorf("app00: %+v", r)
	}
	if _, _, _, maxIn := m.Counts(); maxIn < 2 || maxIn > 3 {
		t.Errorf("max concurrent Puts = %d, want 2..3", maxIn)
	}
	if len(m.Digests()) != 10 || len(other.Digests()) != 1 {
		t.Errorf("target holds %d apps, other %d", len(m.Digests()), len(other.Digests()))
	}
	b, err := json.Marshal(res)
	if err != nil || !strings.Contains(string(b), `"outcome":"failed"`) {
		t.Errorf("result JSON: %v %s", err, b)
	}
	// Re-planning shows exactly the failed ones still to create.
	p2 := mustPlan(t, d, tg)
	if c := p2.Counts(); c != (Counts{Create: 2, Noop: 11}) {
		t.Errorf("replan counts = %+v", c)
	}
}

func TestApplyHealthFailure(t *testing.T) {
	tests := []struct {
		name        string
		start       []string // labels deployed before, in order ("" = none)
		fail        plantest.FailMode
		onFailure   OnFailure
		noRollBack  bool
		wantRunning string // label running after; "" = absent
		rolledBack  bool
		rolledTo    string
		detail      string
		rollbacks   int
	}{
		{"update, probe fails, old keeps serving", []string{"v1"}, plantest.FailKeep, "", false, "v1", true, "v1", "previous version kept serving", 0},
		{"update, switched then unhealthy, rolled back", []string{"v1"}, plantest.FailAfterSwitch, "", false, "v1", true, "v1", "switched back from the failed version", 1},
		{"update, switched then unhealthy, policy leave", []string{"v1"}, plantest.FailAfterSwitch, OnFailureLeave, false, "v2", false, "", "left in place", 0},
		{"update, switched, target cannot roll back", []string{"v1"}, plantest.FailAfterSwitch, "", true, "v2", false, "", "cannot roll back", 0},
		{"create, switched then unhealthy, removed", nil, plantest.FailAfterSwitch, "", false, "", true, "", "failed new app was removed", 0},
		{"create, probe fails", nil, plantest.FailKeep, "", false, "", true, "", "not created", 0},
		{"update with an older previous, rolled back to the right one", []string{"v0", "v1"}, plantest.FailAfterSwitch, "", false, "v1", true, "v1", "switched back", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := plantest.NewMem()
			for _, l := range tc.start {
				if _, err := m.Put(context.Background(), plantest.App("hello", l)); err != nil {
					t.Fatal(err)
				}
			}
			want := plantest.App("hello", "v2")
			m.Fail[want.Digest] = tc.fail
			var tgt targets.Target = m
			if tc.noRollBack {
				tgt = plantest.NoRollBack{T: m}
			}
			tg := plantest.Tmap("local", tgt)
			p := mustPlan(t, desiredOne("local", want), tg)
			var events []Event
			res, err := Apply(context.Background(), p, tg, ApplyOptions{OnFailure: tc.onFailure, Progress: func(e Event) { events = append(events, e) }})
			if !errors.Is(err, ErrApplyFailed) {
				t.Fatalf("Apply = %v, want ErrApplyFailed", err)
			}
			r := res.App("local", "hello")
			if r.Outcome != OutcomeFailed || !errors.Is(r.Err, targets.ErrUnhealthy) {
				t.Errorf("result %+v", r)
			}
			wantTo := ""
			if tc.rolledTo != "" {
				wantTo = plantest.Dg(tc.rolledTo)
			}
			if r.RolledBack != tc.rolledBack || r.RolledBackTo != wantTo || !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("rolled back %v to %q (%q); want %v to %q (%q)", r.RolledBack, r.RolledBackTo, r.Detail, tc.rolledBack, wantTo, tc.detail)
			}
			got := m.Digests()["hello"]
			wantD := ""
			if tc.wantRunning != "" {
				wantD = plantest.Dg(tc.wantRunning)
			}
			if got != wantD {
				t.Errorf("target runs %q, want %q", got, wantD)
			}
			if _, _, rb, _ := m.Counts(); rb != tc.rollbacks {
				t.Errorf("RollBack called %d times, want %d", rb, tc.rollbacks)
			}
			var kinds []EventKind
			for _, e := range events {
				kinds = append(kinds, e.Kind)
			}
			if diff := cmp.Diff([]EventKind{EventLocked, EventChecked, EventStarted, EventRollBack, EventFinished}, kinds); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyTimeout(t *testing.T) {
	m := plantest.NewMem()
	m.Set("slow", plantest.Dg("v1"), true, true)
	m.PutDelay = time.Minute // never becomes healthy in time
	tg := plantest.Tmap("local", m)
	p := mustPlan(t, desiredOne("local", plantest.App("slow", "v2")), tg)
	policyCalls := 0
	res, err := Apply(context.Background(), p, tg, ApplyOptions{
		Timeout:   time.Hour,
		PolicyFor: func(target, a string) AppPolicy { policyCalls++; return AppPolicy{Timeout: 50 * time.Millisecond} },
	})
	if !errors.Is(err, ErrApplyFailed) {
		t.Fatalf("Apply = %v", err)
	}
	r := res.App("local", "slow")
	if !errors.Is(r.Err, context.DeadlineExceeded) || !strings.Contains(r.Error, "not healthy within 50ms") {
		t.Errorf("error = %v", r.Err)
	}
	if !r.RolledBack || r.RolledBackTo != plantest.Dg("v1") || m.Digests()["slow"] != plantest.Dg("v1") {
		t.Errorf("result %+v, running %s", r, m.Digests()["slow"])
	}
	if policyCalls != 1 {
		t.Errorf("PolicyFor called %d times", policyCalls)
	}
}

func TestSecretsNeverInPlan(t *testing.T) {
	const secret = "s3cr3t-VALUE-do-not-print"
	m := plantest.NewMem()
	tg := plantest.Tmap("local", m)
	a := plantest.App("hello", "v1")
	a.Secrets = map[string]string{"token": secret}
	d := desiredOne("local", a)
	p, err := Compute(context.Background(), d, tg, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Targets[0].Changes[0].After.Secrets != nil {
		t.Error("plan value holds secrets")
	}
	if a.Secrets["token"] != secret {
		t.Error("ComputePlan modified the caller's desired state")
	}
	path := t.TempDir() + "/plan.json"
	if err := WritePlanFile(path, p); err != nil {
		t.Fatal(err)
	}
	var rendered strings.Builder
	p.RenderWith(&rendered, RenderOptions{ShowNoops: true, Color: true})
	b, _ := MarshalPlan(p)

	p2, err := ReadPlanFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	res, err := Apply(context.Background(), p2, tg, ApplyOptions{SecretsFor: SecretsFrom(d), Progress: func(e Event) { events = append(events, fmt.Sprint(e)) }})
	if err != nil {
		t.Fatal(err)
	}
	m.Mu.Lock()
	got := m.Secrets["hello"]["token"]
	m.Mu.Unlock()
	if got != secret {
		t.Errorf("target got secret %q, want the value from SecretsFor", got)
	}
	rb, _ := json.Marshal(res)
	for what, s := range map[string]string{"plan file": string(b), "render": rendered.String(), "result": string(rb), "events": strings.Join(events, "\n")} {
		if strings.Contains(s, secret) {
			t.Errorf("%s holds the secret value", what)
		}
	}

	// A secret variable that carries a value is refused, without printing it.
	bad := plantest.App("bad", "v1")
	bad.App.Variables = map[string]plantest.DeployVariable{"token": {Secret: true, Default: plantest.Ptr(secret)}}
	p, err = Compute(context.Background(), desiredOne("local", bad), tg, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Applyable(); !errors.Is(err, ErrPlanErrored) || strings.Contains(err.Error(), secret) {
		t.Errorf("Applyable() = %v", err)
	}
	b, _ = MarshalPlan(p)
	if strings.Contains(string(b), secret) {
		t.Error("plan file holds a secret variable's value")
	}
}

func TestApplyCanceledMidwayConverges(t *testing.T) {
	// The in-memory analogue of a killed apply: the context ends while
	// Puts are in flight. The end-to-end proof with a real ferry-host and
	// SIGKILL lives with the host target.
	m := plantest.NewMem()
	m.PutDelay = 30 * time.Millisecond
	var apps []targets.DesiredApp
	for i := range 20 {
		apps = append(apps, plantest.App(fmt.Sprintf("a%02d", i), "v1"))
	}
	tg := plantest.Tmap("local", m)
	d := desiredOne("local", apps...)
	p := mustPlan(t, d, tg)
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	m.OnPut = func(string) {
		if started.Add(1) == 5 {
			cancel()
		}
	}
	res, err := Apply(ctx, p, tg, ApplyOptions{AppParallelism: 2})
	if !errors.Is(err, ErrApplyFailed) || res == nil || res.Count(OutcomeSkipped) == 0 {
		t.Fatalf("canceled apply: %v; skipped %d", err, res.Count(OutcomeSkipped))
	}
	m.OnPut = nil
	p2 := mustPlan(t, d, tg)
	if c := p2.Counts(); c.Create == 0 || c.Create+c.Noop != 20 {
		t.Fatalf("replan after cancel: %+v", c)
	}
	if _, err := Apply(context.Background(), p2, tg, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if p3 := mustPlan(t, d, tg); p3.HasChanges() {
		t.Error("did not converge")
	}
}

// TestApplyHammer runs many concurrent plan+apply rounds with different
// desired versions against one target, with and without a target lock.
// The target must never hold anything but a known version, and a final
// round must converge.
func TestApplyHammer(t *testing.T) {
	for _, locking := range []bool{true, false} {
		t.Run(fmt.Sprintf("locker=%v", locking), func(t *testing.T) {
			var m *plantest.MemTarget
			var tgt targets.Target
			if locking {
				lm := plantest.NewLockingMem()
				m, tgt = lm.MemTarget, lm
			} else {
				m = plantest.NewMem()
				tgt = m
			}
			m.PutDelay = time.Millisecond
			tg := plantest.Tmap("local", tgt)
			const nApps, workers, rounds = 8, 8, 15
			version := func(v int) Desired {
				var apps []targets.DesiredApp
				for i := range nApps - v%3 { // also create and delete apps
					apps = append(apps, plantest.App(fmt.Sprintf("app%d", i), fmt.Sprintf("v%d", v)))
				}
				return desiredOne("local", apps...)
			}
			known := map[string]bool{}
			for v := range workers {
				for _, a := range version(v).Targets[0].Apps {
					known[a.Digest] = true
				}
			}
			stop := make(chan struct{})
			var bad atomic.Value
			var checker sync.WaitGroup
			checker.Add(1)
			go func() { // watches the target throughout
				defer checker.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					obs, err := m.Observe(context.Background())
					if err != nil {
						bad.Store(err.Error())
						return
					}
					for _, o := range obs {
						if !known[o.Digest] || !o.Managed || !o.Healthy {
							bad.Store(fmt.Sprintf("corrupt app %+v", o))
						}
					}
					time.Sleep(100 * time.Microsecond)
				}
			}()
			var wg sync.WaitGroup
			var applied, stale atomic.Int32
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(w), 1))
					for range rounds {
						p, err := Compute(context.Background(), version(r.IntN(workers)), tg, PlanOptions{})
						if err != nil || p.Applyable() != nil {
							bad.Store(fmt.Sprint("plan: ", err, p.Applyable()))
							return
						}
						_, err = Apply(context.Background(), p, tg, ApplyOptions{AppParallelism: 3})
						switch {
						case err == nil:
							applied.Add(1)
						case errors.Is(err, ErrStalePlan):
							stale.Add(1)
						default:
							bad.Store("apply: " + err.Error())
						}
					}
				}()
			}
			wg.Wait()
			close(stop)
			checker.Wait()
			if s := bad.Load(); s != nil {
				t.Fatal(s)
			}
			t.Logf("%d applied, %d refused as stale", applied.Load(), stale.Load())
			if applied.Load() == 0 {
				t.Fatal("no apply succeeded")
			}
			final := version(5)
			p := mustPlan(t, final, tg)
			if _, err := Apply(context.Background(), p, tg, ApplyOptions{}); err != nil {
				t.Fatal(err)
			}
			if p := mustPlan(t, final, tg); p.HasChanges() {
				t.Fatal("final round did not converge")
			}
			want := map[string]string{}
			for _, a := range final.Targets[0].Apps {
				want[a.Name] = a.Digest
			}
			if diff := cmp.Diff(want, m.Digests()); diff != "" {
				t.Errorf("final state (-want +got):\n%s", diff)
			}
			if locking {
				lm := tgt.(*plantest.LockingMem)
				lm.Mu.Lock()
				n := len(lm.Holders)
				lm.Mu.Unlock()
				if n < workers*rounds {
					t.Errorf("lock taken %d times, want at least %d", n, workers*rounds)
				}
			}
		})
	}
}

// TestApplyLocksSerialise starts apply A, holds its first Put in flight,
// then starts apply B of a plan computed before A. With a lock, B waits for
// A and then finds its plan stale; without one (the control), B passes its
// staleness check while A is mid-way and applies alongside it.
func TestApplyLocksSerialise(t *testing.T) {
	for _, mode := range []string{"locker", "lockdir", "none"} {
		t.Run(mode, func(t *testing.T) {
			lm := plantest.NewLockingMem()
			var tgt targets.Target = lm.MemTarget
			var opts ApplyOptions
			switch mode {
			case "locker":
				tgt = lm
			case "lockdir":
				opts.LockDir = t.TempDir()
			}
			tg := plantest.Tmap("local", tgt)
			pa := mustPlan(t, desiredOne("local", plantest.App("a", "v1")), tg)
			pb := mustPlan(t, desiredOne("local", plantest.App("b", "v1")), tg)
			inA, release := make(chan struct{}), make(chan struct{})
			lm.OnPut = func(name string) {
				if name == "a" {
					close(inA)
					<-release
				}
			}
			errA := make(chan error, 1)
			go func() { _, err := Apply(context.Background(), pa, tg, opts); errA <- err }()
			<-inA
			errB := make(chan error, 1)
			go func() { _, err := Apply(context.Background(), pb, tg, opts); errB <- err }()
			switch mode {
			case "locker":
				deadline := time.Now().Add(10 * time.Second)
				for lm.Waiting.Load() == 0 { // B is queued on the lock
					if time.Now().After(deadline) {
						close(release)
						t.Fatalf("B never waited for the lock; B = %v", <-errB)
					}
					time.Sleep(time.Millisecond)
				}
			case "lockdir":
				time.Sleep(100 * time.Millisecond)
			case "none":
				if err := <-errB; err != nil { // B completes while A is in flight
					t.Fatalf("control: B = %v, want it applied alongside A", err)
				}
			}
			close(release)
			if err := <-errA; err != nil {
				t.Fatal(err)
			}
			if mode == "none" {
				return
			}
			err := <-errB
			var se *StaleError
			if !errors.As(err, &se) || len(se.Targets) != 1 || !slices.Contains(se.Targets[0].Moves, "app a appeared (runs "+ShortDigest(plantest.Dg("v1"))+")") {
				t.Fatalf("B = %v, want stale because a appeared", err)
			}
			if _, ok := m(lm).Digests()["b"]; ok {
				t.Error("B applied despite the lock")
			}
		})
	}
}

func m(l *plantest.LockingMem) *plantest.MemTarget { return l.MemTarget }

func TestProgressEventsSerialised(t *testing.T) {
	m := plantest.NewMem()
	m.PutDelay = time.Millisecond
	var apps []targets.DesiredApp
	for i := range 16 {
		apps = append(apps, plantest.App(fmt.Sprintf("a%02d", i), "v1"))
	}
	tg := plantest.Tmap("local", m)
	p := mustPlan(t, desiredOne("local", apps...), tg)
	var inside atomic.Int32
	var finished []string
	_, err := Apply(context.Background(), p, tg, ApplyOptions{AppParallelism: 8, Progress: func(e Event) {
		if inside.Add(1) != 1 {
			t.Error("Progress called concurrently")
		}
		if e.Kind == EventFinished {
			finished = append(finished, e.App+":"+string(e.Outcome))
		}
		time.Sleep(100 * time.Microsecond)
		inside.Add(-1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(finished)
	if len(finished) != 16 || finished[0] != "a00:applied" {
		t.Errorf("finished events = %v", finished)
	}
}

// TestApplyLockTimeout: with LockTimeout, an apply that cannot get a
// target's lock (a real flock held by another apply) fails with ErrLock and
// changes nothing.
func TestApplyLockTimeout(t *testing.T) {
	mem := plantest.NewMem()
	tg := plantest.Tmap("local", mem)
	dir := t.TempDir()
	unlock, err := lockFile(context.Background(), lockFilePath(dir, "local"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	p := mustPlan(t, desiredOne("local", plantest.App("a", "v1")), tg)
	_, err = Apply(context.Background(), p, tg, ApplyOptions{LockDir: dir, LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLock) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrLock after the lock timeout", err)
	}
	if len(mem.Digests()) != 0 {
		t.Fatalf("applied without the lock: %v", mem.Digests())
	}
}

// appObservingMem is a MemTarget that is also a targets.AppObserver, and
// counts the listings and the single reads apply makes.
type appObservingMem struct {
	*plantest.MemTarget
	lists, reads atomic.Int32
}

func (a *appObservingMem) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	a.lists.Add(1)
	return a.MemTarget.Observe(ctx)
}

func (a *appObservingMem) ObserveApp(ctx context.Context, name string) (*targets.ObservedApp, error) {
	a.reads.Add(1)
	obs, err := a.MemTarget.Observe(ctx)
	if err != nil {
		return nil, err
	}
	for i := range obs {
		if obs[i].Name == name {
			return &obs[i], nil
		}
	}
	return nil, nil
}

// TestApplyFailuresReadOneAppEach: when many updates fail on a target that
// can observe one app (targets.AppObserver, as the Kubernetes driver), the
// check after each failure reads that app, and the whole target is listed
// only by the apply's own staleness check, not once per failure (which made
// 1,000 failures cost 1,000 listings of 1,000 apps). The rollbacks come out
// as with a listing.
func TestApplyFailuresReadOneAppEach(t *testing.T) {
	const n = 40
	m := &appObservingMem{MemTarget: plantest.NewMem()}
	var v1, v2 []targets.DesiredApp
	for i := range n {
		name := fmt.Sprintf("app%02d", i)
		v1 = append(v1, plantest.App(name, "v1"))
		a := plantest.App(name, "v2")
		m.Fail[a.Digest] = plantest.FailAfterSwitch
		v2 = append(v2, a)
	}
	tg := map[string]targets.Target{"local": m}
	if _, err := Apply(context.Background(), mustPlan(t, Desired{Targets: []DesiredTarget{{Name: "local", Apps: v1}}}, tg), tg, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	p := mustPlan(t, Desired{Targets: []DesiredTarget{{Name: "local", Apps: v2}}}, tg)
	m.lists.Store(0)
	res, err := Apply(context.Background(), p, tg, ApplyOptions{AppParallelism: 4})
	if !errors.Is(err, ErrApplyFailed) {
		t.Fatalf("Apply = %v, want ErrApplyFailed", err)
	}
	for _, a := range v1 {
		if r := res.App("local", a.Name); r.Outcome != OutcomeFailed || !r.RolledBack || r.RolledBackTo != a.Digest {
			t.Errorf("%s: %+v, want failed and rolled back to v1", a.Name, r)
		}
	}
	if got := m.lists.Load(); got > 2 {
		t.Errorf("apply listed the whole target %d times for %d failures, want at most 2 (its staleness check)", got, n)
	}
	if got := m.reads.Load(); got < n {
		t.Errorf("%d single-app reads for %d failures, want at least one each", got, n)
	}
	for _, a := range v1 {
		if d := m.Digests()[a.Name]; d != a.Digest {
			t.Errorf("%s runs %s after the rollback, want v1 %s", a.Name, d, a.Digest)
		}
	}
}
