package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/notify"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/control"
	"github.com/ferry-wasm/ferry/targets/host/core"
	"github.com/ferry-wasm/ferry/targets/host/single"
)

// metricInfo is what is known of one metric: its type (from a gathered
// family; "" when no series exists yet) and its label names.
type metricInfo struct {
	typ    string
	labels []string
}

// metricSet collects metrics from descriptors and gathered families.
type metricSet struct {
	mu stdsync.Mutex
	m  map[string]*metricInfo
}

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

func (s *metricSet) add(name, typ string, labels []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*metricInfo{}
	}
	mi := s.m[name]
	if mi == nil {
		mi = &metricInfo{}
		s.m[name] = mi
	}
	if typ != "" {
		mi.typ = typ
	}
	for _, l := range labels {
		if l != "" && l != "le" && !slices.Contains(mi.labels, l) {
			mi.labels = append(mi.labels, l)
		}
	}
	slices.Sort(mi.labels)
}

// addDesc records a descriptor: every collector's metrics, series or not.
func (s *metricSet) addDesc(d *prometheus.Desc) {
	m := descRE.FindStringSubmatch(d.String())
	if m == nil {
		panic("cannot read descriptor " + d.String())
	}
	var labels []string
	for l := range strings.SplitSeq(m[2], ",") {
		labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
	}
	s.add(m[1], "", labels)
}

// addGathered records gathered families with their types.
func (s *metricSet) addGathered(t *testing.T, g prometheus.Gatherer) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		var labels []string
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		s.add(mf.GetName(), strings.ToLower(dto.MetricType_name[int32(mf.GetType())]), labels)
	}
}

// recorder is a registry that also records the descriptors of every
// collector registered with it.
type recorder struct {
	*prometheus.Registry
	set *metricSet
}

func (r recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.set.addDesc(d)
	}
	return r.Registry.Register(c)
}

func (r recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

type noRelease struct{}

func (noRelease) Release(context.Context, string, string) (*release.RoundInput, error) {
	return nil, fmt.Errorf("not used")
}

// realMetrics builds every component that exports metrics, in process, as
// the entry points do, and returns what their registries hold.
func realMetrics(t *testing.T) map[string]*metricInfo {
	set := &metricSet{}
	ctx := context.Background()

	// The agent, the fleet hub and the notifier: what `ferry agent` serves.
	rec := recorder{prometheus.NewRegistry(), set}
	a, err := agent.NewAgent(agent.Options{Repo: t.TempDir(), DataDir: t.TempDir(), Releaser: noRelease{},
		Targets: func(context.Context, *spec.Config) (map[string]targets.Target, error) { return nil, nil }, Metrics: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	h, err := hub.Open(hub.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rec.MustRegister(h.Collector())
	if _, err := notify.New(notify.Options{Webhook: "http://127.0.0.1:1/", Secret: []byte("0123456789abcdef"), Metrics: rec}); err != nil {
		t.Fatal(err)
	}
	set.addGathered(t, rec)

	// The host runtime and core, through a recorder.
	hrec := recorder{prometheus.NewRegistry(), set}
	rt, err := host.New(host.Options{Metrics: hrec})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	if _, err := core.New(core.Options{Runtime: rt, InsecureSkipVerify: true, Metrics: hrec}); err != nil {
		t.Fatal(err)
	}
	set.addGathered(t, hrec)

	// ferry-host as its entry point builds it (control.NewHost), after
	// one control request.
	srv, err := control.NewHost(core.Config{StoreDir: t.TempDir(), InsecureSkipVerify: true}, "metrics-token")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(ctx)
	req := httptest.NewRequest(http.MethodGet, "/v1/apps", nil)
	req.Header.Set("Authorization", "Bearer metrics-token")
	rr := httptest.NewRecorder()
	srv.ServeHTTP(rr, req)
	if rr.Code != http.StatusOK {
		t.Fatalf("GET /v1/apps: %d", rr.Code)
	}
	set.addGathered(t, srv.Metrics())

	// Single-app mode, after one deploy attempt (its registry is down).
	app, err := single.New(single.Options{Ref: "127.0.0.1:1/ferry/app@sha256:" + strings.Repeat("0", 64),
		Core: core.Config{StoreDir: t.TempDir(), InsecureSkipVerify: true}, RetryMin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = app.Run(rctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for !gathered(t, app.Core().Metrics(), "ferry_host_app_put_attempts_total") {
		if time.Now().After(deadline) {
			t.Fatal("single-app mode made no deploy attempt within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	set.addGathered(t, app.Core().Metrics())

	out := map[string]*metricInfo{}
	for n, mi := range set.m {
		if strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") {
			continue // the standard collectors (METRICS.md says so)
		}
		out[n] = mi
	}
	return out
}

func gathered(t *testing.T, g prometheus.Gatherer, name string) bool {
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == name })
}

// documentedMetrics reads METRICS.md's table: name → type and labels.
func documentedMetrics(t *testing.T) map[string]*metricInfo {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "METRICS.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z_:]+)` \\| (counter|gauge|histogram|summary) \\|([^|]*)\\|")
	out := map[string]*metricInfo{}
	for line := range strings.SplitSeq(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("METRICS.md lists %s twice", m[1])
		}
		mi := &metricInfo{typ: m[2]}
		for l := range strings.SplitSeq(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				mi.labels = append(mi.labels, l)
			}
		}
		slices.Sort(mi.labels)
		out[m[1]] = mi
	}
	if len(out) < 20 {
		t.Fatalf("METRICS.md's table has %d rows: the test no longer reads it", len(out))
	}
	return out
}

// TestMetricsDocumented: METRICS.md's table names exactly the metrics the
// real components register, with their types and labels.
func TestMetricsDocumented(t *testing.T) {
	real, doc := realMetrics(t), documentedMetrics(t)
	for _, n := range slices.Sorted(maps.Keys(real)) {
		r, d := real[n], doc[n]
		if d == nil {
			t.Errorf("metric %s (%s, labels %v) is not in METRICS.md", n, r.typ, r.labels)
			continue
		}
		if r.typ != "" && r.typ != d.typ {
			t.Errorf("metric %s is a %s; METRICS.md says %s", n, r.typ, d.typ)
		}
		if !slices.Equal(r.labels, d.labels) {
			t.Errorf("metric %s has labels %v; METRICS.md says %v", n, r.labels, d.labels)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(doc)) {
		if real[n] == nil {
			t.Errorf("METRICS.md lists %s, which no component registers", n)
		}
	}
	typed := 0
	for _, r := range real {
		if r.typ != "" {
			typed++
		}
	}
	t.Logf("%d metrics, %d of them with series (type checked)", len(real), typed)
}

// promqlMetrics returns the metric names a PromQL expression refers to:
// identifiers outside strings, label matchers, ranges and by/without/on
// label lists that are not function names or keywords.
func promqlMetrics(expr string) []string {
	var out []string
	keywords := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}
	// Aggregations may take their label list before their argument.
	for _, agg := range []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"} {
		keywords[agg] = true
	}
	labelList := false // the next (...) holds label names
	depth := []bool{}  // for each open paren: a label list?
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '{':
			i += strings.IndexByte(expr[i:], '}') + 1
		case c == '[':
			i += strings.IndexByte(expr[i:], ']') + 1
		case c == '(':
			depth = append(depth, labelList)
			labelList = false
			i++
		case c == ')':
			if len(depth) > 0 {
				depth = depth[:len(depth)-1]
			}
			i++
		case c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(expr) && (expr[j] == '_' || expr[j] == ':' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z' || expr[j] >= '0' && expr[j] <= '9') {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && expr[k] == ' ' {
				k++
			}
			inLabels := len(depth) > 0 && depth[len(depth)-1]
			switch {
			case keywords[strings.ToLower(word)]:
				labelList = slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, strings.ToLower(word))
			case inLabels:
			case k < len(expr) && expr[k] == '(':
				// a function or aggregation
			default:
				out = append(out, word)
			}
			i = j
		case c == '$': // a Grafana variable ($__rate_interval)
			j := i + 1
			for j < len(expr) && (expr[j] == '_' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z' || expr[j] >= '0' && expr[j] <= '9') {
				j++
			}
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(expr) && (expr[j] == '.' || expr[j] == 'e' || expr[j] >= '0' && expr[j] <= '9') {
				j++
			}
			i = max(j, i+1)
		default:
			i++
		}
	}
	return out
}

