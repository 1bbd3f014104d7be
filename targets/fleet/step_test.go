package fleet

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferry-wasm/ferry/spec"
)

func ids(ds []Device) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func keys(m map[string]Progress) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkRate fails when more than limit of starts fall in any window [t, t+1m).
func checkRate(t *testing.T, starts []time.Time, limit int) {
	t.Helper()
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	j := 0
	for i := range starts {
		for starts[j].Add(time.Minute).Compare(starts[i]) <= 0 {
			j++
		}
		if n := i - j + 1; n > limit {
			t.Fatalf("%d starts in the minute from %v, limit %d", n, starts[j], limit)
		}
	}
}

func TestRateLimit(t *testing.T) {
	for _, tc := range []struct {
		limit int
		tick  time.Duration
	}{{7, 10 * time.Second}, {1, 7 * time.Second}, {20, time.Minute}, {3, 61 * time.Second}, {5, 59 * time.Second}} {
		p := policy(30, 100)
		p.Rollout.RateLimit = tc.limit
		ds := fleetOf(60, 0)
		st := mustState(t, digA, digB)
		var starts []time.Time
		now := t0
		for step := 0; st.Outcome != OutcomeCompleted; step++ {
			if step > 10000 {
				t.Fatalf("limit %d tick %v: not completed", tc.limit, tc.tick)
			}
			var d Decision
			d, st = mustStep(t, st, p, ds, now)
			if len(d.Start) > tc.limit {
				t.Fatalf("%d starts at once, limit %d", len(d.Start), tc.limit)
			}
			if d.Deferred > 0 && (d.NextCheck.IsZero() || d.NextCheck.After(now.Add(time.Minute))) {
				t.Fatalf("deferred devices but next check %v", d.NextCheck)
			}
			for range d.Start {
				starts = append(starts, now)
			}
			report(ds, digB, HealthHealthy, now, d.Start...)
			now = now.Add(tc.tick)
		}
		if len(starts) != len(ds) {
			t.Fatalf("%d starts for %d devices", len(starts), len(ds))
		}
		checkRate(t, starts, tc.limit)
	}
}

// TestGateSoak: the healthy share must hold for the whole soak; a dip
// (here a healthy device turning unhealthy) starts the soak again.
func TestGateSoak(t *testing.T) {
	p := policy(50, 100)
	p.Rollout.HealthGate = spec.HealthGate{SuccessRatio: 0.8, Soak: 5 * time.Minute}
	p.Rollout.DeviceTimeout = time.Hour
	ds := fleetOf(20, 0)
	st := mustState(t, digA, digB)
	d, st := mustStep(t, st, p, ds, t0)
	wave0 := d.Start
	if len(wave0) != 10 {
		t.Fatalf("wave 0 started %d devices, want 10", len(wave0))
	}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	steps := []struct {
		min      int
		healthy  []string
		sick     []string
		outcome  Outcome
		wave     int
		gateFrom int // minute the gate holds since; -1 none
	}{
		{1, wave0[:7], nil, OutcomeRunning, 0, -1}, // 7/10 < 0.8
		{2, wave0[7:8], nil, OutcomeSoaking, 0, 2}, // 8/10
		{6, nil, nil, OutcomeSoaking, 0, 2},        // 4m held
		{7, nil, wave0[:1], OutcomeRunning, 0, -1}, // dip: 7/10
		{8, wave0[8:9], nil, OutcomeSoaking, 0, 8}, // 8/10 again, soak restarts
		{12, nil, nil, OutcomeSoaking, 0, 8},       // 4m held
		{13, nil, nil, OutcomeRunning, 1, -1},      // 5m: wave 1 starts
	}
	for _, s := range steps {
		report(ds, digB, HealthHealthy, at(s.min), s.healthy...)
		report(ds, digB, HealthUnhealthy, at(s.min), s.sick...)
		d, st = mustStep(t, st, p, ds, at(s.min))
		var since time.Time
		if s.gateFrom >= 0 {
			since = at(s.gateFrom)
		}
		if d.Outcome != s.outcome || d.Wave != s.wave || !st.GateSince.Equal(since) {
			t.Fatalf("minute %d: outcome %s wave %d gate since %v; want %s %d %v\n%s",
				s.min, d.Outcome, d.Wave, st.GateSince, s.outcome, s.wave, since, d)
		}
		if s.min == 13 {
			if len(d.Start) != 10 || !slices.Equal(d.Passed, []int{0}) {
				t.Fatalf("minute 13: start %d devices, passed %v", len(d.Start), d.Passed)
			}
		}
		if s.outcome == OutcomeSoaking && !d.NextCheck.Equal(since.Add(5*time.Minute)) {
			t.Fatalf("minute %d: next check %v, want the end of the soak", s.min, d.NextCheck)
		}
	}
}

