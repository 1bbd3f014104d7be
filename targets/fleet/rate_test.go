package fleet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
)

func TestRateAt(t *testing.T) {
	for _, tc := range []struct {
		name          string
		limit, capped int
		growth        float64
		want          []int // waves 0, 1, 2, ...
	}{
		{"no limit", 0, 0, 2, []int{0, 0, 0}},
		{"no growth", 10, 0, 0, []int{10, 10, 10}},
		{"growth 1", 10, 0, 1, []int{10, 10, 10}},
		{"doubling", 10, 0, 2, []int{10, 20, 40, 80}},
		{"rounded down", 10, 0, 1.5, []int{10, 15, 22, 33, 50}},
		{"small growth never below the limit", 3, 0, 1.1, []int{3, 3, 3, 3, 4}},
		{"capped", 10, 50, 3, []int{10, 30, 50, 50}},
		{"cap below limit is the limit", 10, 5, 2, []int{10, 10}},
		{"overflow", 1000, 0, 1e9, []int{1000, math.MaxInt32, math.MaxInt32}},
		{"infinite growth is none", 10, 0, math.Inf(1), []int{10, 10}},
		{"NaN growth is none", 10, 0, math.NaN(), []int{10, 10}},
	} {
		r := &spec.Rollout{RateLimit: tc.limit, RateGrowth: tc.growth, RateMax: tc.capped}
		for w, want := range tc.want {
			if got := RateAt(r, w); got != want {
				t.Errorf("%s: wave %d: rate %d, want %d", tc.name, w, got, want)
			}
		}
	}
	if RateAt(nil, 3) != 0 {
		t.Error("a nil rollout has a rate")
	}
}

func TestRateGrowthPolicyChecked(t *testing.T) {
	for _, g := range []float64{0.5, -1, math.NaN(), math.Inf(1)} {
		p := policy(50, 100)
		p.Rollout.RateLimit, p.Rollout.RateGrowth = 5, g
		if _, _, err := Step(mustState(t, digA, digB), p, fleetOf(4, 0), t0); err == nil {
			t.Errorf("growth %v accepted", g)
		}
	}
	p := policy(50, 100)
	p.Rollout.RateLimit, p.Rollout.RateMax = 5, -1
	if _, _, err := Step(mustState(t, digA, digB), p, fleetOf(4, 0), t0); err == nil {
		t.Error("negative rate cap accepted")
	}
}

// TestRateGrowthSteps: each wave starts at its own, grown rate, and the
// starts of every minute stay within the rate of the wave they were made
// in.
func TestRateGrowthSteps(t *testing.T) {
	p := policy(10, 40, 100)
	p.Rollout.RateLimit, p.Rollout.RateGrowth, p.Rollout.RateMax = 4, 3, 30
	ds := fleetOf(200, 0)
	st := mustState(t, digA, digB)
	now := t0
	perWave := map[int]int{} // most starts in one step, by wave
	for step := 0; st.Outcome != OutcomeCompleted; step++ {
		if step > 1000 {
			t.Fatal("not completed")
		}
		var d Decision
		d, st = mustStep(t, st, p, ds, now)
		if rate := RateAt(p.Rollout, d.Wave); len(d.Start) > rate {
			t.Fatalf("wave %d started %d at once, rate %d", d.Wave, len(d.Start), rate)
		}
		for _, id := range d.Start {
			w := st.Devices[id].Wave
			perWave[w] = max(perWave[w], len(d.Start))
		}
		report(ds, digB, HealthHealthy, now, d.Start...)
		now = now.Add(time.Minute) // one step a minute: the window is empty at every step
	}
	// Wave 0 (20 devices) at 4/min, wave 1 (60) at 12/min, wave 2 (120)
	// at 36 capped to 30/min.
	if perWave[0] != 4 || perWave[1] != 12 || perWave[2] != 30 {
		t.Fatalf("largest start batch by wave: %v, want 4, 12 and 30", perWave)
	}
}

// TestRateGrowthFinishesSooner: the same fleet and policy, with and
// without growth, through the simulation with its invariants; growth must
// make the rollout end in fewer ticks, and both must complete.
func TestRateGrowthFinishesSooner(t *testing.T) {
	ticks := map[float64]int{}
	for _, growth := range []float64{0, 2} {
		p := &spec.FleetTarget{Rollout: &spec.Rollout{
			Waves:         []spec.Wave{{Percent: 5}, {Percent: 25}, {Percent: 60}, {Percent: 100}},
			RateLimit:     10,
			RateGrowth:    growth,
			RateMax:       200,
			HealthGate:    spec.HealthGate{SuccessRatio: 0.9, Soak: time.Minute},
			Abort:         spec.Abort{FailureRatio: 0.2, MinSample: 10},
			DeviceTimeout: 3 * time.Minute,
			AutoRollback:  true,
		}}
		s := newSim(rand.New(rand.NewPCG(3, 14)), simOpts{n: 800, fail: 0.01})
		st, ended, n := drive(t, s, p, 15*time.Second, 5000)
		if !ended || st.Outcome != OutcomeCompleted {
			t.Fatalf("growth %v: ended %v, outcome %s\n%s", growth, ended, st.Outcome, st.Summary())
		}
		ticks[growth] = n
	}
	t.Logf("ticks of 15s: %v", ticks)
	// 800 devices at 10/min take 80 minutes of starts alone; doubling
	// (10, 20, 40, 80 per wave) needs about a third of that.
	if ticks[2] >= ticks[0]*2/3 {
		t.Fatalf("with growth %d ticks, without %d: growth should finish in well under two thirds", ticks[2], ticks[0])
	}
}

func TestPreviewOf(t *testing.T) {
	p := policy(10, 50, 100)
	p.Rollout.RateLimit, p.Rollout.RateGrowth, p.Rollout.RateMax = 5, 2, 15
	p.Selector = sel(t, "ring=main")
	ds := fleetOf(110, 10) // 10 canaries the selector leaves out
	pv, err := PreviewOf(p, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Selected != 100 || fmt.Sprint(pv.Waves) != "[10 40 50]" || fmt.Sprint(pv.Rates) != "[5 10 15]" || pv.Pending != 0 {
		t.Fatalf("preview without a rollout: %+v", pv)
	}
	// Four minutes: wave 0 (5 + 5 at 5/min), then wave 1 at 10/min; the
	// starts of minute 3 have not reported yet.
	st := mustState(t, digA, digB)
	for i := range 4 {
		var d Decision
		now := t0.Add(time.Duration(i) * time.Minute)
		d, st = mustStep(t, st, p, ds, now)
		if i < 3 {
			report(ds, digB, HealthHealthy, now, d.Start...)
		}
	}
	pv, err = PreviewOf(p, ds, st)
	if err != nil {
		t.Fatal(err)
	}
	c := st.Counts()
	if st.Wave != 1 || len(st.Devices) != 30 || pv.Pending != 70 || pv.Gate.Wave != 1 || pv.Gate.Devices != 40 ||
		pv.Gate.Healthy != c.Healthy-10 || pv.Gate.Pending != 20 {
		t.Fatalf("preview of %s\n= %+v", st.Summary(), pv)
	}
	if _, err := PreviewOf(&spec.FleetTarget{Rollout: &spec.Rollout{}}, ds, nil); err == nil {
		t.Fatal("a policy without waves previewed")
	}
}
