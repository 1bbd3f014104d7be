// Command benchgoals compares the figures of a `go test -bench` run with
// the goals in a goals file and writes a table: benchmark, metric, goal,
// measured, met or NOT MET (or "not run"), and whether the benchmark runs
// on real parts or on an in-memory fake. `make bench` (scripts/bench.sh)
// runs it on bench/report.txt with bench/goals.txt and appends the table
// to the report; it exits 1 when a goal is not met or was not measured.
//
// Usage:
//
//	go run ./internal/benchgoals -goals bench/goals.txt BENCH-OUTPUT...
//
// A goals line is: a regexp matched against the whole benchmark name
// (without the -GOMAXPROCS suffix), the metric's unit as the benchmark
// reports it ("ns/op", "ratio", "ms-p50"), a comparison (<=, <, >=, >, ==),
// the goal, "real" or "fake", and optionally the README row it stands for
// after "#". Blank lines and lines starting with "#" are ignored.
package main
