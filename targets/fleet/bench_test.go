package fleet

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
)

// benchFleet returns a 10,000-device fleet in the middle of a rollout:
// wave 2 of 4 running, half the fleet started, most of it healthy.
func benchFleet(b *testing.B) (*State, *spec.FleetTarget, []Device, time.Time) {
	const n = 10000
	rng := rand.New(rand.NewPCG(1, 1))
	s := newSim(rng, simOpts{n: n, fail: 0.01, silent: 0.01, canary: 0.01})
	p := &spec.FleetTarget{Rollout: &spec.Rollout{
		Waves:         []spec.Wave{{Selector: sel(b, "ring=canary")}, {Percent: 10}, {Percent: 50}, {Percent: 100}},
		RateLimit:     2000,
		HealthGate:    spec.HealthGate{SuccessRatio: 0.9, Soak: time.Minute},
		Abort:         spec.Abort{FailureRatio: 0.2, MinSample: 10},
		DeviceTimeout: 10 * time.Minute,
		AutoRollback:  true,
	}}
	st := mustState(b, digA, digB)
	now := t0
	for st.Wave < 2 || len(st.Devices) < n/2 {
		_, st = mustStep(b, st, p, s.devs, now)
		now = now.Add(30 * time.Second)
		s.tick(st, now)
	}
	if !st.Live() {
		b.Fatalf("benchmark fleet not live: %s", st.Summary())
	}
	return st, p, s.devs, now
}

// BenchmarkStep10k measures one Step over 10,000 devices mid-rollout and
// reports the cost per device.
func BenchmarkStep10k(b *testing.B) {
	st, p, devs, now := benchFleet(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := Step(st, p, devs, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(devs)), "ns/device")
}

// BenchmarkAssign10k measures wave assignment of 10,000 devices alone.
func BenchmarkAssign10k(b *testing.B) {
	st, p, devs, _ := benchFleet(b)
	_ = st
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Assign(p.Selector, p.Rollout, devs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(devs)), "ns/device")
}
