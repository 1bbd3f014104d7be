package plan

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
)

func benchApps(n int) []targets.DesiredApp {
	apps := make([]targets.DesiredApp, n)
	for i := range apps {
		a := plantest.App(fmt.Sprintf("app-%04d", i), fmt.Sprintf("v1-%d", i))
		a.App = deploy.App{Name: a.Name, Hosts: []string{a.Name + ".test"},
			Components: []deploy.Component{{Name: "web", Digest: plantest.Dg(fmt.Sprintf("w-%d", i)), Routes: []string{"/..."}}}}
		apps[i] = a
	}
	return apps
}

// BenchmarkPlanNoop1000 computes a no-op plan over 1,000 apps on one
// in-memory target: the engine's own cost (observe copy, fingerprint,
// compare, sort). Goal for the whole no-op plan on a real host: ≤ 1 s.
func BenchmarkPlanNoop1000(b *testing.B) {
	m := plantest.NewMem()
	apps := benchApps(1000)
	for _, a := range apps {
		if _, err := m.Put(context.Background(), a); err != nil {
			b.Fatal(err)
		}
	}
	d := desiredOne("local", apps...)
	tg := plantest.Tmap("local", m)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := Compute(context.Background(), d, tg, PlanOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if p.HasChanges() || p.Applyable() != nil {
			b.Fatal("not a clean no-op plan")
		}
	}
}

// BenchmarkApply100 plans and applies 100 new apps to an empty in-memory
// target (Puts are instant: this is the engine's overhead, with the
// default parallelism). Goal on a loopback host: ≤ 10 s.
func BenchmarkApply100(b *testing.B) {
	apps := benchApps(100)
	d := desiredOne("local", apps...)
	b.ReportAllocs()
	for b.Loop() {
		tg := plantest.Tmap("local", plantest.NewMem())
		p, err := Compute(context.Background(), d, tg, PlanOptions{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := Apply(context.Background(), p, tg, ApplyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if res.Count(OutcomeApplied) != 100 {
			b.Fatal("not all applied")
		}
	}
}
