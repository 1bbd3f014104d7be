package device

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
	hostapi "github.com/ferry-wasm/ferry/targets/host/api"
)

var phases = []string{api.PhaseServing, api.PhaseUpdating, api.PhaseUnhealthy, api.PhaseRolledBack, api.PhaseFailed}

// FuzzDecide feeds Decide and Statuses arbitrary desired states, running
// apps and failures (JSON) and checks their invariants: no panic; at most
// one action per app; a put never names a digest that failed for good or
// that the prober rolled back from; deletes only for apps not desired;
// one status per app, sorted, with a known phase.
func FuzzDecide(f *testing.F) {
	f.Add([]byte(`{"version":"1","apps":[{"name":"web","ref":"r@sha256:bb","digest":"sha256:bb"}]}`),
		[]byte(`[{"name":"web","digest":"sha256:aa","status":"serving","healthy":true}]`),
		[]byte(`{"web":{"Digest":"sha256:bb","Permanent":true}}`))
	f.Add([]byte(`{"version":"2","apps":[{"name":"a","ref":"r@sha256:cc"},{"name":"a","digest":"sha256:dd"}]}`),
		[]byte(`[{"name":"b","digest":"sha256:aa","status":"failed"},{"name":"a","digest":"sha256:cc","status":"serving","rolled_back":{"from":"sha256:cc"}}]`),
		[]byte(`{}`))
	f.Fuzz(func(t *testing.T, desiredJSON, runningJSON, failedJSON []byte) {
		var d api.Desired
		var running []hostapi.AppInfo
		var failed map[string]Failure
		if json.Unmarshal(desiredJSON, &d) != nil || json.Unmarshal(runningJSON, &running) != nil || json.Unmarshal(failedJSON, &failed) != nil {
			return
		}
		want := map[string]api.DesiredApp{}
		for _, a := range d.Apps {
			if _, dup := want[a.Name]; !dup {
				want[a.Name] = a
			}
		}
		run := map[string]hostapi.AppInfo{}
		for _, ai := range running {
			run[ai.Name] = ai
		}
		seen := map[string]bool{}
		for _, act := range Decide(d, running, failed, []byte("k")) {
			name := act.App.Name
			if seen[name] {
				t.Fatalf("two actions for %q", name)
			}
			seen[name] = true
			switch act.Kind {
			case ActionDelete:
				if _, ok := want[name]; ok {
					t.Fatalf("delete of desired app %q", name)
				}
			case ActionPut, ActionReconfigure:
				dg := digestOf(act.App)
				if f, ok := failed[name]; ok && f.Permanent && f.Digest == dg {
					t.Fatalf("put of %q at %s, which failed for good", name, dg)
				}
				if ai, ok := run[name]; ok && ai.RolledBack != nil && ai.RolledBack.From == dg {
					t.Fatalf("put of %q at %s, which the prober rolled back from", name, dg)
				}
			default:
				t.Fatalf("unknown action %q", act.Kind)
			}
		}
		sts := Statuses(&d, running, failed)
		if !slices.IsSortedFunc(sts, func(a, b api.AppStatus) int {
			if a.Name < b.Name {
				return -1
			}
			if a.Name > b.Name {
				return 1
			}
			return 0
		}) {
			t.Fatalf("statuses not sorted: %+v", sts)
		}
		for i, s := range sts {
			if i > 0 && sts[i-1].Name == s.Name {
				t.Fatalf("two statuses for %q", s.Name)
			}
			if !slices.Contains(phases, s.Phase) {
				t.Fatalf("status %+v: unknown phase", s)
			}
		}
		_ = Statuses(nil, running, failed)
	})
}
