package dashboard

import (
	"bytes"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// pageData is what every template gets.
type pageData struct {
	Title  string
	Nav    string // the active menu entry
	Role   Role
	CSRF   string
	Flash  string
	Error  string
	Path   string // the page's path and query, the "back" of its forms
	Login  bool
	Viewer bool // the login page: a viewer token exists
	Fleet  bool // the fleet menu entries
	Now    time.Time
	Agent  agentLine
	Data   any
}

// agentLine is the agent's state in one line, on every page.
type agentLine struct {
	Running     *history.Round
	Last        *history.Round
	Commit      string
	NextRoundAt time.Time
	Errors      []string
}

type viewFunc func(r *http.Request, p *pageData) (status int, err error)

// page serves view fn to a session: the whole page, or only its main
// element for the page's script (X-Ferry-Fragment: 1).
func (d *Dashboard) page(fn viewFunc) http.Handler {
	return d.authed(func(w http.ResponseWriter, r *http.Request, id string, s session) {
		p := pageData{Role: s.role, CSRF: s.csrf, Path: r.URL.RequestURI(), Fleet: d.opts.Fleet != nil, Now: d.now()}
		st := d.opts.Source.Status()
		p.Agent = agentLine{Running: st.Running, Last: st.LastRound, Commit: st.DesiredCommit, NextRoundAt: st.NextRoundAt, Errors: st.Errors}
		code, err := fn(r, &p)
		if err != nil {
			d.fail(w, r, code, err.Error())
			return
		}
		if r.Header.Get("X-Ferry-Fragment") == "" {
			p.Flash = d.sess.takeFlash(id)
		}
		d.render(w, r, code, p.Nav, p)
	})
}

// render executes page name with p: the layout around it, or only the
// fragment for the page's script.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, code int, name string, p pageData) {
	t, ok := d.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	root := "layout"
	if r.Header.Get("X-Ferry-Fragment") != "" {
		root = "fragment"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, root, p); err != nil {
		d.log.Error("dashboard: render", "page", name, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes()) //nolint:errcheck // the client went away
}

// fail renders an error page with msg.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	_, s, _ := d.session(r)
	d.render(w, r, code, "error", pageData{Title: http.StatusText(code), Nav: "error", Role: s.role, CSRF: s.csrf,
		Fleet: d.opts.Fleet != nil, Error: msg, Now: d.now(), Data: code})
}

// pager is one page of a long list.
type pager struct {
	Page, Pages, Total, From, To int
	Prev, Next                   string
}

// paginate returns the bounds of the page the request asks for (?page=,
// from 1) of n rows, and its links.
func (d *Dashboard) paginate(r *http.Request, n int) (lo, hi int, pg pager) {
	per := d.opts.PageSize
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pages := max(1, (n+per-1)/per)
	page = min(max(page, 1), pages)
	lo, hi = (page-1)*per, min(page*per, n)
	link := func(p int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		return r.URL.Path + "?" + q.Encode()
	}
	pg = pager{Page: page, Pages: pages, Total: n, From: lo + 1, To: hi}
	if n == 0 {
		pg.From = 0
	}
	if page > 1 {
		pg.Prev = link(page - 1)
	}
	if page < pages {
		pg.Next = link(page + 1)
	}
	return lo, hi, pg
}

// cell is one app on one target in the matrix.
type cell struct {
	Has     bool
	Target  string
	Digest  string
	Phase   string
	Healthy bool
	Owner   string
	Pinned  bool
	Status  string
	Message string
	Result  string
	Error   string
	// RolledBack: the target rolled the app back by itself and the
	// version it left stays held until a newer commit.
	RolledBack bool
}

func cellOf(t agent.AppTargetStatus) cell {
	c := cell{Has: true, Target: t.Target, Digest: t.Digest, Phase: t.Phase, Healthy: t.Healthy, Owner: t.Owner, Pinned: t.Pinned,
		Status: t.Status, Message: t.Message, Result: t.Result, Error: t.Error, RolledBack: t.RolledBack != nil}
	if c.Phase == "" {
		c.Phase = "unknown"
		if t.Healthy {
			c.Phase = "ready"
		}
	}
	if t.Status == "deleted" {
		c.Phase = "deleted"
	}
	if c.Message == "" && t.Detail != "" {
		c.Message = t.Detail
	}
	return c
}