func TestAbortThreshold(t *testing.T) {
	tests := []struct {
		name            string
		ratio           float64
		min             int
		healthy, failed int
		updating        int
		wantAbort       bool
	}{
		{"at ratio", 0.1, 10, 9, 1, 0, false},
		{"past ratio", 0.1, 10, 8, 2, 0, true},
		{"below sample", 0.1, 10, 4, 5, 10, false},
		{"sample reached", 0.1, 10, 5, 5, 10, true},
		{"updating do not count", 0.2, 5, 4, 1, 20, false},
		{"0.3 exactly", 0.3, 1, 7, 3, 0, false},
		{"zero ratio", 0, 1, 9, 1, 0, true},
		{"zero sample no reports", 0, 0, 0, 0, 10, false},
		{"ratio one never", 1, 0, 0, 10, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.healthy + tt.failed + tt.updating
			p := policy(100)
			p.Rollout.Abort = spec.Abort{FailureRatio: tt.ratio, MinSample: tt.min}
			ds := fleetOf(n+5, 0)
			p.Rollout.Waves = []spec.Wave{{Percent: 100 * n / len(ds)}, {Percent: 100}}
			if p.Rollout.Waves[0].Percent == 0 {
				p.Rollout.Waves = p.Rollout.Waves[1:]
			}
			p.Rollout.HealthGate.SuccessRatio = 1
			st := mustState(t, digA, digB)
			d, st := mustStep(t, st, p, ds, t0)
			started := d.Start[:n]
			now := t0.Add(time.Minute)
			report(ds, digB, HealthHealthy, now, started[:tt.healthy]...)
			report(ds, digB, HealthUnhealthy, now, started[tt.healthy:tt.healthy+tt.failed]...)
			d, st = mustStep(t, st, p, ds, now)
			if got := d.Outcome == OutcomeAborted; got != tt.wantAbort {
				t.Fatalf("aborted = %v, want %v\n%s", got, tt.wantAbort, d)
			}
			if tt.wantAbort {
				if diff := cmp.Diff(keys(st.Devices), d.RollBack); diff != "" {
					t.Errorf("rollback (-started +rolled back):\n%s", diff)
				}
			}
		})
	}
}

