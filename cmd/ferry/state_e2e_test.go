package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/targets/kubernetes/install"
	"github.com/ferry-wasm/ferry/targets/kubernetes/statestore"
)

// TestAgentE2EStateInCluster: two `ferry agent --leader-elect
// --state-configmap` processes, each with its own empty data directory,
// run with exactly the install manifest's RBAC (a token of its
// ServiceAccount) on a real kube-apiserver. The leader A deploys two
// versions of alpha, suspends beta and rolls alpha back to v1; a standby
// refuses to change the state. A is SIGKILLed: B, which never led and
// has nothing on disk, becomes leader and reports A's pin, suspension and
// rounds, numbers its rounds after A's, keeps alpha at v1 (it deploys
// nothing) and beta unchanged when a commit changes beta, and rolls alpha
// to v2 and back to v1 — versions whose artifacts only the ConfigMap told
// it about.
func TestAgentE2EStateInCluster(t *testing.T) {
	bin := agentE2EBuild(t, "ferry")
	c := kubetest.Start(t, kubetest.Options{})
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(c.Config)

	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	h := agentE2ENewHost(t, e.pubPath)
	srv := gittest.NewServer(t, gittest.Options{})

	objs, err := install.Objects(install.Options{Image: "registry.example/ferry@sha256:" + strings.Repeat("a", 64), Repo: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := install.Apply(ctx, c.Config, objs, false); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts(install.DefaultNS).CreateToken(ctx, install.Name,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	saKubeconfig := c.KubeconfigFor(t, install.Name, tr.Status.Token)

	w := srv.Clone(t)
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha", "beta"}, agentE2EAppHCL("alpha"), agentE2EAppHCL("beta")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.WriteBytes("beta.wasm", agentE2EWasm(t, "beta v1"))
	w.Commit("v1")
	w.Push()

	const lease = 6 * time.Second
	agents := map[string]*agentE2EAgent{}
	start := func(id string) *agentE2EAgent {
		args := agentE2EAgentArgs(t, e, srv.URL(), t.TempDir(), "--interval", "1s",
			"--leader-elect", "--leader-elect-kubeconfig", saKubeconfig, "--leader-elect-namespace", install.DefaultNS,
			"--leader-elect-lease", install.Name, "--leader-elect-identity", id,
			"--leader-elect-lease-duration", lease.String(), "--state-configmap", install.StateConfigMap)
		a := agentE2EStartAgentProc(t, bin, args)
		agents[id] = a
		return a
	}
	t.Cleanup(func() {
		if t.Failed() {
			for id, a := range agents {
				t.Logf("%s log (tail):\n%s", id, agentE2ETail(a.stderr.String(), 40))
			}
		}
	})
	holder := func() string {
		l, err := admin.CoordinationV1().Leases(install.DefaultNS).Get(ctx, install.Name, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}

	a := start("agent-a")
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)
	agentE2EWaitServing(t, h.AppsURL, "beta", "beta v1", time.Minute)
	if got := holder(); got != "agent-a" {
		t.Fatalf("lease holder %q, want agent-a", got)
	}
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v2"))
	cV2 := w.Commit("alpha v2")
	w.Push()
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v2", time.Minute)
	v2 := agentE2EWaitRound(t, a, "that deployed "+cV2, time.Minute, func(r history.Round) bool {
		return r.Commit == cV2 && agentE2EApplied(r, "alpha", "update")
	})
	digestV2 := agentE2ERecords(v2, "alpha")[0].Digest
	digestV1 := agentE2ERecords(v2, "alpha")[0].Previous

	b := start("agent-b")
	// A standby neither changes the state nor runs rounds.
	if code, out, errs := ferry(t, "suspend", "beta", "--agent", b.URL); code == exitOK || !strings.Contains(out+errs, "not the leader") {
		t.Fatalf("suspend on the standby: exit %d, %s%s; want a refusal naming the leader", code, out, errs)
	}
	agentE2ECLI(t, a, "suspend", "beta")
	agentE2ECLI(t, a, "rollback", "alpha")
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)
	agentE2EWaitRound(t, a, "that deployed the pinned v1", time.Minute, func(r history.Round) bool {
		recs := agentE2ERecords(r, "alpha")
		return len(recs) == 1 && recs[0].Pinned && recs[0].Digest == digestV1 && recs[0].Result == "applied"
	})
	lastA := agentE2EIdle(t, a)
	stA := agentE2EStatus(t, a)
	if len(stA.Pins) != 1 || stA.Pins[0].Digest != digestV1 || len(stA.Suspended) != 1 || stA.Suspended[0].App != "beta" {
		t.Fatalf("leader's status: pins %+v suspended %+v", stA.Pins, stA.Suspended)
	}
	roundsA := agentE2EHistory(t, a)
	if rs := agentE2EHistory(t, b); len(rs) != 0 {
		t.Fatalf("the standby ran %d rounds", len(rs))
	}
	// The state is in the cluster, in the installed ConfigMap.
	cm, err := admin.CoreV1().ConfigMaps(install.DefaultNS).Get(ctx, install.StateConfigMap, metav1.GetOptions{})
	if err != nil || len(cm.BinaryData[statestore.Key]) == 0 {
		t.Fatalf("state ConfigMap: %v %v", err, cm)
	}
	t.Logf("state ConfigMap after %d rounds: %d bytes", lastA, len(cm.BinaryData[statestore.Key]))

	killed := time.Now()
	a.kill(t)
	h.putCounts()
	first := agentE2EWaitRound(t, b, "after taking over", time.Minute, func(r history.Round) bool {
		return r.ID > lastA && r.Result != history.RoundRunning
	})
	t.Logf("agent-a SIGKILLed; agent-b finished round %d %s later (lease %s)", first.ID, time.Since(killed).Round(time.Millisecond), lease)
	if got := holder(); got != "agent-b" {
		t.Fatalf("lease holder after the kill: %q", got)
	}
	stB := agentE2EStatus(t, b)
	if len(stB.Pins) != 1 || stB.Pins[0] != stA.Pins[0] {
		t.Errorf("new leader's pins %+v, want %+v", stB.Pins, stA.Pins)
	}
	if len(stB.Suspended) != 1 || stB.Suspended[0] != stA.Suspended[0] {
		t.Errorf("new leader's suspended %+v, want %+v", stB.Suspended, stA.Suspended)
	}
	roundsB := agentE2EHistory(t, b)
	for _, ra := range roundsA[:min(len(roundsA), 20)] {
		i := slices.IndexFunc(roundsB, func(rb history.Round) bool { return rb.ID == ra.ID })
		if i < 0 {
			t.Errorf("round %d of agent-a is not in agent-b's history", ra.ID)
			continue
		}
		if rb := roundsB[i]; rb.Commit != ra.Commit || rb.Result != ra.Result || len(rb.Apps) != len(ra.Apps) {
			t.Errorf("round %d: agent-b has %s %s %d apps, agent-a had %s %s %d", ra.ID, rb.Commit, rb.Result, len(rb.Apps), ra.Commit, ra.Result, len(ra.Apps))
		}
	}
	if recs, err := b.Client.History(ctx, "alpha", 100); err != nil || !slices.ContainsFunc(recs, func(r history.AppRecord) bool {
		return r.Digest == digestV2 && r.Action == "update" && r.Result == "applied"
	}) {
		t.Errorf("agent-b's history of alpha lacks agent-a's update to v2: %v %+v", err, recs)
	}
	// The pin holds: the new leader deployed nothing.
	agentE2EWantServing(t, h.AppsURL, "alpha", "alpha v1")
	if n := h.putCounts(); len(n) != 0 {
		t.Fatalf("the new leader deployed %v; the pin and the suspension should hold", n)
	}

	// beta is still suspended: a commit that changes it deploys nothing.
	w.WriteBytes("beta.wasm", agentE2EWasm(t, "beta v2"))
	cBeta := w.Commit("beta v2")
	w.Push()
	agentE2EWaitRound(t, b, "of commit "+cBeta, time.Minute, func(r history.Round) bool {
		return r.Commit == cBeta && r.Result != history.RoundRunning
	})
	agentE2EWantServing(t, h.AppsURL, "beta", "beta v1")
	agentE2EWantServing(t, h.AppsURL, "alpha", "alpha v1")

	// Rollbacks to versions agent-b never released: v2, then v1 again.
	agentE2ECLI(t, b, "rollback", "alpha", "--to", digestV2)
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v2", time.Minute)
	agentE2ECLI(t, b, "rollback", "alpha", "--to", strings.TrimPrefix(digestV1, "sha256:")[:12])
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)
	if n := h.putCounts()["beta"]; n != 0 {
		t.Errorf("beta was put %d times while suspended", n)
	}
}
