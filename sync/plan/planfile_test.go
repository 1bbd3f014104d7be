package plan

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func samplePlan(t testing.TB) (*Plan, map[string]targets.Target) {
	t.Helper()
	m := plantest.NewMem()
	m.Set("api", plantest.Dg("a1"), true, true)
	m.Set("old", plantest.Dg("o1"), true, true)
	m.Set("same", plantest.Dg("s1"), true, true)
	m.Set("sick", plantest.Dg("k1"), true, false)
	m.Set("legacy", plantest.Dg("l1"), false, true)
	down := plantest.NewMem()
	down.Unavailable = true
	s := "hi"
	hello := plantest.App("hello", "h1")
	hello.App = deploy.App{Name: "hello", Hosts: []string{"hello.test"},
		Variables:  map[string]deploy.Variable{"greeting": {Default: &s}, "token": {Secret: true}},
		Components: []deploy.Component{{Name: "web", Digest: plantest.Dg("w1"), Routes: []string{"/..."}, Limits: deploy.Limits{Timeout: deploy.Duration(5 * time.Second)}}}}
	hello.Secrets = map[string]string{"token": "never-in-a-plan"}
	d := Desired{Commit: "3f2a9c1d", Targets: []DesiredTarget{
		{Name: "local", Type: "host", Apps: []targets.DesiredApp{hello, plantest.App("api", "a2"), plantest.App("same", "s1"), plantest.App("sick", "k1")}},
		{Name: "edge", Type: "fleet", Apps: []targets.DesiredApp{plantest.App("hello", "h1")}},
	}}
	tg := plantest.Tmap("local", m, "edge", down)
	configOf := func(_ context.Context, _ string, running targets.ObservedApp) (*deploy.App, error) {
		if running.Name != "api" {
			return nil, nil
		}
		return &deploy.App{Name: "api", Hosts: []string{"api.test"}}, nil
	}
	api := plantest.App("api", "a2")
	api.App = deploy.App{Name: "api", Hosts: []string{"api.test", "api2.test"}, Components: []deploy.Component{{Name: "svc", Digest: plantest.Dg("svc")}}}
	d.Targets[0].Apps[1] = api
	p, err := Compute(context.Background(), d, tg, PlanOptions{ConfigOf: configOf, Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return p, tg
}

func TestPlanFileRoundTrip(t *testing.T) {
	p, _ := samplePlan(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WritePlanFile(path, p); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPlanFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-wrote +read):\n%s", diff)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := WritePlanFile(filepath.Join(dir, "missing", "plan.json"), p); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func TestReadPlanFileRefuses(t *testing.T) {
	p, _ := samplePlan(t)
	good, err := MarshalPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, content, want string
	}{
		{"newer version", strings.Replace(string(good), `"format_version": 1`, `"format_version": 2`, 1), "format version 2, newer than version 1"},
		{"not a plan", `{"hello": "world"}`, "not a ferry plan file"},
		{"garbage", "\x00\x01", "not a ferry plan file"},
		{"version zero", `{"format": "ferry-plan", "format_version": 0}`, "invalid format version 0"},
		{"truncated", string(good[:len(good)/2]), "not a ferry plan file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.json")
			os.WriteFile(path, []byte(tc.content), 0o644)
			_, err := ReadPlanFile(path)
			if !errors.Is(err, ErrPlanFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadPlanFile = %v, want ErrPlanFormat containing %q", err, tc.want)
			}
		})
	}
	if _, err := ReadPlanFile(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// An in-memory plan of an unknown version is not applyable either.
	p.FormatVersion = 2
	if err := p.Applyable(); !errors.Is(err, ErrPlanFormat) {
		t.Errorf("Applyable(v2) = %v", err)
	}
}

func TestSavedPlanAppliesExactly(t *testing.T) {
	m := plantest.NewMem()
	m.Set("api", plantest.Dg("a1"), true, true)
	tg := plantest.Tmap("local", m)
	p := mustPlan(t, desiredOne("local", plantest.App("api", "a2"), plantest.App("new", "n1")), tg)
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := WritePlanFile(path, p); err != nil {
		t.Fatal(err)
	}
	saved, err := ReadPlanFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(context.Background(), saved, tg, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"api": plantest.Dg("a2"), "new": plantest.Dg("n1")}, m.Digests()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
