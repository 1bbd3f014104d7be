package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const benchOut = `goos: linux
BenchmarkCachedBuild/go/same-builder-2         	     500	   2400000 ns/op	  1000 B/op	  10 allocs/op
BenchmarkWAGI/clients=1-2                      	    5000	     30000 ns/op	  0.70 ratio	  8.000 added-p50-µs
BenchmarkWAGI/clients=2-2                      	    5000	     30000 ns/op	  0.55 ratio	  9.000 added-p50-µs
    bench_test.go:12: BenchmarkWAGI 1 is a log line
PASS
`

const goals = `# comment
BenchmarkCachedBuild/.*     ns/op         <=  50e6  real   # cached build
BenchmarkWAGI/clients=\d    ratio         >=  0.6   real   # WAGI vs native
BenchmarkWAGI/clients=1     added-p50-µs  <=  50    real
BenchmarkDensity            rss-MiB       <=  1024  real
BenchmarkPlanNoop1000       ns/op         <=  1e9   fake
`

func TestReport(t *testing.T) {
	dir := t.TempDir()
	gp, bp := filepath.Join(dir, "goals.txt"), filepath.Join(dir, "bench.txt")
	os.WriteFile(gp, []byte(goals), 0o644)
	os.WriteFile(bp, []byte(benchOut), 0o644)
	var out bytes.Buffer
	err := run(gp, []string{bp}, &out)
	if err == nil || err.Error() != "1 not met, 2 not run" {
		t.Errorf("run: %v, want 1 not met, 2 not run", err)
	}
	got := out.String()
	for _, want := range []string{
		"BenchmarkCachedBuild/go/same-builder  ns/op", // suffix -2 stripped
		"<= 5e+07",
		"2.4e+06   met",
		"BenchmarkWAGI/clients=1               ratio         >= 0.6    0.7       met",
		"BenchmarkWAGI/clients=2               ratio         >= 0.6    0.55      NOT MET",
		"BenchmarkDensity                      rss-MiB       <= 1024   -         not run",
		"fake (in-memory)",
		"6 goal rows: 1 not met, 2 not run",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "log line") {
		t.Errorf("a log line was read as a result:\n%s", got)
	}
}

func TestParseGoalsRefusesBadLines(t *testing.T) {
	for _, line := range []string{"BenchmarkX ns/op <= 1", "BenchmarkX ns/op ~ 1 real", "BenchmarkX ns/op <= x real", "BenchmarkX ns/op <= 1 mock", "Bench(X ns/op <= 1 real"} {
		if _, err := ParseGoals(strings.NewReader(line)); err == nil {
			t.Errorf("%q: accepted", line)
		}
	}
}
