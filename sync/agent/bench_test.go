package agent

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// benchPushToApplied pushes 20 commits, one at a time, each changing app a,
// and measures from the end of `git push` until the in-memory target runs
// the new digest. It reports the median (p50) and the worst in ms.
func benchPushToApplied(b *testing.B, interval time.Duration, webhook bool) {
	h := newHarness(b, func(o *Options) { o.Interval = interval })
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	n := 0
	var lat []time.Duration
	for b.Loop() {
		for range 20 {
			n++
			v := fmt.Sprintf("bench-%d", n)
			h.work.Write("a.wasm", v)
			sha := h.work.Commit(v)
			h.work.Push()
			start := time.Now()
			if webhook {
				h.githubHook("gh-secret", "refs/heads/main", sha)
			}
			want := appDigest("a", v)
			for h.mem.Digests()["a"] != want {
				if time.Since(start) > time.Minute {
					b.Fatalf("push %d not applied within a minute", n)
				}
				time.Sleep(500 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "ms-max")
}

// BenchmarkAgentPushToAppliedWebhook: push → applied via a signed GitHub
// webhook (interval 1h, so only the webhook can wake the agent). Goal:
// p50 ≤ 1 s for a prebuilt component.
func BenchmarkAgentPushToAppliedWebhook(b *testing.B) {
	benchPushToApplied(b, time.Hour, true)
}

// BenchmarkAgentPushToAppliedPolling: push → applied by polling with a 1 s
// interval. Goal: p50 ≤ interval + 1 s.
func BenchmarkAgentPushToAppliedPolling(b *testing.B) {
	benchPushToApplied(b, time.Second, false)
}
