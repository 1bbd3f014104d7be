package controller

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet"
)

// BenchmarkFleetRollout is one 4-wave rollout (1, 10, 50, 100%, soak
// 100 ms, no rate limit) to a fleet of simulated devices speaking the real
// protocol over loopback (FERRY_FLEET_SIM_DEVICES, default 10,000; past
// 4,000 the devices run in child processes, so this process is the agent:
// the server and the controller). It reports seconds per rollout (from Put
// to every device reporting the new version healthy) and the process's
// peak RSS.
func BenchmarkFleetRollout(b *testing.B) {
	n := 10000
	if s := os.Getenv("FERRY_FLEET_SIM_DEVICES"); s != "" {
		n = simSize(b)
	}
	policy := simPolicy(n)
	policy.Rollout.HealthGate.Soak = 100 * time.Millisecond
	e := newFleetEnv(b, policy, n)
	devs := enrollMany(b, e.client, e.url, e.secret, n, 0)
	ctx, cancel := context.WithCancel(context.Background())
	wait := runAll(b, ctx, devs, e.client, func() string { return e.url }, n)
	defer func() { cancel(); wait() }()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		d := want(fmt.Sprintf("sha256:%064x", i+1))
		e.put(d)
		e.waitFor("the rollout completes", 3*time.Minute, func(r Rollout) bool {
			return r.State.Outcome == fleet.OutcomeCompleted && r.State.Counts().Healthy == n
		})
	}
	b.StopTimer()
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/rollout")
	b.ReportMetric(float64(n), "devices")
	if rss := peakRSS(); rss > 0 {
		b.ReportMetric(rss/(1<<20), "rss-MiB")
	}
}

// peakRSS is VmHWM of /proc/self/status in bytes; 0 when unknown.
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}