// TestRollback: an abort rolls back exactly the devices the rollout moved,
// in every status, and never a pending one; without AutoRollback nothing.
func TestRollback(t *testing.T) {
	for _, auto := range []bool{true, false} {
		p := policy(10, 50, 100)
		p.Rollout.Abort = spec.Abort{FailureRatio: 0.15, MinSample: 5}
		p.Rollout.AutoRollback = auto
		p.Rollout.DeviceTimeout = 3 * time.Minute
		ds := fleetOf(40, 0)
		st := mustState(t, digA, digB)
		d, st := mustStep(t, st, p, ds, t0)
		w0 := d.Start // 4
		report(ds, digB, HealthHealthy, t0.Add(time.Minute), w0...)
		d, st = mustStep(t, st, p, ds, t0.Add(time.Minute))
		w1 := d.Start // 16
		if len(w0) != 4 || len(w1) != 16 {
			t.Fatalf("waves of %d and %d", len(w0), len(w1))
		}
		now := t0.Add(2 * time.Minute)
		report(ds, digB, HealthHealthy, now, w1[:9]...)
		report(ds, digB, HealthUnhealthy, now, w1[9:12]...) // 3 of 16: 18.75% > 15%
		// w1[12:] stays updating.
		d, st = mustStep(t, st, p, ds, now)
		if d.Outcome != OutcomeAborted || st.Outcome != OutcomeAborted || st.Reason == "" {
			t.Fatalf("auto %v: not aborted:\n%s", auto, d)
		}
		moved := append(slices.Clone(w0), w1...)
		slices.Sort(moved)
		var want []string
		if auto {
			want = moved
		}
		if diff := cmp.Diff(want, d.RollBack); diff != "" {
			t.Errorf("auto %v: rollback (-want +got):\n%s", auto, diff)
		}
		for _, dev := range ds {
			dig, ok := st.Desired(dev.ID)
			switch {
			case !slices.Contains(moved, dev.ID):
				if ok {
					t.Errorf("pending %s has desired %s", dev.ID, dig)
				}
			case auto && (dig != digA || !ok):
				t.Errorf("rolled back %s desired %q %v, want %s", dev.ID, dig, ok, digA)
			case !auto && (dig != digB || !ok):
				t.Errorf("%s desired %q %v, want %s", dev.ID, dig, ok, digB)
			}
		}
		// Aborted is final.
		d2, st2 := mustStep(t, st, p, ds, now.Add(time.Hour))
		if len(d2.Start)+len(d2.RollBack)+len(d2.Failed) != 0 || d2.Outcome != OutcomeAborted {
			t.Errorf("step after abort acted: %s", d2)
		}
		if diff := cmp.Diff(st, st2, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("step after abort changed state:\n%s", diff)
		}
	}
}

func TestTimeout(t *testing.T) {
	p := policy(100)
	p.Rollout.DeviceTimeout = 2 * time.Minute
	ds := fleetOf(3, 0)
	// dev-002 reported the new digest healthy before the rollout: too old to count.
	report(ds, digB, HealthHealthy, t0.Add(-time.Second), "dev-002")
	st := mustState(t, digA, digB)
	d, st := mustStep(t, st, p, ds, t0)
	if len(d.Start) != 3 || !d.NextCheck.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("start %v next %v", d.Start, d.NextCheck)
	}
	report(ds, digB, HealthUnknown, t0.Add(time.Minute), "dev-001")
	d, st = mustStep(t, st, p, ds, t0.Add(2*time.Minute-time.Nanosecond))
	if len(d.Failed) != 0 || st.Counts().Updating != 3 {
		t.Fatalf("failed before the timeout: %s", d)
	}
	report(ds, digB, HealthHealthy, t0.Add(2*time.Minute), "dev-000")
	d, st = mustStep(t, st, p, ds, t0.Add(2*time.Minute))
	want := []Failure{{"dev-001", ReasonTimeout}, {"dev-002", ReasonTimeout}}
	if diff := cmp.Diff(want, d.Failed); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"dev-000"}, d.Healthy); diff != "" {
		t.Errorf("healthy (-want +got):\n%s", diff)
	}
	// A healthy report after the timeout does not revive a failed device.
	report(ds, digB, HealthHealthy, t0.Add(3*time.Minute), "dev-001")
	_, st = mustStep(t, st, p, ds, t0.Add(3*time.Minute))
	if got := st.Device("dev-001"); got.Status != StatusFailed || got.Reason != ReasonTimeout {
		t.Errorf("dev-001 = %+v", got)
	}
}

