package controller

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet"
)

// BenchmarkFleetRollout is one 4-wave rollout (1, 10, 50, 100%, soak
// 100 ms, no rate limit) to a fleet of simulated devices speaking the real
// protocol over loopback (FERRY_FLEET_SIM_DEVICES, default 10,000; past
// 4,000 the devices run in child processes, so this process is the agent:
// the server and the controller). It reports seconds per rollout (from Put
// to every device reporting the new version healthy), the process's peak
// RSS (VmHWM) and, sampled every 100 ms from the start, its peak
// anonymous and file-backed RSS and its peak number of OS threads.
//
// What is measured is this process: the device server (with every long-poll
// and report of the 10,000 devices), the controller, and the benchmark's
// own small harness (the enrollment client and a status poll every
// 250 ms); the simulated devices are in the child
// processes and not counted.
func BenchmarkFleetRollout(b *testing.B) {
	n := 10000
	if s := os.Getenv("FERRY_FLEET_SIM_DEVICES"); s != "" {
		n = simSize(b)
	}
	policy := simPolicy(n)
	policy.Rollout.HealthGate.Soak = 100 * time.Millisecond
	peak := sampleProc(100 * time.Millisecond)
	// No recorder of the reports: the benchmark checks none, and this
	// process is meant to be the agent alone.
	e := newFleetEnvRec(b, policy, n, nil)
	// Read the rollout's status (a copy of 10,000 devices' progress) as
	// often as a person's live status view would, not 50 times a second:
	// the time per rollout is then known to within 250 ms.
	e.poll = 250 * time.Millisecond
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
	p := peak()
	b.ReportMetric(float64(p.anonKB)/1024, "rss-anon-MiB")
	b.ReportMetric(float64(p.fileKB)/1024, "rss-file-MiB")
	b.ReportMetric(float64(p.threads), "threads")
	b.Logf("at the largest sampled RSS, %d MiB:", p.rssKB>>10)
	for _, c := range p.classes {
		if c.Value.Kind() == metrics.KindUint64 {
			v := c.Value.Uint64()
			if strings.HasSuffix(c.Name, ":bytes") {
				b.Logf("  %-40s %8.1f MiB", c.Name, float64(v)/(1<<20))
			} else {
				b.Logf("  %-40s %8d", c.Name, v)
			}
		}
	}
	if f := os.Getenv("FERRY_BENCH_HEAP_PROFILE"); f != "" {
		// For profiling: the heap as the rollout completed, every
		// device's long-poll still parked.
		if out, err := os.Create(f); err == nil {
			pprof.Lookup("heap").WriteTo(out, 0)
			out.Close()
		}
	}
}

// procPeak is the largest of each /proc/self/status figure sampled, and
// the Go runtime's memory classes at the sample of the largest RSS.
type procPeak struct {
	anonKB, fileKB, threads int64
	rssKB, profiledKB       int64
	classes                 []metrics.Sample
}

// memClasses are the runtime/metrics the benchmark logs at peak RSS.
var memClasses = []string{
	"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes", "/memory/classes/heap/released:bytes",
	"/memory/classes/heap/stacks:bytes", "/memory/classes/os-stacks:bytes",
	"/memory/classes/metadata/other:bytes", "/gc/heap/goal:bytes", "/sched/goroutines:goroutines",
}

// sampleProc samples /proc/self/status every interval until the returned
// function is called, which returns the peaks.
func sampleProc(interval time.Duration) func() procPeak {
	var mu sync.Mutex
	var p procPeak
	sample := func() {
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		rss := int64(0)
		for _, l := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			switch k {
			case "RssAnon":
				p.anonKB = max(p.anonKB, n)
			case "RssFile":
				p.fileKB = max(p.fileKB, n)
			case "Threads":
				p.threads = max(p.threads, n)
			case "VmRSS":
				rss = n
			}
		}
		if rss > p.rssKB {
			p.rssKB = rss
			p.classes = make([]metrics.Sample, len(memClasses))
			for i, name := range memClasses {
				p.classes[i].Name = name
			}
			metrics.Read(p.classes)
			if f := os.Getenv("FERRY_BENCH_HEAP_PROFILE"); f != "" && rss > p.profiledKB+(32<<10) {
				// For profiling: the heap (as of the last collection)
				// when RSS was largest.
				p.profiledKB = rss
				if out, err := os.Create(f + ".peak"); err == nil {
					pprof.Lookup("heap").WriteTo(out, 0)
					out.Close()
				}
			}
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			sample()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() procPeak {
		close(stop)
		<-done
		sample()
		mu.Lock()
		defer mu.Unlock()
		return p
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