// bad says whether the cell needs someone.
func (c cell) Bad() bool {
	return c.Has && (c.Error != "" || c.RolledBack || c.Phase == "failed" || c.Phase == "degraded" || (!c.Healthy && c.Phase != "progressing" && c.Phase != "deleted"))
}

type appRow struct {
	agent.AppStatus
	Cells []cell
}

// Bad says whether the app needs someone somewhere.
func (r appRow) Bad() bool {
	if r.Error != "" {
		return true
	}
	for _, c := range r.Cells {
		if c.Bad() {
			return true
		}
	}
	return false
}

type appsData struct {
	Targets           []string
	Rows              []appRow
	Q, Target, Phase  string
	Pager             pager
	Total, Healthy    int
	Unhealthy, Pinned int
	SpecErrors        []history.SpecDiagnostic
}

// matchPhase says whether row passes the phase filter.
func matchPhase(row appRow, phase, target string) bool {
	switch phase {
	case "":
		return true
	case "pinned":
		return row.PinnedTo != ""
	case "suspended":
		return row.Suspended
	case "error":
		return row.Error != "" || row.Held != ""
	case "unhealthy":
		return row.Bad()
	case "healthy":
		return !row.Bad()
	}
	for i, c := range row.Cells {
		_ = i
		if c.Has && c.Phase == phase {
			return true
		}
	}
	return false
}

func (d *Dashboard) appsView(r *http.Request, p *pageData) (int, error) {
	p.Nav, p.Title = "apps", "Apps"
	st := d.opts.Source.Status()
	q := r.URL.Query()
	data := appsData{Q: strings.TrimSpace(q.Get("q")), Target: q.Get("target"), Phase: q.Get("phase"), SpecErrors: st.SpecErrors}
	tset := map[string]bool{}
	for _, t := range st.Targets {
		tset[t.Name] = true
	}
	for _, a := range st.Apps {
		for _, t := range a.Targets {
			tset[t.Target] = true
		}
	}
	data.Targets = slices.Sorted(maps.Keys(tset))
	if data.Target != "" {
		if !tset[data.Target] {
			return http.StatusNotFound, fmt.Errorf("there is no target %q", data.Target)
		}
		data.Targets = []string{data.Target}
	}
	var rows []appRow
	for _, a := range st.Apps {
		row := appRow{AppStatus: a}
		by := map[string]agent.AppTargetStatus{}
		for _, t := range a.Targets {
			by[t.Target] = t
		}
		for _, tn := range data.Targets {
			if t, ok := by[tn]; ok {
				row.Cells = append(row.Cells, cellOf(t))
			} else {
				row.Cells = append(row.Cells, cell{Target: tn})
			}
		}
		data.Total++
		if row.Bad() {
			data.Unhealthy++
		} else {
			data.Healthy++
		}
		if a.PinnedTo != "" {
			data.Pinned++
		}
		if data.Q != "" && !strings.Contains(strings.ToLower(a.Name), strings.ToLower(data.Q)) {
			continue
		}
		if data.Target != "" && !slices.ContainsFunc(row.Cells, func(c cell) bool { return c.Has }) {
			continue
		}
		if !matchPhase(row, data.Phase, data.Target) {
			continue
		}
		rows = append(rows, row)
	}
	lo, hi, pg := d.paginate(r, len(rows))
	data.Rows, data.Pager = rows[lo:hi], pg
	p.Data = data
	return http.StatusOK, nil
}

// version is one digest an app ran, over time.
type version struct {
	Digest      string
	First, Last time.Time
	Commits     []string
	Targets     []string
	Deployed    bool
	Current     bool
	Pinned      bool
}

type appData struct {
	App        agent.AppStatus
	Cells      []agent.AppTargetStatus
	Versions   []version
	Records    []history.AppRecord
	Plan       []agent.PlannedChange
	Errors     []string
	SpecErrors []history.SpecDiagnostic
	Rollbacks  []history.HostRollback
}

