package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
)

// remoteFleets opens fleet targets as the read-only view of the agent's
// hub (hub.Remote): `ferry plan` run by hand previews their rollouts over
// the agent's device inventory, like `argocd app diff` asks the server.
type remoteFleets struct{ c *hub.Client }

func (r remoteFleets) FleetTarget(name string, f *spec.FleetTarget) (targets.Target, error) {
	return &hub.Remote{Client: r.c, Name: name, Fleet: f}, nil
}

// fleetPreview returns the Fleets that `ferry plan` opens the fleet
// targets of cfg with: the agent that --agent (FERRY_AGENT_URL, else the
// local ferry up) names, read with FERRY_AGENT_TOKEN. Nil, with a warning
// on w saying why, when cfg has no fleet target or the agent cannot be
// read: fleet targets are then left out of the plan, as before.
func fleetPreview(ctx context.Context, af *agentFlags, cfg *spec.Config, w io.Writer) (remoteFleets, bool) {
	has := false
	for _, t := range cfg.Targets {
		has = has || t.Type == spec.TargetFleet
	}
	if !has {
		return remoteFleets{}, false
	}
	c, err := fleetClient(af)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = c.Rollouts(pctx, "")
		cancel()
	}
	if err != nil {
		url := ""
		if c != nil {
			url = " at " + c.BaseURL
		}
		fmt.Fprintf(w, "Warning: fleet targets are previewed from the agent that rolls them out, and the agent%s could not be read: %v. Name it with --agent URL (or FERRY_AGENT_URL) and its API token with FERRY_AGENT_TOKEN.\n", url, err)
		return remoteFleets{}, false
	}
	return remoteFleets{c}, true
}

// noteFleets says on w which targets of p were previewed from the agent
// and that apply leaves them to it.
func noteFleets(w io.Writer, p *plan.Plan, agentURL string) {
	for _, t := range p.Targets {
		if t.Type == string(spec.TargetFleet) {
			fmt.Fprintf(w, "Note: fleet target %s is planned against the devices of the agent at %s, which rolls it out when it deploys the commit; ferry apply leaves fleet targets to it.\n", t.Name, agentURL)
		}
	}
}

// dropFleets removes from pl the fleet targets that tgts does not open
// (ferry apply of a saved plan: the agent rolls fleets out), with a note
// on w for each.
func dropFleets(w io.Writer, pl *plan.Plan, tgts map[string]targets.Target) {
	kept := pl.Targets[:0]
	for _, t := range pl.Targets {
		if _, ok := tgts[t.Name]; !ok && t.Type == string(spec.TargetFleet) {
			fmt.Fprintf(w, "Note: fleet target %s is left to the agent, which rolls it out when it deploys the commit.\n", t.Name)
			continue
		}
		kept = append(kept, t)
	}
	pl.Targets = kept
}
