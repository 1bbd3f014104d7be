package fleet

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/spec"
)

func waveSizes(a *Assignment) []int {
	n := make([]int, len(a.Waves))
	for i, w := range a.Waves {
		n[i] = len(w)
	}
	return n
}

func TestAssignSizes(t *testing.T) {
	canary := func(pct int) spec.Wave { return spec.Wave{Percent: pct, Selector: sel(t, "ring=canary")} }
	tests := []struct {
		name    string
		target  string
		waves   []spec.Wave
		n, cana int
		want    []int
	}{
		{"one wave", "", []spec.Wave{{Percent: 100}}, 20, 0, []int{20}},
		{"cumulative", "", []spec.Wave{{Percent: 10}, {Percent: 50}, {Percent: 100}}, 20, 0, []int{2, 8, 10}},
		{"ceil", "", []spec.Wave{{Percent: 1}, {Percent: 34}, {Percent: 100}}, 7, 0, []int{1, 2, 4}},
		{"canary first", "", []spec.Wave{canary(0), {Percent: 10}, {Percent: 100}}, 50, 3, []int{3, 2, 45}},
		{"canary covers the 10%", "", []spec.Wave{canary(100), {Percent: 10}, {Percent: 100}}, 50, 8, []int{8, 0, 42}},
		{"half the canaries", "", []spec.Wave{canary(50), canary(100), {Percent: 100}}, 20, 5, []int{3, 2, 15}},
		{"canary after 50%", "", []spec.Wave{{Percent: 50}, canary(100), {Percent: 100}}, 40, 40, []int{20, 20, 0}},
		{"target selector", "ring=main", []spec.Wave{{Percent: 50}, {Percent: 100}}, 10, 4, []int{3, 3}},
		{"no canaries", "", []spec.Wave{canary(100), {Percent: 100}}, 4, 0, []int{0, 4}},
		{"empty fleet", "", []spec.Wave{{Percent: 10}, {Percent: 100}}, 0, 0, []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := spec.DefaultRollout()
			r.Waves = tt.waves
			a, err := Assign(sel(t, tt.target), r, fleetOf(tt.n, tt.cana))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, waveSizes(a)); diff != "" {
				t.Errorf("wave sizes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAssignOrder checks the documented order: SHA-256 of the ID.
func TestAssignOrder(t *testing.T) {
	ds := fleetOf(300, 0)
	a, err := Assign(spec.LabelSelector{}, nil, ds)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range ds {
		want = append(want, d.ID)
	}
	slices.SortFunc(want, func(x, y string) int {
		hx, hy := sha256.Sum256([]byte(x)), sha256.Sum256([]byte(y))
		return slices.Compare(hx[:], hy[:])
	})
	if diff := cmp.Diff(want, a.Waves[0]); diff != "" {
		t.Errorf("order (-sha256 +got):\n%s", diff)
	}
}

// randomRollout returns a valid rollout of up to 5 waves, some with
// selectors over the labels randomFleet uses.
func randomRollout(rng *rand.Rand) *spec.Rollout {
	r := spec.DefaultRollout()
	r.Waves = nil
	pct := 0
	for range rng.IntN(5) {
		if rng.IntN(3) == 0 {
			s, _ := spec.ParseLabelSelector(fmt.Sprintf("zone=z%d", rng.IntN(3)))
			r.Waves = append(r.Waves, spec.Wave{Percent: rng.IntN(101), Selector: s})
			continue
		}
		if pct >= 99 {
			continue
		}
		pct += 1 + rng.IntN(99-pct)
		r.Waves = append(r.Waves, spec.Wave{Percent: pct})
	}
	r.Waves = append(r.Waves, spec.Wave{Percent: 100})
	return r
}

func randomFleet(rng *rand.Rand, n int) []Device {
	ds := make([]Device, n)
	for i := range ds {
		ds[i] = Device{ID: fmt.Sprintf("d%x", rng.Uint64()), Labels: map[string]string{
			"zone": fmt.Sprintf("z%d", rng.IntN(4)), "kind": fmt.Sprintf("k%d", rng.IntN(2))}}
	}
	return ds
}

func TestAssignProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		r := randomRollout(rng)
		ds := randomFleet(rng, rng.IntN(300))
		target := spec.LabelSelector{}
		if i%2 == 1 {
			target = sel(t, "kind=k1")
		}
		a, err := Assign(target, r, ds)
		if err != nil {
			t.Fatal(err)
		}
		checkAssignment(t, target, r, ds, a)

		// Stable under permutation.
		perm := slices.Clone(ds)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		b, err := Assign(target, r, perm)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a.Waves, b.Waves); diff != "" {
			t.Fatalf("permuted fleet gives other waves (-first +permuted):\n%s", diff)
		}
	}
}

// checkAssignment checks that every selected device is in exactly one wave,
// no other device is, and fleet-wide waves reach their cumulative share.
func checkAssignment(t *testing.T, target spec.LabelSelector, r *spec.Rollout, ds []Device, a *Assignment) {
	t.Helper()
	seen := map[string]int{}
	for w, ids := range a.Waves {
		for _, id := range ids {
			if prev, dup := seen[id]; dup {
				t.Fatalf("device %s in waves %d and %d", id, prev, w)
			}
			seen[id] = w
		}
	}
	n := 0
	for _, d := range ds {
		w, in := seen[d.ID]
		if in != target.Matches(d.Labels) {
			t.Fatalf("device %s (labels %v): assigned %v, selected %v", d.ID, d.Labels, in, !in)
		}
		if got, ok := a.Wave(d.ID); ok != in || (in && got != w) {
			t.Fatalf("Wave(%s) = %d, %v; want %d, %v", d.ID, got, ok, w, in)
		}
		if in {
			n++
		}
	}
	if a.Len() != n {
		t.Fatalf("Len = %d, want %d", a.Len(), n)
	}
	covered := 0
	for w, wave := range r.Waves {
		covered += len(a.Waves[w])
		if wave.Selector.Empty() {
			if want := (wave.Percent*n + 99) / 100; covered < want {
				t.Fatalf("after wave %d (%d%%) %d of %d devices covered, want %d", w, wave.Percent, covered, n, want)
			}
		}
	}
}

// TestAssignJoin: a device that joins lands in a wave decided by the IDs
// alone, and moves at most one other device per wave boundary.
func TestAssignJoin(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	r := spec.DefaultRollout()
	r.Waves = []spec.Wave{{Percent: 5}, {Percent: 20}, {Percent: 60}, {Percent: 100}}
	ds := randomFleet(rng, 200)
	for range 50 {
		before, err := Assign(spec.LabelSelector{}, r, ds)
		if err != nil {
			t.Fatal(err)
		}
		joiner := randomFleet(rng, 1)[0]
		ds = append(ds, joiner)
		after, err := Assign(spec.LabelSelector{}, r, ds)
		if err != nil {
			t.Fatal(err)
		}
		// The same fleet listed in another order puts the joiner in the same wave.
		rev := slices.Clone(ds)
		slices.Reverse(rev)
		again, _ := Assign(spec.LabelSelector{}, r, rev)
		wa, _ := after.Wave(joiner.ID)
		wb, _ := again.Wave(joiner.ID)
		if wa != wb {
			t.Fatalf("joiner %s in wave %d, or %d in another order", joiner.ID, wa, wb)
		}
		moved := 0
		for _, d := range ds[:len(ds)-1] {
			w1, _ := before.Wave(d.ID)
			w2, _ := after.Wave(d.ID)
			if w1 != w2 {
				moved++
			}
		}
		if moved > len(r.Waves)-1 {
			t.Fatalf("a join moved %d devices to another wave, want at most %d", moved, len(r.Waves)-1)
		}
	}
}

func TestAssignErrors(t *testing.T) {
	bad := func(f func(r *spec.Rollout)) *spec.Rollout {
		r := spec.DefaultRollout()
		r.Waves = []spec.Wave{{Percent: 10}, {Percent: 100}}
		f(r)
		return r
	}
	tests := []struct {
		name    string
		target  spec.LabelSelector
		r       *spec.Rollout
		devices []Device
		want    error
	}{
		{"no waves", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.Waves = nil }), nil, ErrInvalidPolicy},
		{"last not 100", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.Waves[1].Percent = 90 }), nil, ErrInvalidPolicy},
		{"last has selector", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.Waves[1].Selector = sel(t, "a") }), nil, ErrInvalidPolicy},
		{"not increasing", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.Waves[0].Percent = 100 }), nil, ErrInvalidPolicy},
		{"zero percent", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.Waves[0].Percent = 0 }), nil, ErrInvalidPolicy},
		{"percent over 100", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.Waves[0] = spec.Wave{Percent: 101, Selector: sel(t, "a")} }), nil, ErrInvalidPolicy},
		{"ratio", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.HealthGate.SuccessRatio = 1.5 }), nil, ErrInvalidPolicy},
		{"failure ratio", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.Abort.FailureRatio = -0.1 }), nil, ErrInvalidPolicy},
		{"timeout", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.DeviceTimeout = 0 }), nil, ErrInvalidPolicy},
		{"rate", spec.LabelSelector{}, bad(func(r *spec.Rollout) { r.RateLimit = -1 }), nil, ErrInvalidPolicy},
		{"malformed selector", spec.LabelSelector{Requirements: []spec.Requirement{{Key: "a", Operator: spec.OpEquals}}}, nil, nil, ErrInvalidPolicy},
		{"unknown operator", spec.LabelSelector{Requirements: []spec.Requirement{{Key: "a", Operator: "~"}}}, nil, nil, ErrInvalidPolicy},
		{"empty id", spec.LabelSelector{}, nil, []Device{{ID: ""}}, ErrInvalidDevice},
		{"duplicate id", spec.LabelSelector{}, nil, []Device{{ID: "x"}, {ID: "y"}, {ID: "x"}}, ErrInvalidDevice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Assign(tt.target, tt.r, tt.devices)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
