package controller

import (
	"context"
	"fmt"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// PreviewRollout previews rolling want out over the fleet as it is now
// (targets.RolloutPreviewer): how many enrolled devices the target selects,
// how many each wave of its policy takes and at what rate, and how the
// app's current rollout stands. It only reads. Errors wrap
// fleet.ErrInvalidPolicy (a policy the engine refuses).
func (c *Controller) PreviewRollout(ctx context.Context, want targets.DesiredApp) (targets.RolloutPreview, error) {
	c.mu.Lock()
	policy := c.policy
	var cur *Rollout
	if ro, ok := c.apps[want.Name]; ok {
		// Only what Preview reads: no clone of the State's devices.
		cur = &Rollout{App: want.Name, Target: c.name, Paused: ro.rec.Paused, State: ro.st}
		defer c.mu.Unlock() // ro.st is read under the lock
	} else {
		c.mu.Unlock()
	}
	// Only what Preview reads of each device: an inventory of 10,000 is
	// read at every plan.
	var devs []server.Device
	c.srv.EachDevice(func(d server.Device) {
		if d.Revoked.IsZero() && policy.Selector.Matches(d.Labels) {
			devs = append(devs, server.Device{ID: d.ID, Labels: d.Labels})
		}
	})
	return Preview(policy, devs, want.Digest, cur)
}

// Preview previews rolling digest out by policy over devices (a device
// server's inventory; revoked devices are left out), with cur, when not
// nil, as the app's current rollout. Controller.PreviewRollout and
// hub.Remote (the admin API's reader) both answer with it, so `ferry plan`
// run by hand shows what the agent's own plan shows. Errors wrap
// fleet.ErrInvalidPolicy, fleet.ErrInvalidState or fleet.ErrInvalidDevice.
func Preview(policy *spec.FleetTarget, devices []server.Device, digest string, cur *Rollout) (targets.RolloutPreview, error) {
	if policy == nil {
		return targets.RolloutPreview{}, fmt.Errorf("%w: no fleet target policy", fleet.ErrInvalidPolicy)
	}
	obs := make([]fleet.Device, 0, len(devices))
	for _, d := range devices {
		if d.Revoked.IsZero() {
			obs = append(obs, fleet.Device{ID: d.ID, Labels: d.Labels})
		}
	}
	var st *fleet.State
	if cur != nil {
		st = cur.State
	}
	pv, err := fleet.PreviewOf(policy, obs, st)
	if err != nil {
		return targets.RolloutPreview{}, err
	}
	out := targets.RolloutPreview{Digest: digest, Devices: pv.Selected, Waves: pv.Waves, Rates: pv.Rates}
	if st != nil {
		cn := st.Counts()
		out.Current = &targets.RolloutState{
			From: st.From, To: st.To, Outcome: string(st.Outcome),
			Wave: min(st.Wave, len(pv.Waves)-1) + 1, Waves: len(pv.Waves),
			Pending: pv.Pending, Updating: cn.Updating, Healthy: cn.Healthy, Failed: cn.Failed, RolledBack: cn.RolledBack,
			Paused: cur.Paused, Stalled: st.Live() && pv.Gate.Stalled(), Reason: st.Reason,
			Started: st.Started, Finished: st.Finished,
		}
	}
	return out, nil
}
