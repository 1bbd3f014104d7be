package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Goal is one line of a goals file.
type Goal struct {
	Line   int
	Name   *regexp.Regexp // matches the whole benchmark name
	Raw    string         // Name as written in the file
	Metric string
	Cmp    string
	Value  float64
	Parts  string // "real" or "fake"
	What   string // the README row, for the reader
}

// Result is one metric of one benchmark line.
type Result struct {
	Name   string // without the -N GOMAXPROCS suffix
	Metric string
	Value  float64
}

// ParseGoals reads a goals file.
func ParseGoals(r io.Reader) ([]Goal, error) {
	var goals []Goal
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line, what, _ := strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) != 5 {
			return nil, fmt.Errorf("goals line %d: want NAME-REGEXP METRIC CMP GOAL real|fake, got %d fields", n, len(f))
		}
		re, err := regexp.Compile("^(?:" + f[0] + ")$")
		if err != nil {
			return nil, fmt.Errorf("goals line %d: %v", n, err)
		}
		v, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			return nil, fmt.Errorf("goals line %d: goal %q: %v", n, f[3], err)
		}
		if _, ok := compare[f[2]]; !ok {
			return nil, fmt.Errorf("goals line %d: comparison %q: want <=, <, >=, > or ==", n, f[2])
		}
		if f[4] != "real" && f[4] != "fake" {
			return nil, fmt.Errorf("goals line %d: %q: want real or fake", n, f[4])
		}
		goals = append(goals, Goal{Line: n, Name: re, Raw: f[0], Metric: f[1], Cmp: f[2], Value: v, Parts: f[4], What: strings.TrimSpace(what)})
	}
	return goals, sc.Err()
}

var compare = map[string]func(a, b float64) bool{
	"<=": func(a, b float64) bool { return a <= b },
	"<":  func(a, b float64) bool { return a < b },
	">=": func(a, b float64) bool { return a >= b },
	">":  func(a, b float64) bool { return a > b },
	"==": func(a, b float64) bool { return a == b },
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// ParseBench reads `go test -bench` output: every "BenchmarkX-N ITER V UNIT
// V UNIT ..." line becomes one Result per metric. Other lines are skipped.
func ParseBench(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a log line that starts with a benchmark name
		}
		name := procsSuffix.ReplaceAllString(f[0], "")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			out = append(out, Result{Name: name, Metric: f[i+1], Value: v})
		}
	}
	return out, sc.Err()
}

// Row is one line of the report.
type Row struct {
	Goal      Goal
	Benchmark string // "" when not run
	Measured  float64
	Met       bool
}

// Compare matches every goal with every result it names. A goal with no
// result gives one row with an empty Benchmark.
func Compare(goals []Goal, results []Result) []Row {
	var rows []Row
	for _, g := range goals {
		found := false
		for _, r := range results {
			if r.Metric != g.Metric || !g.Name.MatchString(r.Name) {
				continue
			}
			found = true
			rows = append(rows, Row{Goal: g, Benchmark: r.Name, Measured: r.Value, Met: compare[g.Cmp](r.Value, g.Value)})
		}
		if !found {
			rows = append(rows, Row{Goal: g})
		}
	}
	return rows
}

// WriteTable writes rows as an aligned table and returns how many goals
// were not met and how many were not measured.
func WriteTable(w io.Writer, rows []Row) (notMet, notRun int, err error) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BENCHMARK\tMETRIC\tGOAL\tMEASURED\tMET\tPARTS\tWHAT")
	for _, r := range rows {
		g := r.Goal
		goal := g.Cmp + " " + strconv.FormatFloat(g.Value, 'g', -1, 64)
		name, measured, met := r.Benchmark, strconv.FormatFloat(r.Measured, 'g', 4, 64), "met"
		switch {
		case name == "":
			name, measured, met = g.Raw, "-", "not run"
			notRun++
		case !r.Met:
			met = "NOT MET"
			notMet++
		}
		parts := g.Parts
		if parts == "fake" {
			parts = "fake (in-memory)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, g.Metric, goal, measured, met, parts, g.What)
	}
	return notMet, notRun, tw.Flush()
}

func main() {
	goalsPath := flag.String("goals", "bench/goals.txt", "goals file")
	flag.Parse()
	if err := run(*goalsPath, flag.Args(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchgoals:", err)
		os.Exit(1)
	}
}

func run(goalsPath string, inputs []string, w io.Writer) error {
	gf, err := os.Open(goalsPath)
	if err != nil {
		return err
	}
	defer gf.Close()
	goals, err := ParseGoals(gf)
	if err != nil {
		return err
	}
	if len(inputs) == 0 {
		return errors.New("no benchmark output given")
	}
	var results []Result
	for _, p := range inputs {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		rs, err := ParseBench(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %v", p, err)
		}
		results = append(results, rs...)
	}
	rows := Compare(goals, results)
	notMet, notRun, err := WriteTable(w, rows)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d goal rows: %d not met, %d not run\n", len(rows), notMet, notRun)
	if notMet > 0 || notRun > 0 {
		return fmt.Errorf("%d not met, %d not run", notMet, notRun)
	}
	return nil
}
