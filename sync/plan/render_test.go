package plan

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got); rerun with -update if intended:\n%s", path, diff)
	}
}

func TestRenderGolden(t *testing.T) {
	p, _ := samplePlan(t)
	var plain, color, noops strings.Builder
	if err := p.Render(&plain); err != nil {
		t.Fatal(err)
	}
	p.RenderWith(&color, RenderOptions{Color: true})
	p.RenderWith(&noops, RenderOptions{ShowNoops: true})
	golden(t, "plan.txt", []byte(plain.String()))
	golden(t, "plan-color.txt", []byte(color.String()))
	golden(t, "plan-noops.txt", []byte(noops.String()))

	// Without the errored target the plan is applyable and says so.
	p.Targets = p.Targets[1:]
	var ok strings.Builder
	p.Render(&ok)
	golden(t, "plan-applyable.txt", []byte(ok.String()))

	empty := &Plan{Format: formatName, FormatVersion: FormatVersion, CreatedAt: p.CreatedAt, Targets: []TargetPlan{{Name: "local", Type: "host", Fingerprint: Fingerprint(nil)}}}
	var e strings.Builder
	empty.Render(&e)
	golden(t, "plan-empty.txt", []byte(e.String()))
}

func TestPlanJSONGolden(t *testing.T) {
	p, _ := samplePlan(t)
	b, err := MarshalPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.json", b)

	// The documented shape (package doc): check the keys a consumer relies on.
	var doc struct {
		Format        *string `json:"format"`
		FormatVersion *int    `json:"format_version"`
		CreatedAt     *string `json:"created_at"`
		Commit        *string `json:"commit"`
		Targets       []struct {
			Name        *string               `json:"name"`
			Type        *string               `json:"type"`
			Fingerprint string                `json:"fingerprint"`
			Observed    []targets.ObservedApp `json:"observed"`
			Changes     []map[string]json.RawMessage
			Errored     bool `json:"errored"`
			Diagnostics []map[string]string
		} `json:"targets"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Format == nil || *doc.Format != "ferry-plan" || doc.FormatVersion == nil || *doc.FormatVersion != 1 ||
		doc.CreatedAt == nil || *doc.CreatedAt != "2026-01-02T03:04:05Z" || doc.Commit == nil || len(doc.Targets) != 2 {
		t.Fatalf("header does not match the documented shape: %s", b[:200])
	}
	edge, local := doc.Targets[0], doc.Targets[1]
	if !edge.Errored || edge.Fingerprint != "" || len(edge.Diagnostics) != 1 || edge.Diagnostics[0]["severity"] != "error" {
		t.Errorf("errored target: %+v", edge)
	}
	if local.Errored || !strings.HasPrefix(local.Fingerprint, "sha256:") || len(local.Observed) != 5 {
		t.Errorf("local target: %+v", local)
	}
	actions := map[string]bool{}
	for _, ch := range local.Changes {
		var a string
		json.Unmarshal(ch["action"], &a)
		actions[a] = true
		for k := range ch {
			switch k {
			case "app", "action", "reasons", "before", "after":
			default:
				t.Errorf("undocumented change key %q", k)
			}
		}
	}
	if diff := cmp.Diff(map[string]bool{"create": true, "update": true, "delete": true, "no-op": true}, actions); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}
