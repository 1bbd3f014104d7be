package controller

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// Rollout is a rollout's status, for `ferry fleet rollout status`.
type Rollout struct {
	// App and Target name it.
	App    string `json:"app"`
	Target string `json:"target"`
	// Paused is set while a person paused it.
	Paused bool `json:"paused,omitempty"`
	// State is a copy of the rollout's State (digests, outcome, wave,
	// every started device's progress).
	State *fleet.State `json:"state"`
	// Last is the decision of the last step this process made; nil before
	// the first (just after a restart, or while paused since).
	Last *fleet.Decision `json:"last,omitempty"`
	// Summary renders it for people, in a few lines.
	Summary string `json:"summary"`
	// Ref is the artifact reference of State.To; Owner the owner its Put
	// recorded (targets.DesiredApp.Owner).
	Ref   string `json:"ref,omitempty"`
	Owner string `json:"owner,omitempty"`
	// Phase and Message are what Observe reports for the app.
	Phase   targets.Phase `json:"phase,omitempty"`
	Message string        `json:"message,omitempty"`
}

// Observed is r as the Controller's Observe reports it, so that a reader
// of the admin API (hub.Remote, for `ferry plan` run by hand) plans
// against the same observed state as the agent.
func (r Rollout) Observed() targets.ObservedApp {
	if r.State == nil {
		return targets.ObservedApp{Name: r.App, Managed: true, Owner: r.Owner, Phase: r.Phase, Message: r.Message}
	}
	return observedApp(r.App, r.Ref, r.Owner, r.State, r.Phase, r.Message)
}

// Rollout returns the status of app's rollout. Errors wrap ErrNoRollout.
func (c *Controller) Rollout(app string) (Rollout, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ro, ok := c.apps[app]
	if !ok {
		return Rollout{}, fmt.Errorf("%w: app %q on fleet %s", ErrNoRollout, app, c.name)
	}
	return c.statusLocked(app, ro), nil
}

// Rollouts returns the status of every app's rollout, by app name.
func (c *Controller) Rollouts() []Rollout {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Rollout, 0, len(c.apps))
	for _, name := range slices.Sorted(maps.Keys(c.apps)) {
		out = append(out, c.statusLocked(name, c.apps[name]))
	}
	return out
}

func (c *Controller) statusLocked(name string, ro *rollout) Rollout {
	phase, msg := phaseOf(ro)
	r := Rollout{App: name, Target: c.name, Paused: ro.rec.Paused, State: ro.st.Clone(), Summary: ro.st.Summary(),
		Ref: ro.rec.Refs[ro.st.To], Owner: ro.rec.Owner, Phase: phase, Message: msg}
	if ro.stepped {
		d := ro.last
		r.Last = &d
		r.Summary += "\n" + d.String()
	}
	if ro.rec.Paused {
		r.Summary += "\npaused"
	}
	return r
}

// Pause stops stepping app's rollout: no device starts or is judged until
// Resume. Devices keep what they were told. Pausing a paused rollout is not
// an error. Errors wrap ErrNoRollout or server.ErrStore.
func (c *Controller) Pause(app string) error { return c.setPaused(app, true) }

// Resume continues a paused rollout at once. Errors wrap ErrNoRollout or
// server.ErrStore.
func (c *Controller) Resume(app string) error {
	if err := c.setPaused(app, false); err != nil {
		return err
	}
	c.Wake()
	return nil
}

func (c *Controller) setPaused(app string, paused bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ro, ok := c.apps[app]
	if !ok {
		return fmt.Errorf("%w: app %q on fleet %s", ErrNoRollout, app, c.name)
	}
	if ro.rec.Paused == paused {
		return nil
	}
	rec := ro.rec
	rec.Paused = paused
	if err := c.saveRecord(rec); err != nil {
		return err
	}
	ro.rec = rec
	c.log.Info("fleet rollout paused or resumed", "target", c.name, "app", app, "paused", paused)
	return nil
}

// Abort ends app's live rollout as the engine's abort rule would, with
// reason (a full sentence, shown in status; "aborted by a person" when
// empty): with the policy's auto_rollback, every device it started goes back
// to the from-digest. Aborting a finished rollout is not an error and
// changes nothing. Errors wrap ErrNoRollout or server.ErrStore.
func (c *Controller) Abort(app, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ro, ok := c.apps[app]
	if !ok {
		return fmt.Errorf("%w: app %q on fleet %s", ErrNoRollout, app, c.name)
	}
	if !ro.st.Live() {
		return nil
	}
	if reason == "" {
		reason = "aborted by a person"
	}
	now := c.now().Round(0)
	ns := ro.st.Clone()
	ns.Outcome, ns.Reason, ns.Finished, ns.GateSince = fleet.OutcomeAborted, reason, now, time.Time{}
	r := c.policy.Rollout
	if r == nil {
		r = spec.DefaultRollout()
	}
	if r.AutoRollback {
		for id, p := range ns.Devices {
			if p.Status != fleet.StatusRolledBack {
				p.Status, p.Since = fleet.StatusRolledBack, now
				ns.Devices[id] = p
			}
		}
	}
	if err := c.saveState(ro, ns); err != nil {
		return err
	}
	ro.st = ns
	c.log.Warn("fleet rollout aborted", "target", c.name, "app", app, "to", fleet.Short(ns.To), "reason", reason)
	c.emit(EventAborted, ns)
	c.applyLocked(app, ro, c.inventory())
	return nil
}

// Devices returns the enrolled devices the fleet target selects (revoked
// ones excluded), sorted by ID, for `ferry fleet devices`. For another
// selector, call the server's Devices with its Matches.
func (c *Controller) Devices() []server.Device {
	c.mu.Lock()
	sel := c.policy.Selector
	c.mu.Unlock()
	devs := c.srv.Devices(sel.Matches)
	return slices.DeleteFunc(devs, func(d server.Device) bool { return !d.Revoked.IsZero() })
}