// joinerIn returns a new device that Assign puts in wave w of p when it
// joins ds.
func joinerIn(t *testing.T, p *spec.FleetTarget, ds []Device, w int, prefix string) Device {
	t.Helper()
	for i := range 1000 {
		j := Device{ID: fmt.Sprintf("%s-%d", prefix, i), Digest: digA, Health: HealthHealthy, LastReport: t0}
		a, err := Assign(p.Selector, p.Rollout, append(slices.Clone(ds), j))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := a.Wave(j.ID); got == w {
			return j
		}
	}
	t.Fatalf("no joiner for wave %d", w)
	return Device{}
}

// TestJoiners: a device joining a running rollout waits for its wave, or
// starts at once if its wave was reached; after completion, at once.
func TestJoiners(t *testing.T) {
	p := policy(50, 100)
	p.Rollout.HealthGate.Soak = time.Minute
	ds := fleetOf(10, 0)
	st := mustState(t, digA, digB)
	d, st := mustStep(t, st, p, ds, t0)
	report(ds, digB, HealthHealthy, t0, d.Start...)

	// During wave 0: a wave-1 joiner waits, a wave-0 joiner starts.
	late := joinerIn(t, p, ds, 1, "late")
	ds = append(ds, late)
	d, st = mustStep(t, st, p, ds, t0.Add(time.Second))
	if slices.Contains(d.Start, late.ID) {
		t.Fatalf("wave-1 joiner started in wave 0: %s", d)
	}
	if _, ok := st.Desired(late.ID); ok {
		t.Fatalf("wave-1 joiner has a desired digest in wave 0")
	}
	early := joinerIn(t, p, ds, 0, "early")
	ds = append(ds, early)
	d, st = mustStep(t, st, p, ds, t0.Add(2*time.Second))
	if !slices.Contains(d.Start, early.ID) {
		t.Fatalf("wave-0 joiner not started: %s", d)
	}
	// Joins may shift a wave boundary: report every started device.
	report(ds, digB, HealthHealthy, t0.Add(3*time.Second), updatingIn(st)...)
	_, st = mustStep(t, st, p, ds, t0.Add(3*time.Second))
	d, st = mustStep(t, st, p, ds, t0.Add(2*time.Minute))
	if st.Wave != 1 || !slices.Contains(d.Start, late.ID) {
		t.Fatalf("wave 1 did not start with its joiner: wave %d\n%s", st.Wave, d)
	}

	// During wave 1: a wave-0 joiner starts at once and counts in wave 0.
	early2 := joinerIn(t, p, ds, 0, "early2")
	ds = append(ds, early2)
	d, st = mustStep(t, st, p, ds, t0.Add(3*time.Minute))
	if !slices.Contains(d.Start, early2.ID) || st.Device(early2.ID).Wave != 0 {
		t.Fatalf("joiner of a passed wave not started at once: %s", d)
	}
	report(ds, digB, HealthHealthy, t0.Add(4*time.Minute), updatingIn(st)...)
	_, st = mustStep(t, st, p, ds, t0.Add(4*time.Minute))
	_, st = mustStep(t, st, p, ds, t0.Add(5*time.Minute))
	if st.Outcome != OutcomeCompleted {
		t.Fatalf("not completed: %s", st.Summary())
	}

	// After completion, any joiner starts at once.
	for w := range 2 {
		j := joinerIn(t, p, ds, w, fmt.Sprintf("after%d", w))
		ds = append(ds, j)
		d, st = mustStep(t, st, p, ds, t0.Add(time.Duration(6+w)*time.Minute))
		if diff := cmp.Diff([]string{j.ID}, d.Start); diff != "" || d.Outcome != OutcomeCompleted {
			t.Fatalf("joiner after completion (-want +got):\n%s\n%s", diff, d)
		}
	}
}

func updatingIn(st *State) []string {
	var out []string
	for id, pr := range st.Devices {
		if pr.Status == StatusUpdating {
			out = append(out, id)
		}
	}
	return out
}
