package driver_test

import (
	"context"
	"fmt"
	"net"
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

// deadKubeconfig writes a kubeconfig for an apiserver at addr (with c's
// credentials, so only the address is wrong).
func deadKubeconfig(t *testing.T, c *kubetest.Cluster, addr string) string {
	t.Helper()
	b, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), strings.TrimPrefix(c.Server, "https://"), addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSeveralClusters plans and applies one spec with four kubernetes
// targets, as the agent does: two real clusters, one whose apiserver is
// down (nothing listens) and one that is slow (it accepts connections and
// never answers). The two real clusters are planned and applied; the down
// and slow ones are planned as errored, each saying why, within the
// observe timeout, so they block nobody.
func TestSeveralClusters(t *testing.T) {
	var a, b *kubetest.Cluster
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = kubetest.Start(t, kubetest.Options{}) }()
	go func() { defer wg.Done(); b = kubetest.Start(t, kubetest.Options{}) }()
	wg.Wait()
	if a == nil || b == nil {
		t.FailNow()
	}
	// Down: a port nobody listens on. Slow: a listener that never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := ln.Addr().String()
	ln.Close()
	slow, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := slow.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()

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
	src := `
app "web" {
  component "main" {
    wasm = "./web.wasm"
  }
}

trust {
  keys = ["./cosign.pub"]
}
` + target("east", a.Kubeconfig) + target("west", b.Kubeconfig) +
		target("down", deadKubeconfig(t, a, downAddr)) + target("slow", deadKubeconfig(t, a, slow.Addr().String()))
	os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(src), 0o644)
	cfg, diags := spec.Load(dir, spec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	tgts := map[string]targets.Target{}
	var dts []plan.DesiredTarget
	for _, st := range cfg.Targets {
		o, err := open.Target(st, open.Options{RolloutWait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		tgts[st.Name] = o.Target
		dts = append(dts, plan.DesiredTarget{Name: st.Name, Type: "kubernetes", Apps: []targets.DesiredApp{desired("web", digestA)}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	desiredState := plan.Desired{Targets: dts}
	const observeTimeout = 5 * time.Second
	start := time.Now()
	p, err := plan.Compute(ctx, desiredState, tgts, plan.PlanOptions{Source: "multi", ObserveTimeout: observeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// Four observes in parallel: the plan waits for the slowest once, not
	// for the down and slow clusters one after the other.
	if took > 2*observeTimeout {
		t.Errorf("planning four clusters took %v; the down and slow ones were waited for in turn (observe timeout %v)", took, observeTimeout)
	}
	sub := *p
	sub.Targets = nil
	for _, tp := range p.Targets {
		switch tp.Name {
		case "down", "slow":
			if !tp.Errored || !tp.Diagnostics.HasErrors() {
				t.Errorf("target %s planned without an error: %+v", tp.Name, tp)
				continue
			}
			msg := tp.Diagnostics.Err().Error()
			t.Logf("target %s: %s", tp.Name, msg)
			why := map[string]string{"down": "connection refused", "slow": "deadline"}[tp.Name]
			if !strings.Contains(msg, why) && !strings.Contains(msg, "timeout") {
				t.Errorf("target %s: the plan entry does not say why (%q): %s", tp.Name, why, msg)
			}
		default:
			if tp.Errored {
				t.Errorf("target %s errored: %v", tp.Name, tp.Diagnostics.Err())
			}
			if n := len(tp.Changes); n != 1 || tp.Changes[0].Action != plan.ActionCreate {
				t.Errorf("target %s: changes %+v, want one create", tp.Name, tp.Changes)
			}
			sub.Targets = append(sub.Targets, tp) // as the agent does: apply what planned
		}
	}
	res, err := plan.Apply(ctx, &sub, tgts, plan.ApplyOptions{Timeout: time.Minute, SecretsFor: plan.SecretsFrom(desiredState)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cl   *kubetest.Cluster
	}{{"east", a}, {"west", b}} {
		if r := res.App(c.name, "web"); r == nil || (r.Outcome != plan.OutcomeApplied && r.Outcome != plan.OutcomeProgressing) {
			t.Errorf("apply on %s: %+v", c.name, r)
		}
		cs, err := kubernetes.NewForConfig(c.cl.Config)
		if err != nil {
			t.Fatal(err)
		}
		dep, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Errorf("cluster %s has no Deployment web: %v", c.name, err)
			continue
		}
		if got := dep.Labels["app.kubernetes.io/managed-by"]; got != "ferry" {
			t.Errorf("cluster %s: managed-by %q", c.name, got)
		}
	}
}
