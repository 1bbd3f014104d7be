package main

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/sync/notify"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
)

// TestFleetNotify: a fleet controller's rollout events become
// notifications with the digests, reason and device counts.
func TestFleetNotify(t *testing.T) {
	var got []notify.Event
	f := fleetNotify(func(e notify.Event) { got = append(got, e) })
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	f(controller.Event{Kind: controller.EventAborted, Time: at, Target: "edge", App: "web", From: "sha256:a", To: "sha256:b",
		Reason: "2 of 3 failed", Devices: 3, Counts: fleet.Counts{Healthy: 1, Failed: 1, RolledBack: 1}})
	f(controller.Event{Kind: controller.EventStarted, Time: at, Target: "edge", App: "web", To: "sha256:b"})
	f(controller.Event{Kind: controller.EventCompleted, Time: at, Target: "edge", App: "web", To: "sha256:b", Devices: 3, Counts: fleet.Counts{Healthy: 3}})
	f(controller.Event{Kind: "unknown"})
	want := []notify.Event{
		{Kind: notify.KindRolloutAborted, Time: at, App: "web", Target: "edge", Digest: "sha256:b", Previous: "sha256:a", Reason: "2 of 3 failed",
			Devices: &notify.Devices{Total: 3, Healthy: 1, Failed: 1, RolledBack: 1}},
		{Kind: notify.KindRolloutStarted, Time: at, App: "web", Target: "edge", Digest: "sha256:b", Devices: &notify.Devices{}},
		{Kind: notify.KindRolloutCompleted, Time: at, App: "web", Target: "edge", Digest: "sha256:b", Devices: &notify.Devices{Total: 3, Healthy: 3}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestNotifyFlags: a webhook needs a secret; no flag means no notifier.
func TestNotifyFlags(t *testing.T) {
	t.Setenv("FERRY_NOTIFY_WEBHOOK", "")
	t.Setenv("FERRY_NOTIFY_SLACK", "")
	t.Setenv("FERRY_NOTIFY_SECRET", "")
	t.Setenv("FERRY_NOTIFY_SECRET_FILE", "")
	log := slog.New(slog.DiscardHandler)
	usage := func(err error) bool {
		var ec *exitCode
		return errors.As(err, &ec) && ec.code == exitUsage
	}
	if n, err := (&notifyFlags{}).notifier(log, nil); n != nil || err != nil {
		t.Errorf("no flags: %v %v", n, err)
	}
	if _, err := (&notifyFlags{webhook: "https://hooks.example.com/x"}).notifier(log, nil); !usage(err) {
		t.Errorf("webhook without a secret: %v", err)
	}
	t.Setenv("FERRY_NOTIFY_SECRET", "a-secret-of-sixteen-bytes")
	n, err := (&notifyFlags{webhook: "https://hooks.example.com/x"}).notifier(log, nil)
	if err != nil || len(n.Sinks()) != 1 || n.Sinks()[0] != "webhook https://hooks.example.com/…" {
		t.Errorf("webhook with FERRY_NOTIFY_SECRET: %v %v", n, err)
	}
	t.Setenv("FERRY_NOTIFY_SLACK", "https://hooks.slack.com/services/T/B/secret")
	n, err = (&notifyFlags{}).notifier(log, nil)
	if err != nil || len(n.Sinks()) != 1 || n.Sinks()[0] != "slack https://hooks.slack.com/…" {
		t.Errorf("slack from the environment: %v %v", n, err)
	}
	if _, err := (&notifyFlags{secretFile: "/nonexistent", slack: "https://hooks.slack.com/x"}).notifier(log, nil); err != nil {
		t.Errorf("slack only ignores the secret file: %v", err)
	}
}
