package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-wasm/ferry/internal/httproute"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
)

// Status is what the agent is doing and how its last round went; it is the
// body of GET /v1/status.
type Status struct {
	// Repo (credentials hidden), Branch and Path are what the agent watches.
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	Path   string `json:"path"`
	// FetchedCommit is the newest commit of the branch seen so far.
	FetchedCommit string `json:"fetched_commit,omitempty"`
	// DesiredCommit is the commit whose desired state is being enforced:
	// the newest with a valid spec.
	DesiredCommit string `json:"desired_commit,omitempty"`
	// LastSuccessfulCommit is the commit of the last round that succeeded
	// fully, and LastSuccessfulAt when it finished.
	LastSuccessfulCommit string    `json:"last_successful_commit,omitempty"`
	LastSuccessfulAt     time.Time `json:"last_successful_at,omitzero"`
	// Running is the round in progress, with the steps done so far.
	Running *history.Round `json:"running,omitempty"`
	// LastRound is the last finished round; its Steps are the current
	// conditions of each step.
	LastRound *history.Round `json:"last_round,omitempty"`
	// NextRoundAt is when the next round starts unless woken earlier.
	NextRoundAt time.Time `json:"next_round_at,omitzero"`
	// Errors are the current errors, one sentence each (git unreachable,
	// spec invalid with file:line, app failures).
	Errors []string `json:"errors,omitempty"`
	// SpecErrors are the diagnostics of the newest commit when its spec is
	// invalid, with file:line.
	SpecErrors []history.SpecDiagnostic `json:"spec_errors,omitempty"`
	// Apps is the status of each app, sorted by name.
	Apps []AppStatus `json:"apps,omitempty"`
	// Pins are the rollback pins in force, sorted by app.
	Pins []history.Pin `json:"pins,omitempty"`
	// Suspended are the suspended apps, sorted by app.
	Suspended []history.Suspension `json:"suspended,omitempty"`
	// HostRollbacks are the rollbacks targets made by themselves that
	// still hold a version back (the agent does not deploy From to that
	// target again until a newer commit changes the app), sorted by
	// target and app.
	HostRollbacks []history.HostRollback `json:"host_rollbacks,omitempty"`
	// Targets are the targets of the last round that planned, sorted by
	// name: whether each answered, and if not why.
	Targets []TargetStatus `json:"targets,omitempty"`
	// Plan is every change the last round's plan computed (no-ops left
	// out, held changes kept), by target and app.
	Plan []PlannedChange `json:"plan,omitempty"`
}

// TargetStatus is one target as of the last round that planned.
type TargetStatus struct {
	Name string `json:"name"`
	// Reachable is false when the target could not be observed; Error
	// says why.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Apps is how many apps the target reported.
	Apps int `json:"apps"`
}

// PlannedChange is one change of a round's plan.
type PlannedChange struct {
	Target string `json:"target"`
	App    string `json:"app"`
	// Action is create, update, delete or wait.
	Action string `json:"action"`
	// From and To are the digests before and after.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Reasons explain the action (plan.Change.Reasons).
	Reasons []string `json:"reasons,omitempty"`
	// Objects are the objects that differ, from targets that diff.
	Objects []targets.ObjectDiff `json:"objects,omitempty"`
}

// AppStatus is one app's status.
type AppStatus struct {
	// Name is the app's name.
	Name string `json:"name"`
	// Desired is the digest the spec asks for (before any pin).
	Desired string `json:"desired,omitempty"`
	// PinnedTo is the digest a rollback pin holds the app at.
	PinnedTo string `json:"pinned_to,omitempty"`
	// Suspended is true when the agent leaves the app alone.
	Suspended bool `json:"suspended,omitempty"`
	// Error is why the app's newest release failed.
	Error string `json:"error,omitempty"`
	// Held says why the agent does not deploy the app.
	Held string `json:"held,omitempty"`
	// Hosts are the host names the spec routes to the app.
	Hosts []string `json:"hosts,omitempty"`
	// Default is true when the spec declares no hosts for the app: on a
	// ferry-host it then answers every host name that no other app claims,
	// including the names of apps that failed to deploy.
	Default bool `json:"default,omitempty"`
	// Targets is the app on each target, as of the last round.
	Targets []AppTargetStatus `json:"targets,omitempty"`
}

