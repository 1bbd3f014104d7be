package dashboard

import (
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// Fleet is what the fleet views read and do: the agent's fleet hub
// (HubFleet). Every method is called from request goroutines.
type Fleet interface {
	// Rollouts returns every rollout, sorted by target and app.
	Rollouts() ([]controller.Rollout, error)
	// Devices returns the devices whose labels match (nil: all), sorted
	// by ID.
	Devices(match func(labels map[string]string) bool) []server.Device
	// Pause, Resume and Abort steer the rollout of app on fleet target.
	Pause(target, app string) error
	Resume(target, app string) error
	Abort(target, app, reason string) error
}

// HubFleet returns h as a Fleet.
func HubFleet(h *hub.Hub) Fleet { return hubFleet{h} }

type hubFleet struct{ h *hub.Hub }

func (f hubFleet) Rollouts() ([]controller.Rollout, error) { return f.h.Rollouts("") }

func (f hubFleet) Devices(match func(map[string]string) bool) []server.Device {
	return f.h.Server().Devices(match)
}

func (f hubFleet) Pause(target, app string) error {
	c, err := f.h.Controller(target)
	if err != nil {
		return err
	}
	return c.Pause(app)
}

func (f hubFleet) Resume(target, app string) error {
	c, err := f.h.Controller(target)
	if err != nil {
		return err
	}
	return c.Resume(app)
}

func (f hubFleet) Abort(target, app, reason string) error {
	c, err := f.h.Controller(target)
	if err != nil {
		return err
	}
	return c.Abort(app, reason)
}
