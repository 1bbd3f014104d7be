package fleet

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferry-wasm/ferry/spec"
)

// TestSupersede: a newer digest replaces a rollout with a fresh one from
// the first wave; the old rollout's failures do not count.
func TestSupersede(t *testing.T) {
	p := policy(20, 100)
	p.Rollout.Abort = spec.Abort{FailureRatio: 0.1, MinSample: 1}
	ds := fleetOf(10, 0)
	st := mustState(t, digA, digB)
	st.App, st.Target = "shop", "edge"
	d, st := mustStep(t, st, p, ds, t0)
	report(ds, digB, HealthUnhealthy, t0.Add(time.Minute), d.Start...)
	d, st = mustStep(t, st, p, ds, t0.Add(time.Minute))
	if st.Outcome != OutcomeAborted {
		t.Fatalf("B did not abort: %s", d)
	}

	next, err := Supersede(st, digC, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := &State{Version: StateVersion, App: "shop", Target: "edge", From: digA, To: digC, Supersedes: digB,
		Started: t0.Add(2 * time.Minute), Outcome: OutcomeRunning, Devices: map[string]Progress{}}
	if diff := cmp.Diff(want, next); diff != "" {
		t.Fatalf("superseding state (-want +got):\n%s", diff)
	}
	// The rolled-back devices are wave 0 again and start at once; the old
	// unhealthy reports on B do not fail them.
	d, next = mustStep(t, next, p, ds, t0.Add(2*time.Minute))
	if len(d.Start) != 2 || len(d.Failed) != 0 || d.Outcome != OutcomeRunning {
		t.Fatalf("fresh rollout: %s", d)
	}
	report(ds, digC, HealthHealthy, t0.Add(3*time.Minute), d.Start...)
	d, next = mustStep(t, next, p, ds, t0.Add(3*time.Minute))
	report(ds, digC, HealthHealthy, t0.Add(4*time.Minute), d.Start...)
	_, next = mustStep(t, next, p, ds, t0.Add(4*time.Minute))
	if next.Outcome != OutcomeCompleted {
		t.Fatalf("C did not complete: %s", next.Summary())
	}

	// A completed rollout superseded: from is its to-digest.
	after, err := Supersede(next, digA, t0.Add(5*time.Minute))
	if err != nil || after.From != digC || after.To != digA || after.Supersedes != digC {
		t.Fatalf("supersede completed: %+v, %v", after, err)
	}
	// The same digest again changes nothing.
	same, err := Supersede(next, digC, t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(next, same); diff != "" {
		t.Errorf("superseding with the same digest (-old +new):\n%s", diff)
	}
	// A running rollout superseded keeps its from-digest.
	run := mustState(t, digA, digB)
	_, run = mustStep(t, run, p, fleetOf(10, 0), t0)
	sup, _ := Supersede(run, digC, t0.Add(time.Minute))
	if sup.From != digA || len(sup.Devices) != 0 {
		t.Errorf("supersede running: from %s, %d devices", sup.From, len(sup.Devices))
	}
}

// rolloutScript drives a small rollout with failures, for round trips.
func rolloutScript(t *testing.T, roundTripAt int) ([]Decision, *State) {
	p := policy(10, 40, 100)
	p.Rollout.RateLimit = 4
	p.Rollout.HealthGate = spec.HealthGate{SuccessRatio: 0.6, Soak: 2 * time.Minute}
	p.Rollout.Abort = spec.Abort{FailureRatio: 0.3, MinSample: 5}
	p.Rollout.DeviceTimeout = 90 * time.Second
	ds := fleetOf(30, 0)
	st := mustState(t, digA, digB)
	var out []Decision
	started := 0 // the first 6 starts succeed
	for i := range 60 {
		now := t0.Add(time.Duration(i) * 20 * time.Second)
		if i == roundTripAt {
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			if st, err = LoadState(b); err != nil {
				t.Fatal(err)
			}
		}
		var d Decision
		d, st = mustStep(t, st, p, ds, now)
		out = append(out, d)
		for _, id := range d.Start {
			started++
			switch {
			case started > 6 && started%7 == 0:
				// silent: times out
			case started > 6 && started%7 == 1:
				report(ds, digB, HealthUnhealthy, now.Add(10*time.Second), id)
			default:
				report(ds, digB, HealthHealthy, now.Add(10*time.Second), id)
			}
		}
	}
	return out, st
}

func TestJSONRoundTrip(t *testing.T) {
	want, wantSt := rolloutScript(t, -1)
	if wantSt.Outcome != OutcomeCompleted {
		t.Fatalf("script does not complete: %s", wantSt.Summary())
	}
	for _, at := range []int{1, 5, 17, 30} {
		got, gotSt := rolloutScript(t, at)
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip at step %d: decisions differ (-straight +round trip):\n%s", at, diff)
		}
		if diff := cmp.Diff(wantSt, gotSt, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip at step %d: states differ:\n%s", at, diff)
		}
	}
}

func TestLoadState(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"not json", "{", ErrInvalidState},
		{"version", `{"version":2,"to":"x","outcome":"running"}`, ErrStateVersion},
		{"no to", `{"version":1,"outcome":"running"}`, ErrInvalidState},
		{"outcome", `{"version":1,"to":"x","outcome":"paused"}`, ErrInvalidState},
		{"status", `{"version":1,"to":"x","outcome":"running","devices":{"a":{"status":"pending"}}}`, ErrInvalidState},
		{"wave", `{"version":1,"to":"x","outcome":"running","wave":-1}`, ErrInvalidState},
		{"ok", `{"version":1,"to":"x","outcome":"running"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := LoadState([]byte(tt.in))
			if !errors.Is(err, tt.want) || (err == nil && st.Devices == nil) {
				t.Fatalf("LoadState = %v, %v; want %v", st, err, tt.want)
			}
		})
	}
}

func TestStepErrors(t *testing.T) {
	good := mustState(t, digA, digB)
	old := good.Clone()
	old.Version = 0
	bad := policy(100)
	bad.Rollout.Waves = []spec.Wave{{Percent: 50}}
	tests := []struct {
		name string
		st   *State
		p    *spec.FleetTarget
		ds   []Device
		want error
	}{
		{"nil state", nil, policy(100), nil, ErrInvalidState},
		{"version", old, policy(100), nil, ErrStateVersion},
		{"nil policy", good, nil, nil, ErrInvalidPolicy},
		{"bad policy", good, bad, nil, ErrInvalidPolicy},
		{"bad target selector", good, &spec.FleetTarget{Selector: spec.LabelSelector{Requirements: []spec.Requirement{{Key: "a", Operator: spec.OpIn}}}}, nil, ErrInvalidPolicy},
		{"duplicate device", good, policy(100), []Device{{ID: "a"}, {ID: "a"}}, ErrInvalidDevice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, st, err := Step(tt.st, tt.p, tt.ds, t0)
			if !errors.Is(err, tt.want) || st != nil {
				t.Fatalf("Step = %v, %v; want %v", st, err, tt.want)
			}
		})
	}
	if _, err := NewState(digA, "", t0); !errors.Is(err, ErrInvalidState) {
		t.Errorf("NewState without to: %v", err)
	}
}

// TestStepPure: Step does not modify its input and gives the same answer twice.
func TestStepPure(t *testing.T) {
	p := policy(30, 100)
	p.Rollout.RateLimit = 5
	ds := fleetOf(20, 0)
	st := mustState(t, digA, digB)
	_, st = mustStep(t, st, p, ds, t0)
	report(ds, digB, HealthHealthy, t0.Add(time.Minute), keys(st.Devices)[:3]...)
	before, _ := json.Marshal(st)
	dsBefore := slices.Clone(ds)
	d1, s1 := mustStep(t, st, p, ds, t0.Add(time.Minute))
	d2, s2 := mustStep(t, st, p, ds, t0.Add(time.Minute))
	after, _ := json.Marshal(st)
	if string(before) != string(after) {
		t.Errorf("Step modified its input state")
	}
	if diff := cmp.Diff(dsBefore, ds); diff != "" {
		t.Errorf("Step modified its devices:\n%s", diff)
	}
	if diff := cmp.Diff(d1, d2); diff != "" {
		t.Errorf("decisions differ:\n%s", diff)
	}
	if diff := cmp.Diff(s1, s2); diff != "" {
		t.Errorf("states differ:\n%s", diff)
	}
}

// TestPolicyShrinks: a policy that lost waves clamps the current wave.
func TestPolicyShrinks(t *testing.T) {
	st := mustState(t, digA, digB)
	st.Wave = 5
	d, ns := mustStep(t, st, policy(100), fleetOf(4, 0), t0)
	if ns.Wave != 0 || len(d.Start) != 4 {
		t.Fatalf("wave %d, start %v", ns.Wave, d.Start)
	}
}