// AppTargetStatus is one app on one target, as of the last round.
type AppTargetStatus struct {
	Target  string `json:"target"`
	Digest  string `json:"digest,omitempty"`
	Status  string `json:"status,omitempty"`
	Healthy bool   `json:"healthy"`
	// Phase is the app's rollout phase there (targets.Phase: ready,
	// progressing, degraded, failed, ...); Message explains a failure.
	Phase   string `json:"phase,omitempty"`
	Message string `json:"message,omitempty"`
	// Owner is who the target says deployed the app, when it records it.
	Owner  string `json:"owner,omitempty"`
	Pinned bool   `json:"pinned,omitempty"`
	// RolledBack is set when the target reports having rolled the app
	// back by itself to the version it runs (see Status.HostRollbacks).
	RolledBack *targets.Rollback `json:"rolled_back,omitempty"`
	// Action and Result are what the last round did.
	Action string `json:"action,omitempty"`
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Rollout is, on a fleet target, the last round's rollout preview and
	// the current rollout's state (history.AppRecord.Rollout).
	Rollout string `json:"rollout,omitempty"`
}

// Status returns the agent's status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	s := a.status
	s.Errors = slices.Clone(s.Errors)
	s.SpecErrors = slices.Clone(s.SpecErrors)
	s.Apps = slices.Clone(s.Apps)
	s.Targets = slices.Clone(s.Targets)
	s.Plan = slices.Clone(s.Plan)
	a.mu.Unlock()
	pins, err := a.hist.Pins()
	if err != nil {
		s.Errors = append(s.Errors, err.Error())
	}
	sus, err := a.hist.Suspended()
	if err != nil {
		s.Errors = append(s.Errors, err.Error())
	}
	for _, n := range slices.Sorted(maps.Keys(pins)) {
		s.Pins = append(s.Pins, pins[n])
	}
	for _, n := range slices.Sorted(maps.Keys(sus)) {
		s.Suspended = append(s.Suspended, sus[n])
	}
	rbs, err := a.hist.HostRollbacks()
	if err != nil {
		s.Errors = append(s.Errors, err.Error())
	}
	for _, k := range slices.Sorted(maps.Keys(rbs)) {
		if !rbs[k].Superseded {
			s.HostRollbacks = append(s.HostRollbacks, rbs[k])
		}
	}
	for i := range s.Apps {
		if p, ok := pins[s.Apps[i].Name]; ok {
			s.Apps[i].PinnedTo = p.Digest
		}
		_, s.Apps[i].Suspended = sus[s.Apps[i].Name]
	}
	return s
}

// History returns up to limit records of app (every target), newest first.
// limit ≤ 0 means 100.
func (a *Agent) History(app string, limit int) ([]history.AppRecord, error) {
	return a.hist.AppHistory(app, limit)
}

// Rounds returns up to limit rounds, newest first. limit ≤ 0 means 100.
func (a *Agent) Rounds(limit int) ([]history.Round, error) {
	return a.hist.Rounds(limit)
}

