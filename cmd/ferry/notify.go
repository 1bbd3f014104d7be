package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/sync/notify"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
)

// notifyFlags configure the agent's notifications (sync/notify).
type notifyFlags struct {
	webhook, secretFile, slack string
}

func (f *notifyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.webhook, "notify-webhook", "", "URL that gets a signed JSON POST on rollout started/completed/aborted, apply failed, health degraded and rollback (default $FERRY_NOTIFY_WEBHOOK)")
	cmd.Flags().StringVar(&f.secretFile, "notify-secret-file", "", "file holding the HMAC secret that signs --notify-webhook deliveries, at least 16 bytes (default $FERRY_NOTIFY_SECRET_FILE, or the secret itself in $FERRY_NOTIFY_SECRET)")
	cmd.Flags().StringVar(&f.slack, "notify-slack", "", "Slack-compatible incoming-webhook URL for the same events; it is a secret, so prefer $FERRY_NOTIFY_SLACK (a flag shows in ps)")
}

// notifier makes the agent's Notifier from the flags and the environment,
// registering its metric in reg; nil when no sink is configured. The
// caller runs it (Start).
func (f *notifyFlags) notifier(log *slog.Logger, reg prometheus.Registerer) (*notify.Notifier, error) {
	webhook := orEnv(f.webhook, "FERRY_NOTIFY_WEBHOOK")
	slack := orEnv(f.slack, "FERRY_NOTIFY_SLACK")
	if webhook == "" && slack == "" {
		if f.secretFile != "" {
			return nil, withCode(exitUsage, fmt.Errorf("--notify-secret-file without --notify-webhook"))
		}
		return nil, nil
	}
	var secret []byte
	if webhook != "" {
		file := orEnv(f.secretFile, "FERRY_NOTIFY_SECRET_FILE")
		switch {
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, withCode(exitError, fmt.Errorf("--notify-secret-file: %w", err))
			}
			secret = trimNewline(b)
		case os.Getenv("FERRY_NOTIFY_SECRET") != "":
			secret = []byte(os.Getenv("FERRY_NOTIFY_SECRET"))
		default:
			return nil, withCode(exitUsage, fmt.Errorf("--notify-webhook needs a signing secret: --notify-secret-file FILE (or FERRY_NOTIFY_SECRET_FILE, FERRY_NOTIFY_SECRET)"))
		}
	}
	n, err := notify.New(notify.Options{Webhook: webhook, Secret: secret, Slack: slack, Logger: log.With("component", "notify"), Metrics: reg})
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return n, nil
}

func orEnv(v, env string) string {
	if v != "" {
		return v
	}
	return os.Getenv(env)
}

// startNotifier runs n until ctx ends; a nil n does nothing.
func startNotifier(ctx context.Context, n *notify.Notifier, log *slog.Logger) {
	if n == nil {
		return
	}
	for _, s := range n.Sinks() {
		log.Info("notifications on", "sink", s)
	}
	go n.Start(ctx) //nolint:errcheck // started once; returns nil when ctx ends
}

// fleetNotify turns a fleet controller's rollout event into a
// notification for publish.
func fleetNotify(publish func(notify.Event)) func(controller.Event) {
	return func(e controller.Event) {
		kind := map[controller.EventKind]notify.Kind{
			controller.EventStarted:   notify.KindRolloutStarted,
			controller.EventCompleted: notify.KindRolloutCompleted,
			controller.EventAborted:   notify.KindRolloutAborted,
		}[e.Kind]
		if kind == "" {
			return
		}
		publish(notify.Event{Kind: kind, Time: e.Time, App: e.App, Target: e.Target, Digest: e.To, Previous: e.From, Reason: e.Reason,
			Devices: &notify.Devices{Total: e.Devices, Healthy: e.Counts.Healthy, Updating: e.Counts.Updating, Failed: e.Counts.Failed, RolledBack: e.Counts.RolledBack}})
	}
}
