package sync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
)

// policySpec has one app per deploy policy: a short timeout, no rollback,
// and no deploy block at all.
const policySpec = `
app "quick" {
  deploy {
    timeout = "50ms"
  }
  component "web" {
    wasm = "./m.wasm"
  }
}

app "keep" {
  deploy {
    auto_rollback = false
  }
  component "web" {
    wasm = "./m.wasm"
  }
}

app "plain" {
  component "web" {
    wasm = "./m.wasm"
  }
}
`

// TestPolicyFromSpec: an app's deploy block changes what Apply does with
// it — its timeout fails a slow deploy that the default lets finish, and
// auto_rollback = false leaves a failed version in place where the default
// switches back — and an app without one gets ApplyOptions' defaults.
func TestPolicyFromSpec(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(policySpec), 0o644)
	os.WriteFile(filepath.Join(dir, "m.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	cfg, diags := spec.Load(dir, spec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	pol := PolicyFromSpec(cfg)
	if p := pol("local", "quick"); p != (AppPolicy{Timeout: 50 * time.Millisecond}) {
		t.Errorf("quick: %+v", p)
	}
	if p := pol("local", "keep"); p != (AppPolicy{OnFailure: OnFailureLeave}) {
		t.Errorf("keep: %+v", p)
	}
	if p := pol("local", "plain"); p != (AppPolicy{}) {
		t.Errorf("plain: %+v", p)
	}
	if p := PolicyFromSpec(nil)("local", "quick"); p != (AppPolicy{}) {
		t.Errorf("nil spec: %+v", p)
	}

	for _, withSpec := range []bool{false, true} {
		opts := ApplyOptions{Timeout: time.Hour}
		if withSpec {
			opts.PolicyFor = pol
		}
		// quick: a Put that takes 300ms.
		m := newMem()
		m.set("quick", dg("q1"), true, true)
		m.putDelay = 300 * time.Millisecond
		tg := tmap("local", m)
		res, err := Apply(context.Background(), mustPlanP(t, desiredOneP("local", app("quick", "q2")), tg), tg, opts)
		r := res.App("local", "quick")
		if withSpec {
			if !errors.Is(err, ErrApplyFailed) || r.Outcome != OutcomeFailed || !strings.Contains(r.Error, "not healthy within 50ms") {
				t.Errorf("quick with its deploy block: %v %+v; want failed, not healthy within 50ms", err, r)
			}
		} else if err != nil || r.Outcome != OutcomeApplied {
			t.Errorf("quick without its deploy block: %v %+v; want applied", err, r)
		}

		// keep: the new version is switched to, then unhealthy.
		m = newMem()
		if err := m.Put(context.Background(), app("keep", "k1")); err != nil {
			t.Fatal(err)
		}
		m.fail[dg("k2")] = failAfterSwitch
		tg = tmap("local", m)
		res, _ = Apply(context.Background(), mustPlanP(t, desiredOneP("local", app("keep", "k2")), tg), tg, opts)
		r = res.App("local", "keep")
		want, detail := dg("k1"), "switched back"
		if withSpec {
			want, detail = dg("k2"), "left in place"
		}
		if got := m.digests()["keep"]; got != want || r.Outcome != OutcomeFailed || !strings.Contains(r.Detail, detail) {
			t.Errorf("keep (spec policy %v): runs %s (%s), want %s (%q)", withSpec, got, r.Detail, want, detail)
		}
	}
}

func desiredOneP(target string, apps ...targets.DesiredApp) Desired {
	return Desired{Commit: "c1", Targets: []DesiredTarget{{Name: target, Type: "host", Apps: apps}}}
}

func mustPlanP(t testing.TB, d Desired, tg map[string]targets.Target) *Plan {
	t.Helper()
	p, err := ComputePlan(context.Background(), d, tg, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Applyable(); err != nil {
		t.Fatal(err)
	}
	return p
}
