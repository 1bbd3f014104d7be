package fleet

import (
	"fmt"
	"slices"
	"time"

	"github.com/ferry-wasm/ferry/spec"
)

// rateWindow is the sliding window of the rate limit.
const rateWindow = time.Minute

// Failure is one device that failed in a step.
type Failure struct {
	// ID is the device's ID.
	ID string `json:"id"`
	// Reason is ReasonUnhealthy or ReasonTimeout.
	Reason string `json:"reason"`
}

// Gate is the state of one wave's health gate.
type Gate struct {
	// Wave is the wave's index.
	Wave int `json:"wave"`
	// Devices is how many devices the gate judges: those started in the
	// wave, and those assigned to it and not started yet.
	Devices int `json:"devices"`
	// Healthy is how many of them are healthy.
	Healthy int `json:"healthy"`
	// Pending is how many of them have not been started yet.
	Pending int `json:"pending"`
	// Failed is how many of them failed. Failed is final, so a wave whose
	// failures exceed 1-Need can never pass (see Stalled).
	Failed int `json:"failed"`
	// Need is the policy's success ratio.
	Need float64 `json:"need"`
	// Since is since when the gate has held; zero when it does not hold.
	Since time.Time `json:"since,omitzero"`
	// Soak is how long it must hold.
	Soak time.Duration `json:"soak"`
}

// Holds reports whether the gate's condition is met now: every device of
// the wave started and a share of at least Need healthy. An empty wave
// holds.
func (g Gate) Holds() bool {
	if g.Pending > 0 {
		return false
	}
	return g.Devices == 0 || float64(g.Healthy)/float64(g.Devices) >= g.Need
}

// Stalled reports whether the gate can never hold again: even if every
// device not failed became healthy, the healthy share would stay below
// Need. Step does not act on it (the abort rule alone stops a rollout); a
// stalled rollout waits for a person or a newer digest (Supersede).
func (g Gate) Stalled() bool {
	return g.Devices > 0 && float64(g.Devices-g.Failed)/float64(g.Devices) < g.Need
}

// Decision is what one Step decided. The lists are sorted by device ID.
// Start and RollBack are commands for the transport; the same answer is
// also always available, level-based, from State.Desired.
type Decision struct {
	// Outcome and Reason are the rollout's after the step.
	Outcome Outcome `json:"outcome"`
	// Reason explains an abort.
	Reason string `json:"reason,omitempty"`
	// Wave is the current wave's index after the step; Waves how many the
	// policy has.
	Wave int `json:"wave"`
	// Waves is the number of waves of the policy.
	Waves int `json:"waves"`
	// Start are the devices to move to the to-digest now.
	Start []string `json:"start,omitempty"`
	// RollBack are the devices to move back to the from-digest now (only
	// on the step that aborts, only with AutoRollback): exactly the devices
	// this rollout had started.
	RollBack []string `json:"rollback,omitempty"`
	// Healthy are the devices that reported the to-digest healthy for the
	// first time.
	Healthy []string `json:"healthy,omitempty"`
	// Failed are the devices that failed in this step.
	Failed []Failure `json:"failed,omitempty"`
	// Passed are the waves whose health gate passed in this step.
	Passed []int `json:"passed,omitempty"`
	// Deferred is how many devices could start now but wait for the rate
	// limit.
	Deferred int `json:"deferred,omitempty"`
	// Gate is the current wave's health gate after the step.
	Gate Gate `json:"gate"`
	// NextCheck is the latest time Step should run again even if no device
	// reports: the first device timeout, the end of the soak or the moment
	// the rate limit frees a slot. Zero when only a report can change
	// anything.
	NextCheck time.Time `json:"next_check,omitzero"`
}

