package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// TestAgentE2ELeaderElection: two `ferry agent --leader-elect` processes
// share a Lease on a real kube-apiserver. Only the holder runs rounds (the
// other's history stays empty); when the holder is SIGKILLed the other
// takes over within the lease duration, and the next commit is applied
// exactly once.
func TestAgentE2ELeaderElection(t *testing.T) {
	bin := agentE2EBuild(t, "ferry")
	c := kubetest.Start(t, kubetest.Options{})
	kc := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ferry-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	h := agentE2ENewHost(t, e.pubPath)
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha"}, agentE2EAppHCL("alpha")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.Commit("alpha v1")
	w.Push()

	const lease = 6 * time.Second
	deviceAPI := map[string]string{} // each agent's fleet device API
	start := func(id string) *agentE2EAgent {
		// The agent prints its device API's address after its API's,
		// which is the line StartProcess waits for: give it a port.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		deviceAPI[id] = "http://" + addr
		args := agentE2EAgentArgs(t, e, srv.URL(), t.TempDir(), "--interval", "1s",
			"--leader-elect", "--leader-elect-kubeconfig", c.Kubeconfig, "--leader-elect-identity", id,
			"--leader-elect-lease-duration", lease.String(), "--device-listen", addr)
		return agentE2EStartAgentProc(t, bin, args)
	}
	// enroll answers 503 with Retry-After on a follower; the leader's
	// device API judges the (bogus) token itself.
	enrollCode := func(id string) (int, string) {
		t.Helper()
		resp, err := http.Post(deviceAPI[id]+"/v1/enroll", "application/json", strings.NewReader(`{"token":"not-a-token"}`))
		if err != nil {
			t.Fatalf("device API of %s: %v", id, err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	agents := map[string]*agentE2EAgent{"agent-a": start("agent-a"), "agent-b": start("agent-b")}
	t.Cleanup(func() {
		if t.Failed() {
			for id, a := range agents {
				t.Logf("%s log (tail):\n%s", id, agentE2ETail(a.stderr.String(), 40))
			}
		}
	})
	// Generous deadlines: each includes an agent's start, a build, a push
	// and a sign on a machine that may be busy.
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", 3*time.Minute)

	// lease is who holds the Lease and how often it changed hands.
	type leaseState struct {
		holder      string
		transitions int32
	}
	leaseNow := func() leaseState {
		l, err := kc.CoordinationV1().Leases("ferry-system").Get(ctx, "ferry-agent", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return leaseState{}
		}
		var n int32
		if l.Spec.LeaseTransitions != nil {
			n = *l.Spec.LeaseTransitions
		}
		return leaseState{*l.Spec.HolderIdentity, n}
	}
	holder := func() string { return leaseNow().holder }
	other := map[string]string{"agent-a": "agent-b", "agent-b": "agent-a"}
	// A few more rounds pass (interval 1s) while one agent holds the
	// Lease throughout: the other runs none. On a loaded machine a leader
	// may miss its renewal and hand over (which leader election allows);
	// then the window proves nothing and is watched again.
	var first string
	var lead, follow *agentE2EAgent
	for attempt := 1; ; attempt++ {
		before := leaseNow()
		first = before.holder
		lead, follow = agents[first], agents[other[first]]
		if lead == nil {
			t.Fatalf("lease holder %q is neither agent", first)
		}
		rounds := len(agentE2EHistory(t, follow))
		time.Sleep(3 * time.Second)
		after := leaseNow()
		if after != before {
			if attempt == 5 {
				t.Fatalf("the Lease changed hands in each of 5 windows of 3 s (last %+v -> %+v); the machine is too loaded to tell", before, after)
			}
			t.Logf("the Lease moved during the window (%+v -> %+v); watching again", before, after)
			continue
		}
		if n := len(agentE2EHistory(t, follow)); n != rounds {
			t.Fatalf("the follower ran %d rounds while %s held the Lease", n-rounds, first)
		}
		break
	}
	if rs := agentE2EHistory(t, lead); len(rs) == 0 {
		t.Fatalf("the leader %s ran no round", first)
	}
	if n := h.putCounts()["alpha"]; n != 1 {
		t.Fatalf("alpha v1 was put %d times, want once", n)
	}
	followID := map[string]string{"agent-a": "agent-b", "agent-b": "agent-a"}[first]
	if code, ra := enrollCode(followID); code != http.StatusServiceUnavailable || ra != "5" {
		t.Fatalf("the follower's device API answered %d (Retry-After %q), want 503 with Retry-After 5", code, ra)
	}
	if code, _ := enrollCode(first); code == http.StatusServiceUnavailable {
		t.Fatalf("the leader's device API answered 503")
	}

	killed := time.Now()
	lead.kill(t)
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v2"))
	c2 := w.Commit("alpha v2")
	w.Push()
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v2", 3*time.Minute)
	if got := holder(); got == first || got == "" {
		t.Fatalf("lease holder after the kill: %q", got)
	}
	t.Logf("leader %s SIGKILLed; the other served v2 %s later (lease %s; includes its build, push and sign)", first, time.Since(killed).Round(time.Millisecond), lease)
	r := agentE2EWaitRound(t, follow, "that deployed "+c2, 3*time.Minute, func(r history.Round) bool {
		return r.Commit == c2 && r.Result != history.RoundRunning
	})
	if r.Result != history.RoundSucceeded || !agentE2EApplied(r, "alpha", "update") {
		t.Fatalf("new leader's round: %s %+v", r.Result, r.Apps)
	}
	if code, _ := enrollCode(followID); code == http.StatusServiceUnavailable {
		t.Fatalf("the new leader's device API still answers 503")
	}
	time.Sleep(3 * time.Second) // more rounds: none may put again
	if n := h.putCounts()["alpha"]; n != 1 {
		t.Fatalf("alpha v2 was put %d times, want once", n)
	}
}
