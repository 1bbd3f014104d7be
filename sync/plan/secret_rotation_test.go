package plan_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/hosttest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestSecretRotation, on a real ferry-host with a guest that answers with
// the value of its secret variable: changing only the secret's value makes
// the plan update the app (the reason names the variable, never a value;
// neither the rendered nor the JSON plan holds one), apply changes it on the
// host without a new artifact and without touching the version kept for
// rollback, and the very next request sees the new value. Then the plan has
// no changes. A secret changed on the host behind the plan's back makes
// that plan stale.
func TestSecretRotation(t *testing.T) {
	ctx := context.Background()
	reg, err := embedded.NewServer(ctx, embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "control", "testdata", "varecho.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	pub, priv := hosttest.SecretKeys(t)
	push := func(version string) targets.DesiredApp {
		app := deploy.App{Name: "sec", Hosts: []string{"sec.localhost"},
			Variables: map[string]deploy.Variable{"api_key": {Secret: true}},
			Components: []deploy.Component{{
				Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
				Env:       map[string]string{"VERSION": version},
				Variables: map[string]string{"key": "{{ api_key }}"},
			}}}
		res, err := rc.PushApp(ctx, reg.Addr()+"/sec/sec", app, map[string][]byte{"web": wasm}, registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signer.Sign(ctx, res.Ref, priv, signer.SignOptions{}); err != nil {
			t.Fatal(err)
		}
		return targets.DesiredApp{Name: "sec", Ref: res.Ref, Digest: res.Digest.String(), App: app}
	}
	h := hosttest.Start(t, signer.Policy{Keys: []signer.Key{pub}}, hosttest.SecretToken)
	tgts := map[string]targets.Target{"h": h.Client}
	desired := func(a targets.DesiredApp, secret string) plan.Desired {
		a.Secrets = map[string]string{"api_key": secret}
		return plan.Desired{Commit: "c", Targets: []plan.DesiredTarget{{Name: "h", Type: "host", Apps: []targets.DesiredApp{a}}}}
	}
	get := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, h.Apps.URL+"/", nil)
		req.Host = "sec.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	planApply := func(d plan.Desired) *plan.Plan {
		t.Helper()
		p, err := plan.Compute(ctx, d, tgts, plan.PlanOptions{})
		if err != nil || p.Applyable() != nil {
			t.Fatalf("plan: %v %v", err, p.Applyable())
		}
		if p.HasChanges() {
			res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{SecretsFor: plan.SecretsFrom(d)})
			if err != nil || res.Count(plan.OutcomeFailed) > 0 {
				t.Fatalf("apply: %+v %v", res, err)
			}
		}
		return p
	}

	v1, v2 := push("1"), push("2")
	const old, rotated, third = "old-value-1111", "rotated-value-2222", "third-value-3333"
	planApply(desired(v1, old))
	planApply(desired(v2, old)) // v1 is now the version kept for rollback
	if got := get(); got != old {
		t.Fatalf("the guest answers %q, want %q", got, old)
	}
	before, err := h.Client.App(ctx, "sec")
	if err != nil {
		t.Fatal(err)
	}
	if before.Previous != v1.Digest || before.Digest != v2.Digest {
		t.Fatalf("before the rotation: runs %s, previous %s", before.Digest, before.Previous)
	}

	// Only the secret's value changes.
	d := desired(v2, rotated)
	p, err := plan.Compute(ctx, d, tgts, plan.PlanOptions{})
	if err != nil || p.Applyable() != nil {
		t.Fatalf("plan: %v %v", err, p.Applyable())
	}
	if c := p.Counts(); c.Update != 1 {
		var b bytes.Buffer
		p.Render(&b)
		t.Fatalf("a rotated secret is not planned as an update:\n%s", b.String())
	}
	ch := p.Targets[0].Changes[0]
	if !strings.Contains(strings.Join(ch.Reasons, "; "), "api_key") {
		t.Fatalf("reasons %q do not name the variable", ch.Reasons)
	}
	var text bytes.Buffer
	if err := p.Render(&text); err != nil {
		t.Fatal(err)
	}
	js, err := plan.MarshalPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), string(js)} {
		if strings.Contains(out, old) || strings.Contains(out, rotated) {
			t.Fatalf("the plan shows a secret value:\n%s", out)
		}
	}
	res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{SecretsFor: plan.SecretsFrom(d)})
	if err != nil || res.Count(plan.OutcomeApplied) != 1 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	if got := get(); got != rotated {
		t.Fatalf("after the rotation the guest answers %q, want %q", got, rotated)
	}
	after, err := h.Client.App(ctx, "sec")
	if err != nil {
		t.Fatal(err)
	}
	if after.Digest != v2.Digest || after.Previous != v1.Digest || !after.DeployedAt.Equal(before.DeployedAt) {
		t.Fatalf("after the rotation: runs %s (deployed %s), previous %s; want %s (deployed %s), previous %s",
			after.Digest, after.DeployedAt, after.Previous, v2.Digest, before.DeployedAt, v1.Digest)
	}
	if p := planApply(d); p.HasChanges() {
		t.Fatalf("after applying the rotation the plan still has changes: %+v", p.Targets[0].Changes)
	}

	// A plan for a third value, then someone rotates the secret on the host
	// by hand: the plan's world moved, so applying it is refused.
	d3 := desired(v2, third)
	p3, err := plan.Compute(ctx, d3, tgts, plan.PlanOptions{})
	if err != nil || p3.Counts().Update != 1 {
		t.Fatalf("plan 3: %v %+v", err, p3.Counts())
	}
	byHand, _ := driver.NewClient(h.Ctl.URL, hosttest.SecretToken, driver.ClientOptions{})
	if _, err := byHand.PutApp(ctx, "sec", api.PutRequest{Ref: v2.Ref, Secrets: map[string]string{"api_key": "by-hand"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(ctx, p3, tgts, plan.ApplyOptions{SecretsFor: plan.SecretsFrom(d3)}); !errors.Is(err, plan.ErrStalePlan) {
		t.Fatalf("applying a plan whose secret moved on the host: %v, want ErrStalePlan", err)
	}
	if got := get(); got != "by-hand" {
		t.Fatalf("the guest answers %q, want the value put by hand", got)
	}
}
