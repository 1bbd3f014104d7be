package control_test

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// secretApp is the varecho guest (it answers with the value of its
// component variable "key") as app name, served for name.test, with key
// bound to the secret variable api_key.
func secretApp(name string) deploy.App {
	return deploy.App{Name: name, Hosts: []string{name + ".test"},
		Variables: map[string]deploy.Variable{"api_key": {Secret: true}},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
			Variables: map[string]string{"key": "{{ api_key }}"},
		}}}
}

func varechoWasm(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "varecho.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantAnswers fails unless the guest of app on w answers exactly want.
func (w *world) wantAnswers(app, want string) {
	w.t.Helper()
	if code, body := w.get(app+".test", "/"); code != 200 || body != want {
		w.t.Fatalf("GET http://%s.test/ on %s = %d %q, want 200 %q", app, w.ctl.URL, code, body, want)
	}
}

// TestGroupReportsOneHostsDifferentSecret: two real hosts behind one
// driver.Group run the same app at the same digest; on one of them the
// secret is changed by hand through its own control API. The group's
// secret hashes must differ from those of the desired value — whichever
// host drifted, the first or the second — so that a plan for the desired
// value updates the app (naming the variable), and applying it puts the
// value back on both hosts. A secret the spec does not give, on one host, is
// a difference too.
func TestGroupReportsOneHostsDifferentSecret(t *testing.T) {
	ctx := context.Background()
	trusted, _ := testKeys(t)
	policy := signer.Policy{Keys: []signer.Key{trusted.pub}}
	const want = "desired-value-1111"
	for _, tc := range []struct {
		name    string
		drifted int               // which host is changed by hand
		secrets map[string]string // what it is given by hand
		answers string            // what its guest then answers
		reason  string            // the variable the plan's reason names
	}{
		{"second host has another value", 1, map[string]string{"api_key": "by-hand-2222"}, "by-hand-2222", "api_key"},
		{"first host has another value", 0, map[string]string{"api_key": "by-hand-2222"}, "by-hand-2222", "api_key"},
		{"second host has a secret the spec does not give", 1, map[string]string{"api_key": want, "extra": "by-hand-3333"}, want, "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w1, w2 := newWorld(t, policy), newWorld(t, policy)
			worlds := []*world{w1, w2}
			// Both hosts pull from w1's registry.
			ref := w1.push("sec", secretApp("sec"), varechoWasm(t))
			w1.sign(ref, trusted)
			g, err := driver.NewGroup(w1.client, w2.client)
			if err != nil {
				t.Fatal(err)
			}
			tgts := map[string]targets.Target{"g": g}
			d := plan.Desired{Commit: "c", Targets: []plan.DesiredTarget{{Name: "g", Type: "host", Apps: []targets.DesiredApp{{
				Name: "sec", Ref: ref, Digest: digestOf(ref), App: secretApp("sec"), Secrets: map[string]string{"api_key": want},
			}}}}}
			compute := func() *plan.Plan {
				t.Helper()
				p, err := plan.Compute(ctx, d, tgts, plan.PlanOptions{})
				if err != nil || p.Applyable() != nil {
					t.Fatalf("plan: %v %v", err, p.Applyable())
				}
				return p
			}
			apply := func(p *plan.Plan) {
				t.Helper()
				res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{SecretsFor: plan.SecretsFrom(d)})
				if err != nil || res.Count(plan.OutcomeFailed) > 0 {
					t.Fatalf("apply: %+v %v", res, err)
				}
			}
			observed := func() targets.ObservedApp {
				t.Helper()
				obs, err := g.Observe(ctx)
				if err != nil || len(obs) != 1 {
					t.Fatalf("group Observe: %+v, %v", obs, err)
				}
				return obs[0]
			}
			wantHashes := g.SecretHashes("sec", d.Targets[0].Apps[0].Secrets)

			apply(compute())
			for _, w := range worlds {
				w.wantAnswers("sec", want)
			}
			if o := observed(); o.Digest != digestOf(ref) || !maps.Equal(o.SecretHashes, wantHashes) {
				t.Fatalf("after applying to both: the group reports %s with hashes %v, want %s with %v", o.Digest, o.SecretHashes, digestOf(ref), wantHashes)
			}
			if p := compute(); p.HasChanges() {
				t.Fatalf("after applying to both, the plan has changes: %+v", p.Targets[0].Changes)
			}

			// By hand, on one host only, at the same digest.
			drifted, other := worlds[tc.drifted], worlds[1-tc.drifted]
			if _, err := drifted.client.PutApp(ctx, "sec", api.PutRequest{Ref: ref, Secrets: tc.secrets}); err != nil {
				t.Fatal(err)
			}
			drifted.wantAnswers("sec", tc.answers)
			other.wantAnswers("sec", want)
			// The other host alone still reports the desired value's hashes:
			// a group that reported one host would hide the drift.
			if ai, err := other.client.App(ctx, "sec"); err != nil || !maps.Equal(ai.SecretHashes, other.client.SecretHashes("sec", d.Targets[0].Apps[0].Secrets)) {
				t.Fatalf("the host not changed by hand reports %v, %v", ai.SecretHashes, err)
			}
			o := observed()
			if o.Digest != digestOf(ref) {
				t.Fatalf("the group reports digest %q, want %s (only a secret differs)", o.Digest, digestOf(ref))
			}
			if maps.Equal(o.SecretHashes, wantHashes) {
				t.Fatalf("one host runs another secret, but the group reports the desired value's hashes %v", o.SecretHashes)
			}
			p := compute()
			if c := p.Counts(); c.Update != 1 || c.Create+c.Delete != 0 {
				var b bytes.Buffer
				p.Render(&b)
				t.Fatalf("one host's secret differs, but the plan does not update the app once:\n%s", b.String())
			}
			if r := strings.Join(p.Targets[0].Changes[0].Reasons, "; "); !strings.Contains(r, tc.reason) {
				t.Fatalf("the update's reasons %q do not name %s", r, tc.reason)
			}
			apply(p)
			for _, w := range worlds {
				w.wantAnswers("sec", want)
			}
			if p := compute(); p.HasChanges() {
				t.Fatalf("after applying the update, the plan still has changes: %+v", p.Targets[0].Changes)
			}
		})
	}
}
