package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
)

// ErrReadOnly is wrapped by the errors of Remote's Put and Delete: a fleet
// target read through an agent's admin API is only planned against; the
// agent rolls it out when it deploys the commit.
var ErrReadOnly = errors.New("fleet target is rolled out by the agent")

var (
	_ targets.Target           = (*Remote)(nil)
	_ targets.OwnerRecorder    = (*Remote)(nil)
	_ targets.RolloutPreviewer = (*Remote)(nil)
)

// Remote is a fleet target as `ferry plan` run by hand sees it: the
// rollouts and device inventory of the agent's hub, read over the admin
// API (GET /v1/fleet/rollouts and GET /v1/fleet/devices, with the agent
// API's bearer token), planned against with the policy of the spec at
// hand (Fleet), which may differ from the one the agent runs. It observes
// exactly what the agent's own plan observes (controller.Rollout.Observed)
// and previews with the same function (controller.Preview).
//
// It is read-only: Put and Delete return an error wrapping ErrReadOnly,
// since a fleet's rollouts are the agent's (a commit reaches the devices
// when the agent deploys it). A target the agent has not seen yet (a new
// fleet target in the spec) observes no apps and previews over the whole
// inventory.
type Remote struct {
	// Client reaches the agent's admin API (required).
	Client *Client
	// Name is the fleet target's name; Fleet its selector and rollout
	// policy from the spec (required; nil Rollout is the default).
	Name  string
	Fleet *spec.FleetTarget
}

// RecordsOwners reports true: the agent's controllers record owners.
func (r *Remote) RecordsOwners() bool { return true }

// Observe returns the target's apps as the agent's controller reports
// them. Errors wrap targets.ErrUnavailable when the agent could not be
// reached or answered 5xx.
func (r *Remote) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	ros, err := r.rollouts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]targets.ObservedApp, 0, len(ros))
	for _, ro := range ros {
		out = append(out, ro.Observed())
	}
	slices.SortFunc(out, func(a, b targets.ObservedApp) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// PreviewRollout previews rolling want out with the spec's policy over the
// agent's device inventory, with the app's rollout on the agent as the
// current one.
func (r *Remote) PreviewRollout(ctx context.Context, want targets.DesiredApp) (targets.RolloutPreview, error) {
	if r.Fleet == nil {
		return targets.RolloutPreview{}, fmt.Errorf("fleet target %s: no policy", r.Name)
	}
	ros, err := r.rollouts(ctx)
	if err != nil {
		return targets.RolloutPreview{}, err
	}
	var cur *controller.Rollout
	for i := range ros {
		if ros[i].App == want.Name && ros[i].State != nil {
			cur = &ros[i]
		}
	}
	devs, err := r.Client.Devices(ctx, r.Fleet.Selector.String())
	if err != nil {
		return targets.RolloutPreview{}, r.wrap("device inventory", err)
	}
	return controller.Preview(r.Fleet, devs, want.Digest, cur)
}

// Put refuses: the agent rolls fleet targets out.
func (r *Remote) Put(ctx context.Context, want targets.DesiredApp) (targets.PutResult, error) {
	return targets.PutResult{}, fmt.Errorf("%w: fleet target %s: the agent starts the rollout of %s when it deploys the commit; ferry apply does not reach devices", ErrReadOnly, r.Name, want.Name)
}

// Delete refuses: the agent rolls fleet targets out.
func (r *Remote) Delete(ctx context.Context, name string) error {
	return fmt.Errorf("%w: fleet target %s: the agent removes %s when it deploys the commit; ferry apply does not reach devices", ErrReadOnly, r.Name, name)
}

func (r *Remote) rollouts(ctx context.Context) ([]controller.Rollout, error) {
	ros, err := r.Client.Rollouts(ctx, r.Name)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == http.StatusNotFound {
		return nil, nil // the agent has no controller for it yet
	}
	if err != nil {
		return nil, r.wrap("rollouts", err)
	}
	return ros, nil
}

func (r *Remote) wrap(what string, err error) error {
	var ae *APIError
	if errors.As(err, &ae) && ae.Code < 500 {
		return fmt.Errorf("fleet target %s: reading the agent's %s: %w", r.Name, what, err)
	}
	return fmt.Errorf("%w: fleet target %s: reading the agent's %s: %w", targets.ErrUnavailable, r.Name, what, err)
}
