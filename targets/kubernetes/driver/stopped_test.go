package driver_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/open"
)

// TestClusterStoppedMidApply: one spec, two clusters, applied at once.
// "east" runs workloads (controller-manager, scheduler, kwok), so its
// Deployment really becomes Ready; "west" has only an apiserver, so its
// rollout never finishes and the apply is still waiting on it when the
// test SIGKILLs west's kube-apiserver. East converges (Ready), west's
// entry fails saying why, the apply returns well within the app timeout,
// and the next plan reports west errored with the reason while east is a
// no-op.
func TestClusterStoppedMidApply(t *testing.T) {
	var east, west *kubetest.Cluster
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); east = kubetest.Start(t, kubetest.Options{Workloads: true}) }()
	go func() { defer wg.Done(); west = kubetest.Start(t, kubetest.Options{}) }()
	wg.Wait()
	if east == nil || west == nil {
		t.FailNow()
	}
	dir := t.TempDir()
	_, pub, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pub, 0o644)
	os.WriteFile(filepath.Join(dir, "web.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	target := func(name, kubeconfig string) string {
		return fmt.Sprintf(`
target %q {
  type       = "kubernetes"
  apps       = ["web"]
  kubeconfig = %q
  namespace  = "default"
  image      = "ferry-host:test"
}
`, name, kubeconfig)
	}
	os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(`
app "web" {
  component "main" {
    wasm = "./web.wasm"
  }
}

trust {
  keys = ["./cosign.pub"]
}
`+target("east", east.Kubeconfig)+target("west", west.Kubeconfig)), 0o644)
	cfg, diags := spec.Load(dir, spec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	tgts := map[string]targets.Target{}
	var dts []plan.DesiredTarget
	for _, st := range cfg.Targets {
		// RolloutWait zero: Put waits for the rollout until the app's
		// timeout, as `ferry apply` does.
		o, err := open.Target(st, open.Options{})
		if err != nil {
			t.Fatal(err)
		}
		tgts[st.Name] = o.Target
		dts = append(dts, plan.DesiredTarget{Name: st.Name, Type: "kubernetes", Apps: []targets.DesiredApp{desired("web", digestA)}})
	}
	desiredState := plan.Desired{Targets: dts}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := plan.Compute(ctx, desiredState, tgts, plan.PlanOptions{Source: "stopped"})
	if err != nil || p.Errored() {
		t.Fatalf("plan: %v %v", err, p.Diagnostics.Err())
	}

	// Stop west's apiserver once its Deployment is applied and the apply
	// waits on its rollout.
	westCS := kubernetes.NewForConfigOrDie(west.Config)
	stopped := make(chan time.Time, 1)
	go func() {
		for ctx.Err() == nil {
			if _, err := westCS.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{}); err == nil {
				time.Sleep(500 * time.Millisecond) // well into the wait
				west.StopAPIServer()
				stopped <- time.Now()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	const appTimeout = 45 * time.Second
	start := time.Now()
	res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{Timeout: appTimeout, SecretsFor: plan.SecretsFrom(desiredState)})
	took := time.Since(start)
	if res == nil {
		t.Fatalf("apply refused: %v", err)
	}
	var at time.Time
	select {
	case at = <-stopped:
	default:
		t.Fatal("the apply ended before west's apiserver was stopped")
	}
	t.Logf("apply took %v; west's apiserver stopped %v after it started; apply error: %v", took, at.Sub(start).Round(time.Millisecond), err)
	if took > appTimeout {
		t.Errorf("the apply took %v, past the app timeout %v", took, appTimeout)
	}
	if r := res.App("east", "web"); r == nil || r.Outcome != plan.OutcomeApplied {
		t.Errorf("east: %+v, want applied (Ready)", r)
	}
	eastCS := kubernetes.NewForConfigOrDie(east.Config)
	dep, err := eastCS.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || dep.Status.ReadyReplicas < 1 {
		t.Errorf("east's Deployment: %v, ready %d", err, dep.Status.ReadyReplicas)
	}
	r := res.App("west", "web")
	if r == nil || r.Outcome != plan.OutcomeFailed || !strings.Contains(r.Error, "connection refused") {
		t.Fatalf("west: %+v, want failed saying connection refused", r)
	}
	t.Logf("west: %s", r.Error)

	// The next plan: west errored with the reason, east a no-op.
	p2, err := plan.Compute(ctx, desiredState, tgts, plan.PlanOptions{Source: "stopped", ObserveTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range p2.Targets {
		switch tp.Name {
		case "west":
			if !tp.Errored || !strings.Contains(tp.Diagnostics.Err().Error(), "connection refused") {
				t.Errorf("next plan for west: errored %v: %v", tp.Errored, tp.Diagnostics.Err())
			}
		case "east":
			if tp.Errored || len(tp.Changes) != 1 || tp.Changes[0].Action != plan.ActionNoop {
				t.Errorf("next plan for east: %+v", tp)
			}
		}
	}
}
