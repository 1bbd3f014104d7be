package fleet

import (
	"fmt"
	"math"

	"github.com/ferry-wasm/ferry/spec"
)

// rollout returns the policy's rollout (spec.DefaultRollout when nil) after
// checking it against the rules of the spec language.
func rollout(t *spec.FleetTarget) (*spec.Rollout, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: nil fleet target", ErrInvalidPolicy)
	}
	if err := checkSelector(t.Selector, "the target's selector"); err != nil {
		return nil, err
	}
	r := t.Rollout
	if r == nil {
		r = spec.DefaultRollout()
	}
	return r, checkRollout(r)
}

// checkRollout applies LANGUAGE.md's rules: at least one wave, percentages
// 1 to 100 (0 on a selector wave means 100), fleet-wide percentages
// strictly increasing, the last wave fleet-wide at 100, ratios in [0,1],
// a positive device timeout, no negative rate limit, rate cap, soak or
// sample, and a finite rate growth of at least 1 (0 means 1).
func checkRollout(r *spec.Rollout) error {
	if len(r.Waves) == 0 {
		return fmt.Errorf("%w: no waves", ErrInvalidPolicy)
	}
	last := 0
	for i, w := range r.Waves {
		if err := checkSelector(w.Selector, fmt.Sprintf("wave %d's selector", i+1)); err != nil {
			return err
		}
		if w.Percent < 0 || w.Percent > 100 || (w.Percent == 0 && w.Selector.Empty()) {
			return fmt.Errorf("%w: wave %d has percent %d (want 1 to 100)", ErrInvalidPolicy, i+1, w.Percent)
		}
		if w.Selector.Empty() {
			if w.Percent <= last {
				return fmt.Errorf("%w: wave %d covers %d%% of the fleet after %d%% (fleet-wide percentages must increase)", ErrInvalidPolicy, i+1, w.Percent, last)
			}
			last = w.Percent
		}
	}
	if lw := r.Waves[len(r.Waves)-1]; !lw.Selector.Empty() || lw.Percent != 100 {
		return fmt.Errorf("%w: the last wave must be fleet-wide with percent 100", ErrInvalidPolicy)
	}
	if !ratioOK(r.HealthGate.SuccessRatio) {
		return fmt.Errorf("%w: success ratio %v is not between 0 and 1", ErrInvalidPolicy, r.HealthGate.SuccessRatio)
	}
	if !ratioOK(r.Abort.FailureRatio) {
		return fmt.Errorf("%w: failure ratio %v is not between 0 and 1", ErrInvalidPolicy, r.Abort.FailureRatio)
	}
	if r.DeviceTimeout <= 0 {
		return fmt.Errorf("%w: device timeout %v must be more than zero", ErrInvalidPolicy, r.DeviceTimeout)
	}
	if r.RateLimit < 0 {
		return fmt.Errorf("%w: negative rate limit %d", ErrInvalidPolicy, r.RateLimit)
	}
	if g := r.RateGrowth; math.IsNaN(g) || math.IsInf(g, 0) || (g != 0 && g < 1) {
		return fmt.Errorf("%w: rate growth %v must be a finite factor of at least 1", ErrInvalidPolicy, g)
	}
	if r.RateMax < 0 {
		return fmt.Errorf("%w: negative rate cap %d", ErrInvalidPolicy, r.RateMax)
	}
	if r.HealthGate.Soak < 0 {
		return fmt.Errorf("%w: negative soak %v", ErrInvalidPolicy, r.HealthGate.Soak)
	}
	if r.Abort.MinSample < 0 {
		return fmt.Errorf("%w: negative min sample %d", ErrInvalidPolicy, r.Abort.MinSample)
	}
	return nil
}

func ratioOK(f float64) bool { return !math.IsNaN(f) && f >= 0 && f <= 1 }

// checkSelector refuses requirements spec.LabelSelector.Matches cannot
// evaluate (a hand-built selector with an unknown operator or the wrong
// number of values), so matching never panics.
func checkSelector(s spec.LabelSelector, what string) error {
	for _, r := range s.Requirements {
		ok := false
		switch r.Operator {
		case spec.OpEquals, spec.OpNotEquals:
			ok = len(r.Values) == 1
		case spec.OpIn, spec.OpNotIn:
			ok = len(r.Values) > 0
		case spec.OpExists, spec.OpNotExists:
			ok = len(r.Values) == 0
		}
		if !ok || r.Key == "" {
			return fmt.Errorf("%w: %s has a malformed requirement on %q (operator %q, %d values)", ErrInvalidPolicy, what, r.Key, r.Operator, len(r.Values))
		}
	}
	return nil
}

// maxRate bounds a grown rate limit, so that a large growth over many
// waves never overflows.
const maxRate = math.MaxInt32

// RateAt returns the rate limit, in device starts per minute, while wave
// (counted from 0) is the current wave: r.RateLimit × r.RateGrowth^wave,
// rounded down, at most r.RateMax when it is set and never below
// r.RateLimit. 0 means no limit (r.RateLimit is 0). A growth of 0 or 1
// keeps the rate at r.RateLimit. The rate grows per wave, not per minute,
// so a wave that waits for its health gate never earns a faster rate: it
// grows only once a wave has proven the version on its devices.
func RateAt(r *spec.Rollout, wave int) int {
	if r == nil || r.RateLimit <= 0 {
		return 0
	}
	capped := maxRate
	if r.RateMax > 0 {
		capped = max(r.RateMax, r.RateLimit)
	}
	g := r.RateGrowth
	if !(g > 1) || math.IsInf(g, 0) || wave <= 0 {
		return min(r.RateLimit, capped)
	}
	f := float64(r.RateLimit) * math.Pow(g, float64(wave))
	if math.IsNaN(f) || f >= float64(capped) {
		return capped
	}
	return max(int(f), r.RateLimit)
}
