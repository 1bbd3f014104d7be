package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
)

const (
	digA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	digC = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

// fleetOf returns n devices "dev-000"... running digA, healthy, reported
// at t0, labelled ring=canary for the first canary of them.
func fleetOf(n, canary int) []Device {
	ds := make([]Device, n)
	for i := range ds {
		ring := "main"
		if i < canary {
			ring = "canary"
		}
		ds[i] = Device{ID: fmt.Sprintf("dev-%03d", i), Labels: map[string]string{"ring": ring},
			Digest: digA, Health: HealthHealthy, LastReport: t0}
	}
	return ds
}

func sel(t testing.TB, s string) spec.LabelSelector {
	t.Helper()
	ls, err := spec.ParseLabelSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// policy returns a fleet target over all devices with the given waves
// (fleet-wide percentages; "sel:PCT" strings are not used here) and a
// rollout that is easy to reason about: no soak, ratio 1, no abort.
func policy(waves ...int) *spec.FleetTarget {
	r := &spec.Rollout{
		HealthGate:    spec.HealthGate{SuccessRatio: 1},
		Abort:         spec.Abort{FailureRatio: 1},
		DeviceTimeout: 5 * time.Minute,
		AutoRollback:  true,
	}
	for _, p := range waves {
		r.Waves = append(r.Waves, spec.Wave{Percent: p})
	}
	return &spec.FleetTarget{Rollout: r}
}

// report makes the devices with the given IDs report digest with health h
// at time at.
func report(ds []Device, digest string, h Health, at time.Time, ids ...string) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for i := range ds {
		if want[ds[i].ID] {
			if ds[i].Digest != digest {
				ds[i].Previous = ds[i].Digest
			}
			ds[i].Digest, ds[i].Health, ds[i].LastReport = digest, h, at
		}
	}
}

// mustStep runs Step and fails the test on error.
func mustStep(t testing.TB, st *State, p *spec.FleetTarget, ds []Device, now time.Time) (Decision, *State) {
	t.Helper()
	d, ns, err := Step(st, p, ds, now)
	if err != nil {
		t.Fatalf("Step at %v: %v", now, err)
	}
	return d, ns
}

func mustState(t testing.TB, from, to string) *State {
	t.Helper()
	st, err := NewState(from, to, t0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
