package release

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/plan/plantest"
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
	if p := pol("local", "quick"); p != (plan.AppPolicy{Timeout: 50 * time.Millisecond}) {
		t.Errorf("quick: %+v", p)
	}
	if p := pol("local", "keep"); p != (plan.AppPolicy{OnFailure: plan.OnFailureLeave}) {
		t.Errorf("keep: %+v", p)
	}
	if p := pol("local", "plain"); p != (plan.AppPolicy{}) {
		t.Errorf("plain: %+v", p)
	}
	if p := PolicyFromSpec(nil)("local", "quick"); p != (plan.AppPolicy{}) {
		t.Errorf("nil spec: %+v", p)
	}

	for _, withSpec := range []bool{false, true} {
		opts := plan.ApplyOptions{Timeout: time.Hour}
		if withSpec {
			opts.PolicyFor = pol
		}
		// quick: a Put that takes 300ms.
		m := plantest.NewMem()
		m.Set("quick", plantest.Dg("q1"), true, true)
		m.PutDelay = 300 * time.Millisecond
		tg := plantest.Tmap("local", m)
		res, err := plan.Apply(context.Background(), mustPlanP(t, desiredOneP("local", plantest.App("quick", "q2")), tg), tg, opts)
		r := res.App("local", "quick")
		if withSpec {
			if !errors.Is(err, plan.ErrApplyFailed) || r.Outcome != plan.OutcomeFailed || !strings.Contains(r.Error, "not healthy within 50ms") {
				t.Errorf("quick with its deploy block: %v %+v; want failed, not healthy within 50ms", err, r)
			}
		} else if err != nil || r.Outcome != plan.OutcomeApplied {
			t.Errorf("quick without its deploy block: %v %+v; want applied", err, r)
		}

		// keep: the new version is switched to, then unhealthy.
		m = plantest.NewMem()
		if _, err := m.Put(context.Background(), plantest.App("keep", "k1")); err != nil {
			t.Fatal(err)
		}
		m.Fail[plantest.Dg("k2")] = plantest.FailAfterSwitch
		tg = plantest.Tmap("local", m)
		res, _ = plan.Apply(context.Background(), mustPlanP(t, desiredOneP("local", plantest.App("keep", "k2")), tg), tg, opts)
		r = res.App("local", "keep")
		want, detail := plantest.Dg("k1"), "switched back"
		if withSpec {
			want, detail = plantest.Dg("k2"), "left in place"
		}
		if got := m.Digests()["keep"]; got != want || r.Outcome != plan.OutcomeFailed || !strings.Contains(r.Detail, detail) {
			t.Errorf("keep (spec policy %v): runs %s (%s), want %s (%q)", withSpec, got, r.Detail, want, detail)
		}
	}
}

func desiredOneP(target string, apps ...targets.DesiredApp) plan.Desired {
	return plan.Desired{Commit: "c1", Targets: []plan.DesiredTarget{{Name: target, Type: "host", Apps: apps}}}
}

func mustPlanP(t testing.TB, d plan.Desired, tg map[string]targets.Target) *plan.Plan {
	t.Helper()
	p, err := plan.Compute(context.Background(), d, tg, plan.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Applyable(); err != nil {
		t.Fatal(err)
	}
	return p
}