func TestPromQLMetrics(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (result) (rate(ferry_agent_rounds_total[$__rate_interval]))`:                               {"ferry_agent_rounds_total"},
		`histogram_quantile(0.95, sum by (le, step) (rate(ferry_agent_step_duration_seconds_bucket[5m])))`: {"ferry_agent_step_duration_seconds_bucket"},
		`time() - ferry_agent_last_success_timestamp_seconds`:                                              {"ferry_agent_last_success_timestamp_seconds"},
		`a{x="b(c)"} / on (app) group_left b`:                                                              {"a", "b"},
		`sum without (code) (x) > bool 0.5e3`:                                                              {"x"},
	} {
		if got := promqlMetrics(expr); !slices.Equal(got, want) {
			t.Errorf("promqlMetrics(%q) = %v, want %v", expr, got, want)
		}
	}
}

// TestGrafanaDashboard loads the example dashboard and checks that every
// query refers only to metrics METRICS.md documents (a histogram's
// _bucket, _sum and _count included), and that it covers the agent, the
// host and the fleet.
func TestGrafanaDashboard(t *testing.T) {
	doc := documentedMetrics(t)
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "grafana", "ferry-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Title  string            `json:"title"`
		UID    string            `json:"uid"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("ferry-dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard has no title or uid")
	}
	used := map[string]bool{}
	exprs := 0
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			walk(p.Panels)
			for _, tg := range p.Targets {
				exprs++
				names := promqlMetrics(tg.Expr)
				if len(names) == 0 {
					t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
				}
				for _, n := range names {
					base := n
					if d := doc[n]; d == nil {
						for _, suf := range []string{"_bucket", "_sum", "_count"} {
							if b, ok := strings.CutSuffix(n, suf); ok && doc[b] != nil && doc[b].typ == "histogram" {
								base = b
							}
						}
					}
					if doc[base] == nil {
						t.Errorf("panel %q: query %q uses %s, which METRICS.md does not document", p.Title, tg.Expr, n)
						continue
					}
					used[base] = true
				}
			}
		}
	}
	walk(dash.Panels)
	if exprs < 10 {
		t.Errorf("the dashboard has %d queries", exprs)
	}
	for _, n := range []string{"ferry_agent_rounds_total", "ferry_agent_app_failures_total", "ferry_host_control_puts_total",
		"ferry_host_app_healthy", "ferry_host_health_rollbacks_total", "ferry_fleet_rollout_devices", "ferry_fleet_devices", "ferry_notifications_total"} {
		if !used[n] {
			t.Errorf("the dashboard has no panel on %s", n)
		}
	}
}