// Step advances rollout st by one decision, given the fleet target policy
// (its selector and rollout; a nil Rollout means spec.DefaultRollout), the
// latest observation of every known device, and the current time. It is
// pure: it reads no clock, does no I/O, does not modify st or devices, and
// the same input always gives the same output (now's monotonic clock
// reading is dropped, so a State saved and loaded steps identically). In
// order, it:
//
//  1. judges started devices: a report on the to-digest (not older than the
//     device's start) of healthy makes it healthy, of unhealthy makes it
//     failed; no healthy report within DeviceTimeout of its start makes it
//     failed. Devices missing from devices, or silent, keep their state.
//  2. aborts a live rollout when reported ≥ MinSample (and > 0) and
//     failed/reported > FailureRatio, counting every healthy or failed
//     device of the rollout; with AutoRollback it rolls back every device
//     it started, and nothing else.
//  3. passes the current wave's gate once it has held for Soak (measured
//     from the first step that saw it hold; a step that sees it fail
//     resets it), moves to the next wave, and completes after the last.
//  4. starts pending devices of the current and earlier waves (all waves
//     once completed), in wave and stable order, at most RateAt(rollout,
//     current wave) in any one-minute window [t, t+1m): the rate limit,
//     grown by RateGrowth at each wave passed.
//
// An aborted rollout is final: Step returns it unchanged. Errors wrap
// ErrInvalidPolicy, ErrInvalidState, ErrStateVersion or ErrInvalidDevice;
// on error the State is nil.
func Step(st *State, policy *spec.FleetTarget, devices []Device, now time.Time) (Decision, *State, error) {
	now = now.Round(0) // wall clock only, as in a State loaded from JSON
	r, err := rollout(policy)
	if err != nil {
		return Decision{}, nil, err
	}
	if err := st.check(); err != nil {
		return Decision{}, nil, err
	}
	asg, err := assign(policy.Selector, r, devices)
	if err != nil {
		return Decision{}, nil, err
	}
	ns := st.Clone()
	lastWave := len(r.Waves) - 1
	if ns.Wave > lastWave {
		ns.Wave = lastWave // the policy lost waves since the last step
	}
	d := Decision{Waves: len(r.Waves)}
	if ns.Outcome == OutcomeAborted {
		ns.finishDecision(&d, asg, r, now)
		return d, ns, nil
	}

	// 1. Verdicts.
	for id, p := range ns.Devices {
		var dev *Device
		if i, ok := asg.index[id]; ok {
			dev = &devices[i]
		}
		fresh := dev != nil && dev.Digest == ns.To && !dev.LastReport.IsZero() && !dev.LastReport.Before(p.Started)
		switch p.Status {
		case StatusUpdating:
			switch {
			case fresh && dev.Health == HealthHealthy:
				p.Status, p.Since = StatusHealthy, now
				d.Healthy = append(d.Healthy, id)
			case fresh && dev.Health == HealthUnhealthy:
				p.Status, p.Since, p.Reason = StatusFailed, now, ReasonUnhealthy
				d.Failed = append(d.Failed, Failure{ID: id, Reason: ReasonUnhealthy})
			case now.Sub(p.Started) >= r.DeviceTimeout:
				p.Status, p.Since, p.Reason = StatusFailed, now, ReasonTimeout
				d.Failed = append(d.Failed, Failure{ID: id, Reason: ReasonTimeout})
			default:
				continue
			}
		case StatusHealthy:
			if !fresh || dev.Health != HealthUnhealthy {
				continue
			}
			p.Status, p.Since, p.Reason = StatusFailed, now, ReasonUnhealthy
			d.Failed = append(d.Failed, Failure{ID: id, Reason: ReasonUnhealthy})
		default:
			continue
		}
		ns.Devices[id] = p
	}

	if ns.Live() {
		// 2. Abort.
		c := ns.Counts()
		reported := c.Healthy + c.Failed
		if reported > 0 && reported >= r.Abort.MinSample && float64(c.Failed)/float64(reported) > r.Abort.FailureRatio {
			ns.Outcome, ns.Finished, ns.GateSince = OutcomeAborted, now, time.Time{}
			ns.Reason = fmt.Sprintf("%d of %d reported devices failed (%.1f%%, more than the %.1f%% allowed)",
				c.Failed, reported, 100*float64(c.Failed)/float64(reported), 100*r.Abort.FailureRatio)
			if r.AutoRollback {
				for id, p := range ns.Devices {
					if p.Status == StatusRolledBack {
						continue
					}
					p.Status, p.Since = StatusRolledBack, now
					ns.Devices[id] = p
					d.RollBack = append(d.RollBack, id)
				}
			}
			ns.finishDecision(&d, asg, r, now)
			return d, ns, nil
		}

		// 3. Health gates.
		for {
			g := ns.gate(asg, r, ns.Wave)
			if !g.Holds() {
				ns.Outcome, ns.GateSince = OutcomeRunning, time.Time{}
				break
			}
			if g.Devices > 0 {
				if ns.GateSince.IsZero() {
					ns.GateSince = now
				}
				if now.Sub(ns.GateSince) < r.HealthGate.Soak {
					ns.Outcome = OutcomeSoaking
					break
				}
			}
			d.Passed = append(d.Passed, ns.Wave)
			ns.GateSince = time.Time{}
			if ns.Wave >= lastWave {
				ns.Outcome, ns.Finished = OutcomeCompleted, now
				break
			}
			ns.Wave++
			ns.Outcome = OutcomeRunning
		}
	}

	// 4. Starts.
	upTo := ns.Wave
	if ns.Outcome == OutcomeCompleted {
		upTo = lastWave
	}
	budget := -1
	if rate := RateAt(r, ns.Wave); rate > 0 {
		ns.RecentStarts = slices.DeleteFunc(ns.RecentStarts, func(t time.Time) bool { return now.Sub(t) >= rateWindow })
		budget = max(rate-len(ns.RecentStarts), 0)
	} else {
		ns.RecentStarts = nil
	}
	for w := 0; w <= upTo; w++ {
		for _, id := range asg.Waves[w] {
			if _, started := ns.Devices[id]; started {
				continue
			}
			if budget == 0 {
				d.Deferred++
				continue
			}
			if budget > 0 {
				budget--
				ns.RecentStarts = append(ns.RecentStarts, now)
			}
			ns.Devices[id] = Progress{Status: StatusUpdating, Since: now, Started: now, Wave: w}
			d.Start = append(d.Start, id)
		}
	}

	ns.finishDecision(&d, asg, r, now)
	return d, ns, nil
}