// Pin rolls app back to digest and holds it there until a newer commit
// changes the app (its desired digest differs from the one when pinned).
// digest may be a unique prefix, with or without "sha256:"; empty means the
// version before the current one, from the history. The digest must be one
// the history recorded for the app (ErrUnknownDigest, ErrNoPrevious,
// ErrUnknownApp). It wakes a round.
func (a *Agent) Pin(app, digest string) (history.Pin, error) {
	if err := a.changeState(); err != nil {
		return history.Pin{}, err
	}
	known, err := a.hist.ArtifactDigests(app)
	if err != nil {
		return history.Pin{}, err
	}
	if len(known) == 0 {
		return history.Pin{}, fmt.Errorf("%w: %q has no recorded versions", ErrUnknownApp, app)
	}
	a.mu.Lock()
	g := a.good
	a.mu.Unlock()
	var base, cur string
	if g != nil {
		base, cur = g.released[app], g.digests[app]
		if _, failed := g.appErrs[app]; cur == "" && !failed {
			return history.Pin{}, fmt.Errorf("%w: %q is not deployed by commit %s", ErrUnknownApp, app, shortSHA(g.commit))
		}
	}
	pins, err := a.hist.Pins()
	if err != nil {
		return history.Pin{}, err
	}
	if p, ok := pins[app]; ok {
		cur = p.Digest
		if p.BaseDigest != "" {
			base = p.BaseDigest
		}
	}
	if digest == "" {
		recs, err := a.hist.AppHistory(app, 10000)
		if err != nil {
			return history.Pin{}, err
		}
		if cur == "" {
			for _, r := range recs {
				if deployed(r) {
					cur = r.Digest
					break
				}
			}
		}
		for _, r := range recs {
			if deployed(r) && r.Digest != cur && slices.Contains(known, r.Digest) {
				digest = r.Digest
				break
			}
		}
		if digest == "" {
			return history.Pin{}, fmt.Errorf("%w: app %s has run only %s", ErrNoPrevious, app, plan.ShortDigest(cur))
		}
	} else {
		var match []string
		for _, k := range known {
			if k == digest || strings.HasPrefix(k, digest) || strings.HasPrefix(strings.TrimPrefix(k, "sha256:"), digest) {
				match = append(match, k)
			}
		}
		if len(match) != 1 {
			return history.Pin{}, fmt.Errorf("%w: %q matches %d recorded versions of app %s", ErrUnknownDigest, digest, len(match), app)
		}
		digest = match[0]
	}
	p := history.Pin{App: app, Digest: digest, BaseDigest: base, At: a.clock.Now().UTC()}
	if err := a.hist.SetPin(p); err != nil {
		return history.Pin{}, fmt.Errorf("agent: pin: %w", err)
	}
	a.log.Info("app pinned", "app", app, "digest", digest)
	if err := a.savedChange("pin"); err != nil {
		a.Wake("rollback")
		return history.Pin{}, err
	}
	a.Wake("rollback")
	return p, nil
}

func deployed(r history.AppRecord) bool {
	return r.Digest != "" && r.Action != string(plan.ActionDelete) && r.Action != "unpin" &&
		(r.Result == string(plan.OutcomeApplied) || r.Result == string(plan.OutcomeUnchanged))
}

// Unpin removes app's rollback pin, so the spec's version deploys again.
// It wakes a round.
func (a *Agent) Unpin(app string) error {
	if err := a.changeState(); err != nil {
		return err
	}
	if err := a.hist.DeletePin(app); err != nil {
		return fmt.Errorf("agent: unpin: %w", err)
	}
	a.Wake("unpin")
	return a.savedChange("unpin")
}

// Suspend makes the agent leave app as it is on every target until Resume.
// The app must be known (in the spec or the history).
func (a *Agent) Suspend(app string) error {
	if err := a.changeState(); err != nil {
		return err
	}
	if err := a.knownApp(app); err != nil {
		return err
	}
	if err := a.hist.Suspend(history.Suspension{App: app, At: a.clock.Now().UTC()}); err != nil {
		return fmt.Errorf("agent: suspend: %w", err)
	}
	a.log.Info("app suspended", "app", app)
	return a.savedChange("suspend")
}

// Resume undoes Suspend and wakes a round.
func (a *Agent) Resume(app string) error {
	if err := a.changeState(); err != nil {
		return err
	}
	if err := a.hist.Resume(app); err != nil {
		return fmt.Errorf("agent: resume: %w", err)
	}
	a.log.Info("app resumed", "app", app)
	a.Wake("resume")
	return a.savedChange("resume")
}

// Sync wakes a round now and makes it retry failed apps and releases
// without waiting for their backoff.
func (a *Agent) Sync() { a.Wake("api") }

func (a *Agent) knownApp(app string) error {
	if app == "" {
		return fmt.Errorf("%w: no app name", ErrUnknownApp)
	}
	a.mu.Lock()
	g := a.good
	a.mu.Unlock()
	if g != nil {
		if _, ok := g.digests[app]; ok {
			return nil
		}
		if g.cfg != nil && g.cfg.App(app) != nil {
			return nil
		}
	}
	if ds, err := a.hist.ArtifactDigests(app); err == nil && len(ds) > 0 {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnknownApp, app)
}

// Handler serves the webhooks under /hooks/ and the status API (everything
// else) on one mux.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/hooks/", a.WebhookHandler())
	mux.Handle("/", a.APIHandler())
	return mux
}

