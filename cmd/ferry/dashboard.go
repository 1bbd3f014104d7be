package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/agent/dashboard"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
)

// dashboardFlags configure the agent's web dashboard (sync/agent/dashboard).
type dashboardFlags struct {
	viewerTokenFile string
}

func (f *dashboardFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.viewerTokenFile, "viewer-token-file", "", "file holding a token that logs in to the dashboard read-only, at least 16 bytes (default $FERRY_AGENT_VIEWER_TOKEN_FILE); the operator token is the status API's")
}

// viewerToken reads the viewer token; "" when none is configured.
func (f *dashboardFlags) viewerToken() (string, error) {
	file := orEnv(f.viewerTokenFile, "FERRY_AGENT_VIEWER_TOKEN_FILE")
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", withCode(exitError, fmt.Errorf("--viewer-token-file: %w", err))
	}
	tok := string(trimNewline(b))
	if len(tok) < 16 {
		return "", withCode(exitUsage, fmt.Errorf("--viewer-token-file: the token in %s is %d bytes; use at least 16", file, len(tok)))
	}
	return tok, nil
}

// newDashboard makes the dashboard of a, with h's fleet views when h is
// not nil; nil (and a warning) when there is no operator token, since no
// one could log in.
func newDashboard(a *agent.Agent, h *hub.Hub, operator, viewer string, log *slog.Logger) (*dashboard.Dashboard, error) {
	if operator == "" {
		log.Warn("the dashboard is off: it needs the status API's token to log in with")
		return nil, nil
	}
	o := dashboard.Options{Source: a, OperatorToken: operator, ViewerToken: viewer, Logger: log.With("component", "dashboard")}
	if h != nil {
		o.Fleet = dashboard.HubFleet(h)
	}
	d, err := dashboard.New(o)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return d, nil
}

// eventBus forwards events to the agent's bus (Agent.Publish), which is
// attached later: the fleet hub starts before the agent. Until then events
// are dropped, as a bus with no subscriber would.
type eventBus struct {
	sink atomic.Pointer[func(agent.Event)]
}

// attach makes publish hand events to fn.
func (b *eventBus) attach(fn func(agent.Event)) { b.sink.Store(&fn) }

func (b *eventBus) publish(e agent.Event) {
	if fn := b.sink.Load(); fn != nil {
		(*fn)(e)
	}
}

// fleetEvent turns a fleet controller's rollout event into a bus event.
func (b *eventBus) fleetEvent(e controller.Event) {
	b.publish(agent.Event{Kind: agent.EventFleet, Time: e.Time, Target: e.Target, App: e.App, Digest: e.To, Phase: string(e.Kind),
		Message: fmt.Sprintf("rollout %s: %d devices, %d healthy, %d failed%s", e.Kind, e.Devices, e.Counts.Healthy, e.Counts.Failed, reasonSuffix(e.Reason))})
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return "; " + r
}

// both calls every non-nil fn with e.
func both(fns ...func(controller.Event)) func(controller.Event) {
	return func(e controller.Event) {
		for _, fn := range fns {
			if fn != nil {
				fn(e)
			}
		}
	}
}

// publishDevices publishes an EventDevice after device reports,
// enrollments and revocations of h, at most one per interval (the device
// server coalesces the rest), until ctx ends.
func (b *eventBus) publishDevices(ctx context.Context, h *hub.Hub, interval time.Duration) {
	ch, cancel := h.Server().Subscribe()
	go func() {
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
			}
			b.publish(agent.Event{Kind: agent.EventDevice})
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}()
}
