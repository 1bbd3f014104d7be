package fleet

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
)

// FuzzAssign: random fleets and rollouts never panic, and every selected
// device lands in exactly one wave.
func FuzzAssign(f *testing.F) {
	f.Add(uint64(1), uint16(10), false)
	f.Add(uint64(7), uint16(257), true)
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, targeted bool) {
		rng := rand.New(rand.NewPCG(seed, uint64(n)))
		r := randomRollout(rng)
		ds := randomFleet(rng, int(n%1000))
		target := spec.LabelSelector{}
		if targeted {
			target = sel(t, "kind=k1")
		}
		a, err := Assign(target, r, ds)
		if err != nil {
			t.Fatal(err)
		}
		checkAssignment(t, target, r, ds, a)
	})
}

// FuzzStep drives a random fleet with a random policy through Step, with
// the invariants of TestSimulatedFleet checked at every step.
func FuzzStep(f *testing.F) {
	f.Add(uint64(1), uint16(50), uint8(0), uint8(0), uint8(0), uint8(5), uint8(200), uint8(3), true, uint8(0), uint8(0))
	f.Add(uint64(99), uint16(300), uint8(40), uint8(20), uint8(10), uint8(0), uint8(128), uint8(0), false, uint8(0), uint8(0))
	f.Add(uint64(5), uint16(350), uint8(2), uint8(0), uint8(30), uint8(3), uint8(230), uint8(5), true, uint8(100), uint8(40))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, fail, silent, late, rate, ratio, minSample uint8, auto bool, growth, rateMax uint8) {
		rng := rand.New(rand.NewPCG(seed, uint64(n)))
		r := randomRollout(rng)
		r.RateLimit = int(rate % 50)
		// Growth 1 to 6.1 in steps of 0.02 (0: none), capped or not.
		if growth > 0 {
			r.RateGrowth = 1 + float64(growth)/50
		}
		if rateMax > 0 {
			r.RateMax = r.RateLimit + int(rateMax)
		}
		r.HealthGate = spec.HealthGate{SuccessRatio: float64(ratio) / 255, Soak: time.Duration(rng.IntN(300)) * time.Second}
		r.Abort = spec.Abort{FailureRatio: float64(255-ratio) / 255, MinSample: int(minSample % 30)}
		r.DeviceTimeout = time.Duration(1+rng.IntN(300)) * time.Second
		r.AutoRollback = auto
		p := &spec.FleetTarget{Rollout: r}
		if seed%3 == 0 {
			p.Selector = sel(t, "zone in (z0,z1)")
		}
		count := int(n % 400)
		s := newSim(rng, simOpts{n: count, late: int(late) % (count + 1), fail: float64(fail) / 255,
			silent: float64(silent) / 255, offline: 0.05, canary: 0.1})
		// A random policy (a rate limit of one a minute, a long soak) may
		// well need more than 300 ticks: the fuzz checks each step's
		// invariants, TestSimulatedFleet checks that rollouts end.
		drive(t, s, p, time.Duration(1+rng.IntN(60))*time.Second, 300)
	})
}

// FuzzLoadState: any bytes either fail to load with an error, or load into
// a State that Step accepts.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"version":1,"to":"sha256:b","outcome":"running","wave":7,"devices":{"dev-001":{"status":"healthy","wave":3}}}`))
	f.Add([]byte(`{"version":1,"to":"x","outcome":"aborted","recent_starts":["2026-01-02T03:04:00Z"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := LoadState(data)
		if err != nil {
			return
		}
		p := policy(10, 100)
		p.Rollout.RateLimit = 3
		if _, _, err := Step(st, p, fleetOf(20, 0), t0); err != nil {
			t.Fatalf("Step on a loaded state: %v", err)
		}
	})
}
