package host

import (
	"context"
	"runtime"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/ferry-wasm/ferry/deploy"
)

func TestGCDue(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name             string
		live, goal, objs uint64
		want             bool
	}{
		{"just collected", 40 * mb, 80 * mb, 40 * mb, false},
		{"half way", 40 * mb, 80 * mb, 60 * mb, false},
		{"six tenths", 40 * mb, 80 * mb, 64 * mb, true},
		{"past the goal", 40 * mb, 80 * mb, 90 * mb, true},
		{"below live", 40 * mb, 80 * mb, 30 * mb, false},
		{"no goal (GOGC=off)", 40 * mb, ^uint64(0), 90 * mb, false},
		{"goal below live", 80 * mb, 40 * mb, 90 * mb, false},
		{"metrics unavailable", 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gcDue(tt.live, tt.goal, tt.objs); got != tt.want {
				t.Errorf("gcDue(%d, %d, %d) = %v, want %v", tt.live, tt.goal, tt.objs, got, tt.want)
			}
		})
	}
}

// TestHeapStateReads checks that the runtime/metrics names gcDue relies on
// exist in this Go version (a missing one would silently turn it off).
func TestHeapStateReads(t *testing.T) {
	runtime.GC() // the live heap is 0 until a first cycle ends
	live, goal, objs := heapState()
	if live == 0 || goal <= live || objs == 0 {
		t.Errorf("heapState() = %d, %d, %d; want live > 0, goal > live, objects > 0", live, goal, objs)
	}
}

// TestDeployCollectsWhenDue deploys with the heap reported close to its
// next collection, far from it, and with NoDeployGC, and counts the
// collections Deploy runs.
func TestDeployCollectsWhenDue(t *testing.T) {
	heap := [3]uint64{40 << 20, 80 << 20, 70 << 20} // live, goal, objects: due
	gcs := 0
	readHeap = func() (uint64, uint64, uint64) { return heap[0], heap[1], heap[2] }
	runGC = func() { gcs++ }
	t.Cleanup(func() { readHeap, runGC = heapState, runtime.GC })

	h := fixture(t, "hello")
	tests := []struct {
		name    string
		opts    Options
		objs    uint64
		busy    bool // another deploy is collecting
		wantGCs int
	}{
		{"due", Options{}, 70 << 20, false, 1},
		{"not due", Options{}, 50 << 20, false, 0},
		{"due, turned off", Options{NoDeployGC: true}, 70 << 20, false, 0},
		{"due, another deploy collecting", Options{}, 70 << 20, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			heap[2], gcs = tt.objs, 0
			if tt.busy {
				collecting.Store(true)
				defer collecting.Store(false)
			}
			e.deploy(t, app("gc", deploy.ExecutorWAGI, h, "/"), h)
			if gcs != tt.wantGCs {
				t.Errorf("Deploy ran %d collections, want %d", gcs, tt.wantGCs)
			}
			var m dto.Metric
			if err := e.rt.metrics.deployGCs.Write(&m); err != nil {
				t.Fatal(err)
			}
			if got := m.GetCounter().GetValue(); got != float64(tt.wantGCs) {
				t.Errorf("ferry_host_deploy_gcs_total = %v, want %d", got, tt.wantGCs)
			}
			if code, body := e.get(t, "/"); code != 200 || body != "hello\n" {
				t.Errorf("GET / = %d %q", code, body)
			}
		})
	}
}

// TestGCBallast: New makes the process-wide ballast at least the size asked
// for (the default when zero), never shrinks it, and a negative size asks
// for none.
func TestGCBallast(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int64
		want func(before int64) int64
	}{
		{"default", 0, func(b int64) int64 { return max(b, DefaultGCBallast) }},
		{"larger", DefaultGCBallast + 1<<20, func(b int64) int64 { return max(b, DefaultGCBallast+1<<20) }},
		{"smaller keeps the larger", 1 << 20, func(b int64) int64 { return b }},
		{"none", -1, func(b int64) int64 { return b }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := ballastSize()
			rt, err := New(Options{GCBallast: tt.size})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close(context.Background())
			if got, want := ballastSize(), tt.want(before); got != want {
				t.Errorf("ballast %d bytes, want %d", got, want)
			}
		})
	}
}
