package fleet

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
)

// sim is a simulated fleet that follows State.Desired like real devices:
// each device switches to its desired digest after its own delay and
// reports; some report the new digest unhealthy, some never report it,
// some go offline, and some join late.
type sim struct {
	devs    []Device
	waiting []Device // join one per tick
	fail    map[string]bool
	silent  map[string]bool
	offline map[string]time.Time
	delay   map[string]time.Duration
	told    map[string]string
	toldAt  map[string]time.Time
}

type simOpts struct {
	n, late                       int
	fail, silent, offline, canary float64
}

func newSim(rng *rand.Rand, o simOpts) *sim {
	s := &sim{fail: map[string]bool{}, silent: map[string]bool{}, offline: map[string]time.Time{},
		delay: map[string]time.Duration{}, told: map[string]string{}, toldAt: map[string]time.Time{}}
	for i := range o.n {
		ring := "main"
		if rng.Float64() < o.canary {
			ring = "canary"
		}
		d := Device{ID: fmt.Sprintf("edge-%04d-%x", i, rng.Uint32()), Labels: map[string]string{"ring": ring, "zone": fmt.Sprintf("z%d", rng.IntN(3))},
			Digest: digA, Health: HealthHealthy, LastReport: t0}
		s.fail[d.ID] = rng.Float64() < o.fail
		s.silent[d.ID] = rng.Float64() < o.silent
		if rng.Float64() < o.offline {
			s.offline[d.ID] = t0.Add(time.Duration(rng.IntN(3600)) * time.Second)
		}
		s.delay[d.ID] = time.Duration(5+rng.IntN(80)) * time.Second
		if i < o.n-o.late {
			s.devs = append(s.devs, d)
		} else {
			s.waiting = append(s.waiting, d)
		}
	}
	return s
}

// tick lets every online device act on st at now.
func (s *sim) tick(st *State, now time.Time) {
	if len(s.waiting) > 0 {
		s.devs = append(s.devs, s.waiting[0])
		s.waiting = s.waiting[1:]
	}
	for i := range s.devs {
		d := &s.devs[i]
		if off, ok := s.offline[d.ID]; ok && !now.Before(off) {
			continue
		}
		want, ok := st.Desired(d.ID)
		if !ok {
			continue
		}
		if s.told[d.ID] != want {
			s.told[d.ID], s.toldAt[d.ID] = want, now
		}
		if now.Sub(s.toldAt[d.ID]) < s.delay[d.ID] {
			continue
		}
		if want == st.To && s.silent[d.ID] {
			continue
		}
		if d.Digest != want {
			d.Previous, d.Digest = d.Digest, want
		}
		d.Health = HealthHealthy
		if want == st.To && s.fail[d.ID] {
			d.Health = HealthUnhealthy
		}
		d.LastReport = now
	}
}

// checker checks the invariants of every step of one rollout.
type checker struct {
	t      testing.TB
	p      *spec.FleetTarget
	r      *spec.Rollout
	starts []time.Time
	ever   map[string]bool
}

func newChecker(t testing.TB, p *spec.FleetTarget) *checker {
	r := p.Rollout
	if r == nil {
		r = spec.DefaultRollout()
	}
	return &checker{t: t, p: p, r: r, ever: map[string]bool{}}
}

