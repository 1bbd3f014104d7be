package notify

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenEvents are one event of each kind, as the agent and the fleet
// controller fill them.
func goldenEvents() map[string]Event {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	d1, d2 := "sha256:"+strings.Repeat("1a", 32), "sha256:"+strings.Repeat("2b", 32)
	return map[string]Event{
		"rollout-started": {ID: "evt_1", Kind: KindRolloutStarted, Time: at, App: "web", Target: "edge", Digest: d2, Previous: d1,
			Devices: &Devices{}},
		"rollout-completed": {ID: "evt_2", Kind: KindRolloutCompleted, Time: at, App: "web", Target: "edge", Digest: d2, Previous: d1,
			Devices: &Devices{Total: 10, Healthy: 10}},
		"rollout-aborted": {ID: "evt_3", Kind: KindRolloutAborted, Time: at, App: "web", Target: "edge", Digest: d2, Previous: d1,
			Reason: "wave 1: 2 of 3 devices failed (need 90% healthy)", Devices: &Devices{Total: 3, Healthy: 1, Failed: 1, RolledBack: 1}},
		"apply-failed": {ID: "evt_4", Kind: KindApplyFailed, Time: at, App: "api", Target: "prod", Digest: d2, Previous: d1,
			Commit: "0123456789abcdef0123456789abcdef01234567", Round: 42, Reason: "health check GET /healthz answered 500 <3 times> & gave up"},
		"health-degraded": {ID: "evt_5", Kind: KindHealthDegraded, Time: at, App: "api", Target: "prod", Digest: d1,
			Commit: "0123456789abcdef0123456789abcdef01234567", Round: 43, Reason: "probe GET /healthz: connection refused"},
		"rollback-host": {ID: "evt_6", Kind: KindRollback, By: ByHost, Time: at, App: "api", Target: "prod", Digest: d2, Previous: d1,
			Commit: "0123456789abcdef0123456789abcdef01234567", Round: 44, Reason: "3 health probes failed within the 30s bake"},
		"rollback-agent": {ID: "evt_7", Kind: KindRollback, By: ByAgent, Time: at, App: "api", Target: "prod", Digest: d2, Previous: d1,
			Commit: "0123456789abcdef0123456789abcdef01234567", Round: 45, Reason: "rolled back to sha256:1a1a1a1a1a1a: the previous version kept serving"},
	}
}

// TestGoldenPayloads pins the webhook and Slack bodies of every kind:
// testdata/NAME.webhook.golden and NAME.slack.golden (indented). Refresh
// with go test ./sync/notify -run Golden -update.
func TestGoldenPayloads(t *testing.T) {
	for name, e := range goldenEvents() {
		for _, f := range []struct {
			sink   string
			encode func(Event) ([]byte, error)
		}{{"webhook", WebhookBody}, {"slack", SlackBody}} {
			t.Run(name+"/"+f.sink, func(t *testing.T) {
				raw, err := f.encode(e)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if err := json.Indent(&out, raw, "", "  "); err != nil {
					t.Fatal(err)
				}
				out.WriteByte('\n')
				path := filepath.Join("testdata", name+"."+f.sink+".golden")
				if *update {
					if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Errorf("%s differs; got:\n%s", path, out.Bytes())
				}
			})
		}
	}
	// Every kind has a golden event.
	seen := map[Kind]bool{}
	for _, e := range goldenEvents() {
		seen[e.Kind] = true
	}
	for _, k := range Kinds() {
		if !seen[k] {
			t.Errorf("no golden event of kind %s", k)
		}
	}
}

// TestSlackShape checks what Slack needs of every payload: a text, a
// section block with mrkdwn text, and the mrkdwn escapes.
func TestSlackShape(t *testing.T) {
	for name, e := range goldenEvents() {
		raw, _ := SlackBody(e)
		var p struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type string `json:"type"`
				Text *struct {
					Type, Text string
				} `json:"text"`
				Elements []struct{ Type, Text string } `json:"elements"`
			} `json:"blocks"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.Text == "" || len(p.Blocks) == 0 || p.Blocks[0].Type != "section" || p.Blocks[0].Text == nil || p.Blocks[0].Text.Type != "mrkdwn" {
			t.Errorf("%s: not a Slack message: %s", name, raw)
		}
		for _, b := range p.Blocks {
			if b.Text != nil && strings.ContainsAny(strings.ReplaceAll(b.Text.Text, "\n>", "\n"), "<>") {
				t.Errorf("%s: unescaped mrkdwn in %q", name, b.Text.Text)
			}
		}
	}
}
