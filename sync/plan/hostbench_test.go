package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/hosttest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
)

// The benchmarks in this file measure issue 5's goals against a real host:
// a wazero runtime with its control API on a 127.0.0.1 listener, apps
// pulled from an in-process registry, every signature verified by the host.
//
//	go test ./sync/plan -run '^$' -bench RealHost -benchtime 1x

const benchToken = "bench-token-0123456789abcdef"

// startBenchHost is a real host verifying against policy (see realHost).
func startBenchHost(b *testing.B, policy signer.Policy) *hosttest.Host {
	b.Helper()
	return hosttest.Start(b, policy, benchToken)
}

// benchPublish starts a registry, pushes n one-component apps (the
// hello-wat module; names PREFIX-NNNN) and signs each with a new key. It
// returns the apps as desired and the policy trusting the key.
func benchPublish(b *testing.B, prefix string, n int) ([]targets.DesiredApp, signer.Policy) {
	b.Helper()
	ctx := context.Background()
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(b), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	privPEM, pubPEM, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		b.Fatal(err)
	}
	priv, err := signer.LoadPrivateKey(privPEM, []byte("pw"))
	if err != nil {
		b.Fatal(err)
	}
	pub, err := signer.LoadPublicKey(pubPEM)
	if err != nil {
		b.Fatal(err)
	}
	reg, err := embedded.NewServer(ctx, embedded.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reg.Close() })
	rc, err := registry.New(registry.Options{CacheDir: b.TempDir(), NoDockerConfig: true})
	if err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	apps := make([]targets.DesiredApp, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg stdsync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range next {
				name := fmt.Sprintf("%s-%04d", prefix, i)
				app := deploy.App{
					Name:  name,
					Hosts: []string{name + ".localhost"},
					Components: []deploy.Component{{
						Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
						Limits: deploy.Limits{MemoryBytes: 1 << 20, Timeout: deploy.Duration(2 * time.Second)},
						Health: &deploy.Health{Path: "/healthz"},
					}},
				}
				res, err := rc.PushApp(ctx, reg.Addr()+"/bench/"+name, app, map[string][]byte{"web": wasm}, registry.PushOptions{})
				if err == nil {
					_, err = signer.Sign(ctx, res.Ref, priv, signer.SignOptions{})
				}
				if err != nil {
					errs[i] = fmt.Errorf("publishing %s: %w", name, err)
					continue
				}
				apps[i] = targets.DesiredApp{Name: name, Ref: res.Ref, Digest: string(res.Digest), App: res.App}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	b.Logf("pushed and signed %d apps in %v", n, time.Since(start).Round(time.Millisecond))
	return apps, signer.Policy{Keys: []signer.Key{{Name: "bench", Public: pub}}}
}

func oneTarget(apps []targets.DesiredApp) plan.Desired {
	return plan.Desired{Targets: []plan.DesiredTarget{{Name: "local", Type: "host", Apps: apps}}}
}

// BenchmarkPlanNoopRealHost1000 computes the no-op plan of 1,000 apps that
// run on one real host: observing them over the control API on loopback,
// fingerprinting and comparing. The 1,000 apps are published and deployed
// (through plan.Apply) before the timer starts. Goal: ≤ 1 s per plan
// (metric s/plan).
func BenchmarkPlanNoopRealHost1000(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	apps, policy := benchPublish(b, "noop", n)
	h := startBenchHost(b, policy)
	tgts := map[string]targets.Target{"local": h.Client}
	desired := oneTarget(apps)

	start := time.Now()
	p, err := plan.Compute(ctx, desired, tgts, plan.PlanOptions{})
	if err != nil {
		b.Fatal(err)
	}
	res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{AppParallelism: 8})
	if err != nil {
		b.Fatal(err)
	}
	if got := res.Count(plan.OutcomeApplied); got != n {
		b.Fatalf("deployed %d apps, want %d", got, n)
	}
	b.Logf("deployed %d apps in %v", n, time.Since(start).Round(time.Millisecond))

	var took time.Duration
	for b.Loop() {
		t0 := time.Now()
		p, err := plan.Compute(ctx, desired, tgts, plan.PlanOptions{})
		took += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if p.Applyable() != nil || p.HasChanges() || p.Counts().Noop != n {
			b.Fatalf("not a clean no-op plan of %d apps: %+v, %v", n, p.Counts(), p.Applyable())
		}
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/plan")
}

// BenchmarkApply100RealHost plans and applies 100 new small apps to an
// empty real host over loopback with sync's default parallelism: per app
// the host verifies the signature, pulls the artifact, compiles, probes
// health and records it. A fresh host per iteration (started outside the
// timer). Goal: ≤ 10 s per apply (metric s/apply).
func BenchmarkApply100RealHost(b *testing.B) {
	const n = 100
	ctx := context.Background()
	apps, policy := benchPublish(b, "apply", n)
	desired := oneTarget(apps)

	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		h := startBenchHost(b, policy)
		tgts := map[string]targets.Target{"local": h.Client}
		b.StartTimer()

		t0 := time.Now()
		p, err := plan.Compute(ctx, desired, tgts, plan.PlanOptions{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{})
		took += time.Since(t0)

		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if p.Counts().Create != n || res.Count(plan.OutcomeApplied) != n {
			b.Fatalf("planned %+v, applied %d; want %d creates applied", p.Counts(), res.Count(plan.OutcomeApplied), n)
		}
		h.Close()
		b.StartTimer()
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/apply")
	b.ReportMetric(float64(n*b.N)/took.Seconds(), "apps/s")
}