// Routes returns every route pattern Handler serves (the webhooks' and the
// status API's, in http.ServeMux syntax), sorted: the list an endpoint
// table (tests, docs) must cover.
func (a *Agent) Routes() []string {
	hooks := httproute.New()
	a.webhookRoutes(hooks)
	api := httproute.New()
	a.apiRoutes(api)
	return append(hooks.Patterns(), api.Patterns()...)
}

// APIHandler serves the status API. Every request needs
// "Authorization: Bearer <Options.APIToken>" (compared in constant time),
// except /metrics when Options.MetricsPublic:
//
//	GET  /v1/status              Status
//	GET  /v1/history?app=A&limit=N   {"app": A, "records": [AppRecord...]}
//	GET  /v1/history?limit=N     {"rounds": [Round...]}
//	POST /v1/rollback {"app": A, "digest": D (optional)} → Pin
//	POST /v1/unpin    {"app": A}
//	POST /v1/suspend  {"app": A}
//	POST /v1/resume   {"app": A}
//	POST /v1/sync     (wake a round now)
//	GET  /metrics     Prometheus text format
//
// plus Options.ExtraRoutes (the fleet admin API under /v1/fleet/).
//
// Errors are {"error": "..."} with 400, 401, 404 or 409.
func (a *Agent) APIHandler() http.Handler {
	mux := httproute.New()
	a.apiRoutes(mux)
	want := sha256.Sum256([]byte(a.opts.APIToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !(a.opts.MetricsPublic && r.URL.Path == "/metrics") {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			got := sha256.Sum256([]byte(tok))
			if !ok || a.opts.APIToken == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
				writeJSON(w, http.StatusUnauthorized, errorBody{Error: "a valid bearer token is required"})
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// apiRoutes registers the status API's routes (unauthenticated: APIHandler
// wraps them) on mux.
func (a *Agent) apiRoutes(mux *httproute.Mux) {
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		app := r.URL.Query().Get("app")
		if app == "" {
			rs, err := a.Rounds(limit)
			if err != nil {
				writeErr(w, err)
				return
			}
			writeJSON(w, http.StatusOK, HistoryResponse{Rounds: rs})
			return
		}
		recs, err := a.History(app, limit)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, HistoryResponse{App: app, Records: recs})
	})
	appReq := func(fn func(w http.ResponseWriter, req AppRequest)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req AppRequest
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
			if err := dec.Decode(&req); err != nil || req.App == "" {
				writeJSON(w, http.StatusBadRequest, errorBody{Error: "the body must be JSON {\"app\": NAME}"})
				return
			}
			fn(w, req)
		}
	}
	mux.HandleFunc("POST /v1/rollback", appReq(func(w http.ResponseWriter, req AppRequest) {
		p, err := a.Pin(req.App, req.Digest)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	}))
	for path, fn := range map[string]func(string) error{"/v1/unpin": a.Unpin, "/v1/suspend": a.Suspend, "/v1/resume": a.Resume} {
		mux.HandleFunc("POST "+path, appReq(func(w http.ResponseWriter, req AppRequest) {
			if err := fn(req.App); err != nil {
				writeErr(w, err)
				return
			}
			writeJSON(w, http.StatusOK, a.Status())
		}))
	}
	mux.HandleFunc("POST /v1/sync", func(w http.ResponseWriter, r *http.Request) {
		a.Sync()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "round queued"})
	})
	metrics := promhttp.HandlerFor(a.met.gatherer, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", metrics)
	if a.opts.ExtraRoutes != nil {
		a.opts.ExtraRoutes(mux)
	}
}

// AppRequest is the body of the rollback, unpin, suspend and resume calls.
type AppRequest struct {
	App    string `json:"app"`
	Digest string `json:"digest,omitempty"`
}

// HistoryResponse is the body of GET /v1/history: Records of one app when
// App is set, else Rounds.
type HistoryResponse struct {
	App     string              `json:"app,omitempty"`
	Records []history.AppRecord `json:"records,omitempty"`
	Rounds  []history.Round     `json:"rounds,omitempty"`
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // the client went away
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownApp):
		code = http.StatusNotFound
	case errors.Is(err, ErrUnknownDigest), errors.Is(err, ErrNoPrevious):
		code = http.StatusConflict
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrStateSave):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, errorBody{Error: err.Error()})
}
