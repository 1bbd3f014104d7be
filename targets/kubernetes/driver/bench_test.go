package driver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/kubernetes/driver"
	"github.com/ferry-wasm/ferry/targets/kubernetes/render"
)

// benchApps is how many apps BenchmarkApplyVsKubectl deploys:
// FERRY_BENCH_KUBE_APPS, default 100. (On a shared 2-core machine the
// whole cluster, controllers raised to big-cluster client limits by
// kubetest, makes about 6.5 Deployments Ready per second, whoever applies
// them, so 1,000 apps take minutes for kubectl and ferry alike.)
func benchApps(b *testing.B) int {
	if s := os.Getenv("FERRY_BENCH_KUBE_APPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("FERRY_BENCH_KUBE_APPS=%q: want a positive number", s)
		}
		return n
	}
	return 100
}

// benchParallel is how many apps ferry applies at once in
// BenchmarkApplyVsKubectl (plan.ApplyOptions.AppParallelism):
// FERRY_BENCH_KUBE_PARALLEL, default 32.
func benchParallel(b *testing.B) int {
	if s := os.Getenv("FERRY_BENCH_KUBE_PARALLEL"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("FERRY_BENCH_KUBE_PARALLEL=%q: want a positive number", s)
		}
		return n
	}
	return 32
}

// BenchmarkApplyVsKubectl deploys N apps (a Deployment, Service, ConfigMap
// and two Secrets each) to Ready on one real cluster (apiserver,
// controller-manager, scheduler, kwok) twice, side by side in one run:
// ferry (plan.Compute + plan.Apply through the driver, which waits for
// every Deployment to be available) into namespace "ferry", and `kubectl
// apply --server-side` of the very same objects rendered to files, then
// `kubectl wait --for=condition=Available`, into namespace "kubectl". It
// then times a no-op plan over ferry's N apps and reports this process's
// peak RSS (the agent's share: the cluster runs in other processes).
func BenchmarkApplyVsKubectl(b *testing.B) {
	n, par := benchApps(b), benchParallel(b)
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		b.Fatal("kubectl is not installed")
	}
	c := kubetest.Start(b, kubetest.Options{Workloads: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	kube := func(args ...string) {
		b.Helper()
		out, err := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...).CombinedOutput()
		if err != nil {
			b.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	kube("create", "namespace", "ferry")
	kube("create", "namespace", "kubectl")

	_, pub, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		b.Fatal(err)
	}
	ropts := render.Options{
		Image: "ferry-host:bench", NodeSelector: map[string]string{"type": "kwok"},
		Tolerations: []render.Toleration{{Key: "kwok.x-k8s.io/node", Operator: "Exists", Effect: "NoSchedule"}},
		TrustKeys:   map[string][]byte{"cosign.pub": pub},
	}
	apps := make([]targets.DesiredApp, n)
	hi := "hi"
	for i := range apps {
		name := fmt.Sprintf("app-%04d", i)
		apps[i] = targets.DesiredApp{
			Name: name, Ref: "127.0.0.1:5000/" + name + "@" + digestA, Digest: digestA,
			App: deploy.App{Name: name, Components: []deploy.Component{{Name: "main"}},
				Variables: map[string]deploy.Variable{"greeting": {Default: &hi}}},
		}
	}

	// kubectl's copy: the same objects, rendered to files.
	dir := b.TempDir()
	ko := ropts
	ko.Namespace = "kubectl"
	for _, a := range apps {
		objs, err := render.App(a, ko)
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, a.Name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		list := map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{}}
		for _, o := range objs {
			list["items"] = append(list["items"].([]any), o.U.Object)
		}
		if err := json.NewEncoder(f).Encode(list); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}

	fo := ropts
	fo.Namespace = "ferry"
	d, err := driver.New(c.Config, driver.Options{Mode: driver.ModeHost, Render: fo})
	if err != nil {
		b.Fatal(err)
	}
	tgts := map[string]targets.Target{"cluster": d}
	desired := plan.Desired{Targets: []plan.DesiredTarget{{Name: "cluster", Type: "kubernetes", Apps: apps}}}
	popts := plan.PlanOptions{Source: "bench"}

	b.ResetTimer()
	var ferryS, kubectlS, noopS float64
	for range b.N {
		start := time.Now()
		p, err := plan.Compute(ctx, desired, tgts, popts)
		if err != nil {
			b.Fatal(err)
		}
		res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{Timeout: 20 * time.Minute, AppParallelism: par})
		if err != nil {
			b.Fatal(err)
		}
		var failed []string
		for _, a := range apps {
			if r := res.App("cluster", a.Name); r == nil || r.Outcome != plan.OutcomeApplied {
				failed = append(failed, fmt.Sprintf("%s: %+v", a.Name, r))
			}
		}
		if len(failed) > 0 {
			b.Fatalf("ferry apply: %d of %d apps not applied after %v; the first: %s", len(failed), n, time.Since(start).Round(time.Millisecond), strings.Join(failed[:min(5, len(failed))], "\n"))
		}
		ferryS += time.Since(start).Seconds()

		start = time.Now()
		kube("apply", "--server-side", "--field-manager", "kubectl-bench", "-f", dir)
		kube("wait", "-n", "kubectl", "--for=condition=Available", "deployment", "--all", "--timeout=20m")
		kubectlS += time.Since(start).Seconds()

		if f := os.Getenv("FERRY_BENCH_NOOP_CPUPROFILE"); f != "" {
			noopProfile(b, f, func() { plan.Compute(ctx, desired, tgts, popts) }) //nolint:errcheck // profiled only
		}
		start = time.Now()
		p, err = plan.Compute(ctx, desired, tgts, popts)
		if err != nil {
			b.Fatal(err)
		}
		if cnt := p.Counts(); cnt.Noop != n {
			b.Fatalf("no-op plan: %+v, want %d unchanged", cnt, n)
		}
		noopS += time.Since(start).Seconds()
		b.StopTimer()
		// The next iteration starts from an empty cluster.
		if b.N > 1 {
			kube("delete", "-n", "ferry", "deployments,services,configmaps,secrets", "-l", "app.kubernetes.io/managed-by=ferry", "--wait")
			kube("delete", "-n", "kubectl", "-f", dir, "--wait")
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "apps")
	b.ReportMetric(ferryS/float64(b.N), "ferry-s")
	b.ReportMetric(kubectlS/float64(b.N), "kubectl-s")
	b.ReportMetric(ferryS/kubectlS, "ferry/kubectl")
	b.ReportMetric(noopS/float64(b.N), "noop-plan-s")
	b.ReportMetric(noopS*1000/float64(b.N)/float64(n), "noop-plan-ms/app")
	if rss := vmHWM(); rss > 0 {
		b.ReportMetric(rss/(1<<20), "rss-MiB")
	}
}

// vmHWM is this process's peak RSS in bytes (VmHWM); 0 when unknown.
func vmHWM() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// noopProfile writes a CPU profile of 20 runs of plan to path
// (FERRY_BENCH_NOOP_CPUPROFILE: what `make bench` leaves out, for whoever
// shaves the no-op plan).
func noopProfile(b *testing.B, path string, plan func()) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	for range 20 {
		plan()
	}
	pprof.StopCPUProfile()
}