func (d *Dashboard) appView(r *http.Request, p *pageData) (int, error) {
	name := r.PathValue("app")
	p.Nav, p.Title = "app", "App "+name
	st := d.opts.Source.Status()
	data := appData{SpecErrors: st.SpecErrors}
	found := false
	for _, a := range st.Apps {
		if a.Name == name {
			data.App, data.Cells, found = a, a.Targets, true
		}
	}
	recs, err := d.opts.Source.History(name, 500)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	if !found && len(recs) == 0 {
		return http.StatusNotFound, fmt.Errorf("there is no app %q in the status or the history", name)
	}
	data.App.Name = name
	if data.App.Error != "" {
		data.Errors = append(data.Errors, "release: "+data.App.Error)
	}
	if data.App.Held != "" {
		data.Errors = append(data.Errors, "held: "+data.App.Held)
	}
	for _, t := range data.Cells {
		if t.Error != "" {
			data.Errors = append(data.Errors, fmt.Sprintf("target %s: %s", t.Target, t.Error))
		}
		if t.Message != "" && !t.Healthy {
			data.Errors = append(data.Errors, fmt.Sprintf("target %s: %s", t.Target, t.Message))
		}
	}
	for _, c := range st.Plan {
		if c.App == name {
			data.Plan = append(data.Plan, c)
		}
	}
	for _, rb := range st.HostRollbacks {
		if rb.App == name {
			data.Rollbacks = append(data.Rollbacks, rb)
		}
	}
	current := map[string]bool{}
	for _, t := range data.Cells {
		current[t.Digest] = true
	}
	idx := map[string]int{}
	for _, rec := range recs { // newest first
		if rec.Digest == "" || rec.Action == "unpin" || rec.Action == "release" {
			continue
		}
		i, ok := idx[rec.Digest]
		if !ok {
			i = len(data.Versions)
			idx[rec.Digest] = i
			data.Versions = append(data.Versions, version{Digest: rec.Digest, Last: rec.Time, Current: current[rec.Digest], Pinned: rec.Digest == data.App.PinnedTo})
		}
		v := &data.Versions[i]
		v.First = rec.Time
		if rec.Commit != "" && !slices.Contains(v.Commits, short7(rec.Commit)) && len(v.Commits) < 5 {
			v.Commits = append(v.Commits, short7(rec.Commit))
		}
		if rec.Target != "" && !slices.Contains(v.Targets, rec.Target) {
			v.Targets = append(v.Targets, rec.Target)
		}
		if rec.Result == "applied" || rec.Result == "unchanged" {
			v.Deployed = true
		}
	}
	for _, rec := range recs {
		if rec.Action != "no-op" || rec.Error != "" {
			data.Records = append(data.Records, rec)
		}
		if len(data.Records) == 30 {
			break
		}
	}
	p.Data = data
	return http.StatusOK, nil
}

type targetRow struct {
	agent.TargetStatus
	Healthy, Unhealthy int
	Known              bool // the last planning round saw it
	Rollbacks          []history.HostRollback
}

func (d *Dashboard) targetsView(r *http.Request, p *pageData) (int, error) {
	p.Nav, p.Title = "targets", "Targets"
	st := d.opts.Source.Status()
	rows := map[string]*targetRow{}
	for _, t := range st.Targets {
		rows[t.Name] = &targetRow{TargetStatus: t, Known: true}
	}
	for _, a := range st.Apps {
		for _, t := range a.Targets {
			row := rows[t.Target]
			if row == nil {
				row = &targetRow{TargetStatus: agent.TargetStatus{Name: t.Target, Error: "not in the last round's plan"}}
				rows[t.Target] = row
			}
			if cellOf(t).Bad() {
				row.Unhealthy++
			} else {
				row.Healthy++
			}
		}
	}
	for _, rb := range st.HostRollbacks {
		if row := rows[rb.Target]; row != nil {
			row.Rollbacks = append(row.Rollbacks, rb)
		}
	}
	var out []targetRow
	for _, n := range slices.Sorted(maps.Keys(rows)) {
		out = append(out, *rows[n])
	}
	p.Data = out
	return http.StatusOK, nil
}