func (c *checker) step(prev *State, devs []Device, now time.Time) (Decision, *State) {
	t := c.t
	t.Helper()
	before, _ := json.Marshal(prev)
	d, ns := mustStep(t, prev, c.p, devs, now)
	if after, _ := json.Marshal(prev); string(after) != string(before) {
		t.Fatalf("%v: Step modified its input", now)
	}
	asg, err := Assign(c.p.Selector, c.r, devs)
	if err != nil {
		t.Fatal(err)
	}
	last := len(c.r.Waves) - 1
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%v: %s\nbefore: %s\ndecision: %s\nafter: %s", now, fmt.Sprintf(format, args...), prev.Summary(), d, ns.Summary())
	}

	switch prev.Outcome {
	case OutcomeAborted:
		if ns.Outcome != OutcomeAborted || len(d.Start)+len(d.RollBack)+len(d.Failed)+len(d.Healthy) != 0 {
			fail("an aborted rollout acted")
		}
	case OutcomeCompleted:
		if ns.Outcome != OutcomeCompleted || len(d.RollBack) > 0 {
			fail("a completed rollout changed outcome")
		}
	}
	if ns.Wave < min(prev.Wave, last) || ns.Wave > last || d.Wave != ns.Wave || d.Outcome != ns.Outcome {
		fail("wave %d -> %d (decision %d)", prev.Wave, ns.Wave, d.Wave)
	}
	for id, p := range prev.Devices {
		np, ok := ns.Devices[id]
		if !ok {
			fail("device %s forgotten", id)
		}
		if p.Status == StatusFailed && np.Status != StatusFailed && np.Status != StatusRolledBack {
			fail("failed device %s became %s", id, np.Status)
		}
	}
	// Starts: pending before, selected, in a reached wave, rate limited.
	for _, id := range d.Start {
		if c.ever[id] {
			fail("device %s started twice", id)
		}
		c.ever[id] = true
		w, ok := asg.Wave(id)
		if !ok || prev.Device(id).Status != StatusPending {
			fail("started %s: selected %v, was %s", id, ok, prev.Device(id).Status)
		}
		if np := ns.Devices[id]; np.Status != StatusUpdating || !np.Started.Equal(now) || np.Wave != w {
			fail("started %s has progress %+v (wave %d)", id, np, w)
		}
		if w > ns.Wave && ns.Outcome != OutcomeCompleted {
			fail("started %s of wave %d in wave %d", id, w, ns.Wave)
		}
		c.starts = append(c.starts, now)
	}
	// The rate only grows (RateGrowth ≥ 1, waves only advance), so the
	// current wave's rate bounds every window that ends now.
	if r := RateAt(c.r, ns.Wave); r > 0 {
		n := 0
		for _, s := range c.starts {
			if now.Sub(s) < time.Minute {
				n++
			}
		}
		if n > r {
			fail("%d starts in the last minute, limit %d", n, r)
		}
	}
	// Timeouts are applied.
	for id, p := range ns.Devices {
		if p.Status == StatusUpdating && now.Sub(p.Started) >= c.r.DeviceTimeout {
			fail("device %s updating past its timeout", id)
		}
	}
	// Abort exactly by the rule, counted from the step's own verdicts.
	pc := prev.Counts()
	healthy, failed := pc.Healthy+len(d.Healthy), pc.Failed+len(d.Failed)
	for _, f := range d.Failed {
		if prev.Device(f.ID).Status == StatusHealthy {
			healthy--
		}
	}
	reported := healthy + failed
	should := prev.Live() && reported > 0 && reported >= c.r.Abort.MinSample && float64(failed)/float64(reported) > c.r.Abort.FailureRatio
	if aborted := prev.Live() && ns.Outcome == OutcomeAborted; aborted != should {
		fail("aborted %v, rule says %v (%d failed of %d reported)", aborted, should, failed, reported)
	}
	// Rollback: exactly the devices the rollout had started.
	if len(d.RollBack) > 0 || (should && c.r.AutoRollback) {
		want := keys(prev.Devices)
		if !should || !c.r.AutoRollback || !slices.Equal(want, d.RollBack) {
			fail("rolled back %d devices, started %d", len(d.RollBack), len(want))
		}
		for _, id := range d.RollBack {
			if got, ok := ns.Desired(id); !ok || got != ns.From {
				fail("rolled back %s desires %q", id, got)
			}
		}
	}
	// The gate passes only after holding for the soak.
	if len(d.Passed) > 0 && d.Passed[0] == prev.Wave && c.r.HealthGate.Soak > 0 {
		if g := prev.gate(asg, c.r, prev.Wave); g.Devices > 0 {
			if prev.GateSince.IsZero() || now.Sub(prev.GateSince) < c.r.HealthGate.Soak {
				fail("wave %d passed after %v of soak", prev.Wave, now.Sub(prev.GateSince))
			}
		}
	}
	if ns.Live() && !d.Gate.Holds() && !ns.GateSince.IsZero() {
		fail("gate does not hold but has a since")
	}
	if ns.Outcome == OutcomeCompleted && prev.Outcome != OutcomeCompleted && (len(d.Passed) == 0 || d.Passed[len(d.Passed)-1] != last) {
		fail("completed without passing the last wave")
	}
	for _, dev := range devs {
		if _, ok := ns.Devices[dev.ID]; !ok {
			if _, want := ns.Desired(dev.ID); want {
				fail("pending %s has a desired digest", dev.ID)
			}
		}
	}
	return d, ns
}

// run drives s with p from digA to digB every tick until the rollout ends
// (completed with nothing updating, or aborted), and fails the test if it
// has not ended after maxTicks: a rollout stuck running is a failure, not
// an outcome.
func run(t testing.TB, s *sim, p *spec.FleetTarget, tick time.Duration, maxTicks int) *State {
	t.Helper()
	st, ended, ticks := drive(t, s, p, tick, maxTicks)
	if !ended {
		t.Fatalf("the rollout has not ended after %d ticks of %v: outcome %s, wave %d\n%s", ticks, tick, st.Outcome, st.Wave, st.Summary())
	}
	return st
}