// gate counts wave w's health gate: devices started in w, and devices
// assigned to w not started yet.
func (s *State) gate(asg *Assignment, r *spec.Rollout, w int) Gate {
	g := Gate{Wave: w, Need: r.HealthGate.SuccessRatio, Since: s.GateSince, Soak: r.HealthGate.Soak}
	for _, p := range s.Devices {
		if p.Wave != w {
			continue
		}
		g.Devices++
		switch p.Status {
		case StatusHealthy:
			g.Healthy++
		case StatusFailed:
			g.Failed++
		}
	}
	if w < len(asg.Waves) {
		for _, id := range asg.Waves[w] {
			if _, started := s.Devices[id]; !started {
				g.Devices++
				g.Pending++
			}
		}
	}
	return g
}

// finishDecision fills the summary fields of d from s and sorts its lists.
func (s *State) finishDecision(d *Decision, asg *Assignment, r *spec.Rollout, now time.Time) {
	d.Outcome, d.Reason, d.Wave = s.Outcome, s.Reason, s.Wave
	d.Gate = s.gate(asg, r, s.Wave)
	slices.Sort(d.Start)
	slices.Sort(d.RollBack)
	slices.Sort(d.Healthy)
	slices.SortFunc(d.Failed, func(a, b Failure) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	if s.Outcome == OutcomeAborted {
		return
	}
	var next time.Time
	earlier := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, p := range s.Devices {
		if p.Status == StatusUpdating {
			earlier(p.Started.Add(r.DeviceTimeout))
		}
	}
	if s.Outcome == OutcomeSoaking {
		earlier(s.GateSince.Add(r.HealthGate.Soak))
	}
	if d.Deferred > 0 {
		for _, t := range s.RecentStarts {
			earlier(t.Add(rateWindow))
		}
	}
	d.NextCheck = next
}