// rolloutView is one fleet rollout as the live view shows it.
type rolloutView struct {
	controller.Rollout
	Wave, Waves      int
	Counts           fleet.Counts
	Pending, Devices int
	GateHealthy      int
	GateDevices      int
	Need             float64
	SoakUntil        time.Time
	SoakLeft         time.Duration
	StartsPerMinute  int
	Deferred         int
	Live             bool
	WaveList         []waveView
}

// waveView is one wave: done, current or to come.
type waveView struct {
	N             int
	Done, Current bool
}

func newRolloutView(ro controller.Rollout, now time.Time) rolloutView {
	v := rolloutView{Rollout: ro}
	st := ro.State
	if st == nil {
		return v
	}
	v.Counts, v.Devices, v.Wave = st.Counts(), len(st.Devices), st.Wave+1
	v.Live = st.Outcome == fleet.OutcomeRunning || st.Outcome == fleet.OutcomeSoaking
	// The rate: devices told to update within the last minute (the
	// rate limit's window, RecentStarts, is kept only under a limit).
	for _, p := range st.Devices {
		if now.Sub(p.Started) < time.Minute {
			v.StartsPerMinute++
		}
	}
	if l := ro.Last; l != nil {
		v.Waves, v.Pending, v.Deferred = l.Waves, l.Gate.Pending, l.Deferred
		v.GateHealthy, v.GateDevices, v.Need = l.Gate.Healthy, l.Gate.Devices, l.Gate.Need
		if !l.Gate.Since.IsZero() && v.Live {
			v.SoakUntil = l.Gate.Since.Add(l.Gate.Soak)
			v.SoakLeft = max(0, v.SoakUntil.Sub(now)).Round(time.Second)
		}
	}
	for i := 1; i <= max(v.Waves, v.Wave); i++ {
		done := i < v.Wave || st.Outcome == fleet.OutcomeCompleted
		v.WaveList = append(v.WaveList, waveView{N: i, Done: done, Current: i == v.Wave && !done})
	}
	return v
}

func (d *Dashboard) fleetView(r *http.Request, p *pageData) (int, error) {
	p.Nav, p.Title = "fleet", "Fleet rollouts"
	if d.opts.Fleet == nil {
		return http.StatusNotFound, fmt.Errorf("this agent runs no fleet")
	}
	ros, err := d.opts.Fleet.Rollouts()
	if err != nil {
		return http.StatusInternalServerError, err
	}
	var out []rolloutView
	for _, ro := range ros {
		out = append(out, newRolloutView(ro, p.Now))
	}
	p.Data = out
	return http.StatusOK, nil
}

type deviceRow struct {
	server.Device
	State    string
	Rollouts []string // "app: status" in the rollouts that started it
}

type devicesData struct {
	Selector, State string
	States          []string
	Rows            []deviceRow
	Pager           pager
	ByState         map[string]int
}

// deviceState is a device's own state: revoked, silent (never reported),
// unhealthy (an app unhealthy or failed) or healthy.
func deviceState(dv server.Device) string {
	switch {
	case !dv.Revoked.IsZero():
		return "revoked"
	case dv.Status == nil:
		return "silent"
	}
	for _, a := range dv.Status.Apps {
		if !a.Healthy || a.Failed != "" || a.Error != "" {
			return "unhealthy"
		}
	}
	return "healthy"
}

var deviceStates = []string{"healthy", "unhealthy", "silent", "revoked", "updating", "failed", "rolled_back"}