// drive is run without the verdict: it steps until the rollout ends or
// maxTicks pass, checking every step's invariants, and reports whether it
// ended and after how many ticks.
func drive(t testing.TB, s *sim, p *spec.FleetTarget, tick time.Duration, maxTicks int) (*State, bool, int) {
	t.Helper()
	c := newChecker(t, p)
	st := mustState(t, digA, digB)
	now := t0
	ended, ticks := false, 0
	for i := range maxTicks {
		ticks = i + 1
		if i%10 == 9 {
			// A restart: the saved state must step exactly like the live one.
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := LoadState(b)
			if err != nil {
				t.Fatal(err)
			}
			d1, s1 := mustStep(t, st, p, s.devs, now)
			d2, s2 := mustStep(t, loaded, p, s.devs, now)
			j1, _ := json.Marshal([]any{d1, s1})
			j2, _ := json.Marshal([]any{d2, s2})
			if string(j1) != string(j2) {
				t.Fatalf("%v: a reloaded state steps differently:\n%s\n%s", now, j1, j2)
			}
			st = loaded
		}
		_, st = c.step(st, s.devs, now)
		if st.Outcome == OutcomeAborted || (st.Outcome == OutcomeCompleted && len(s.waiting) == 0 && st.Counts().Updating == 0) {
			ended = true
			break
		}
		now = now.Add(tick)
		s.tick(st, now)
	}
	if r := RateAt(c.r, len(c.r.Waves)-1); r > 0 {
		if tt, ok := t.(*testing.T); ok {
			checkRate(tt, c.starts, r)
		}
	}
	return st, ended, ticks
}

func TestSimulatedFleet(t *testing.T) {
	rollout := func(rate int, auto bool, waves ...spec.Wave) *spec.FleetTarget {
		return &spec.FleetTarget{Selector: sel(t, "zone!=z2"), Rollout: &spec.Rollout{
			Waves:         waves,
			RateLimit:     rate,
			HealthGate:    spec.HealthGate{SuccessRatio: 0.9, Soak: 3 * time.Minute},
			Abort:         spec.Abort{FailureRatio: 0.1, MinSample: 10},
			DeviceTimeout: 2 * time.Minute,
			AutoRollback:  auto,
		}}
	}
	canary := spec.Wave{Selector: sel(t, "ring=canary")}
	tests := []struct {
		name string
		o    simOpts
		p    *spec.FleetTarget
		want Outcome // every case names the one outcome it must reach
	}{
		{"clean", simOpts{n: 500, canary: 0.02}, rollout(60, true, canary, spec.Wave{Percent: 10}, spec.Wave{Percent: 50}, spec.Wave{Percent: 100}), OutcomeCompleted},
		{"unlimited", simOpts{n: 500}, rollout(0, true, spec.Wave{Percent: 5}, spec.Wave{Percent: 100}), OutcomeCompleted},
		{"few failures", simOpts{n: 500, fail: 0.01, silent: 0.01, offline: 0.05, canary: 0.05}, rollout(100, true, canary, spec.Wave{Percent: 25}, spec.Wave{Percent: 100}), OutcomeCompleted},
		{"bad version", simOpts{n: 500, fail: 0.3, canary: 0.03}, rollout(50, true, canary, spec.Wave{Percent: 20}, spec.Wave{Percent: 100}), OutcomeAborted},
		{"bad no rollback", simOpts{n: 500, fail: 0.2, silent: 0.1}, rollout(0, false, spec.Wave{Percent: 10}, spec.Wave{Percent: 100}), OutcomeAborted},
		{"silent version", simOpts{n: 500, silent: 0.5}, rollout(30, true, spec.Wave{Percent: 10}, spec.Wave{Percent: 100}), OutcomeAborted},
		{"late joiners", simOpts{n: 500, late: 150, canary: 0.02}, rollout(40, true, canary, spec.Wave{Percent: 30}, spec.Wave{Percent: 100}), OutcomeCompleted},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(rand.New(rand.NewPCG(uint64(i), 42)), tt.o)
			st := run(t, s, tt.p, 15*time.Second, 5000)
			if st.Outcome != tt.want {
				t.Fatalf("outcome %s, want %s\n%s", st.Outcome, tt.want, st.Summary())
			}
			if c := st.Counts(); st.Outcome == OutcomeCompleted && tt.o.fail+tt.o.silent > 0 && c.Failed == 0 {
				// A case with failing devices that completes must have
				// seen them fail (below the abort ratio), or it tested
				// nothing about failures.
				t.Errorf("completed with no failed device although the fleet has failing ones\n%s", st.Summary())
			}
			if st.Outcome == OutcomeCompleted {
				for _, d := range s.devs {
					if tt.p.Selector.Matches(d.Labels) && st.Device(d.ID).Status == StatusPending {
						t.Errorf("completed with %s pending", d.ID)
					}
				}
			}
			t.Logf("%s", st.Summary())
		})
	}
}