func (d *Dashboard) devicesView(r *http.Request, p *pageData) (int, error) {
	p.Nav, p.Title = "devices", "Devices"
	if d.opts.Fleet == nil {
		return http.StatusNotFound, fmt.Errorf("this agent runs no fleet")
	}
	q := r.URL.Query()
	data := devicesData{Selector: strings.TrimSpace(q.Get("selector")), State: q.Get("state"), States: deviceStates, ByState: map[string]int{}}
	var sel spec.LabelSelector
	if err := sel.UnmarshalText([]byte(data.Selector)); err != nil {
		return http.StatusBadRequest, fmt.Errorf("label selector %q: %v", data.Selector, err)
	}
	if data.State != "" && !slices.Contains(deviceStates, data.State) {
		return http.StatusBadRequest, fmt.Errorf("unknown state %q: want one of %s", data.State, strings.Join(deviceStates, ", "))
	}
	ros, err := d.opts.Fleet.Rollouts()
	if err != nil {
		return http.StatusInternalServerError, err
	}
	prog := map[string][]string{}
	progState := map[string][]string{}
	for _, ro := range ros {
		if ro.State == nil {
			continue
		}
		for id, pr := range ro.State.Devices {
			prog[id] = append(prog[id], ro.App+": "+string(pr.Status))
			progState[id] = append(progState[id], string(pr.Status))
		}
	}
	var rows []deviceRow
	for _, dv := range d.opts.Fleet.Devices(sel.Matches) {
		s := deviceState(dv)
		data.ByState[s]++
		for _, ps := range progState[dv.ID] {
			if ps != "healthy" {
				data.ByState[ps]++
			}
		}
		if data.State != "" && s != data.State && !slices.Contains(progState[dv.ID], data.State) {
			continue
		}
		rr := prog[dv.ID]
		slices.Sort(rr)
		rows = append(rows, deviceRow{Device: dv, State: s, Rollouts: rr})
	}
	lo, hi, pg := d.paginate(r, len(rows))
	data.Rows, data.Pager = rows[lo:hi], pg
	p.Data = data
	return http.StatusOK, nil
}

type roundRow struct {
	history.Round
	Changes []history.AppRecord
	Took    time.Duration
}

type historyData struct {
	Rounds []roundRow
	Pager  pager
}

func (d *Dashboard) historyView(r *http.Request, p *pageData) (int, error) {
	p.Nav, p.Title = "history", "History"
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = min(max(page, 1), 1000)
	per := d.opts.PageSize
	rs, err := d.opts.Source.Rounds(page*per + 1)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	pg := pager{Page: page, Pages: page, Total: len(rs), From: (page-1)*per + 1}
	lo, hi := min((page-1)*per, len(rs)), min(page*per, len(rs))
	pg.To = hi
	link := func(n int) string { return "/ui/history?page=" + strconv.Itoa(n) }
	if page > 1 {
		pg.Prev = link(page - 1)
	}
	if len(rs) > page*per {
		pg.Next, pg.Pages = link(page+1), page+1
	}
	var out []roundRow
	for _, r := range rs[lo:hi] {
		row := roundRow{Round: r}
		if !r.FinishedAt.IsZero() {
			row.Took = r.FinishedAt.Sub(r.StartedAt)
		}
		for _, a := range r.Apps {
			if a.Action != "no-op" || a.Error != "" {
				row.Changes = append(row.Changes, a)
			}
		}
		out = append(out, row)
	}
	p.Data = historyData{Rounds: out, Pager: pg}
	return http.StatusOK, nil
}

// short renders a digest as its algorithm and first 12 hex digits.
func short(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		alg, hex = "", d
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if alg == "" {
		return hex
	}
	return alg + ":" + hex
}

func short7(c string) string {
	if len(c) > 8 {
		return c[:8]
	}
	return c
}

func funcs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"short":    short,
		"sha":      short7,
		"esc":      url.PathEscape,
		"query":    url.QueryEscape,
		"time":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"unix":     func(t time.Time) int64 { return t.UnixMilli() },
		"ago":      func(t time.Time) string { return ago(now().Sub(t)) },
		"dur":      func(d deploy.Duration) string { return fmtDur(time.Duration(d)) },
		"took":     fmtDur,
		"pct":      func(f float64) string { return strconv.Itoa(int(f*100+0.5)) + "%" },
		"join":     strings.Join,
		"hasError": func(s []string) bool { return len(s) > 0 },
		"labels": func(m map[string]string) string {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(m)) {
				parts = append(parts, k+"="+m[k])
			}
			return strings.Join(parts, ",")
		},
		"add": func(a, b int) int { return a + b },
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "in " + strings.TrimSuffix(ago(-d), " ago")
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
