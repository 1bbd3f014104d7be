package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/parallel"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent/gitsource"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// TargetsFunc returns the targets of a loaded spec, by name. It is called
// every round with the spec of the desired state in force, so it should
// cache connections. An error fails the round's plan step (nothing is
// changed) and the round is retried with backoff.
type TargetsFunc func(ctx context.Context, cfg *spec.Config) (map[string]targets.Target, error)

// Clock is the agent's source of time; tests may replace it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// WebhookSecrets are the shared secrets of the webhook endpoints. An empty
// secret disables that provider's endpoint (404): unauthenticated webhooks
// are never accepted.
type WebhookSecrets struct {
	// GitHub is the secret of POST /hooks/github (X-Hub-Signature-256).
	GitHub string
	// GitLab is the token of POST /hooks/gitlab (X-Gitlab-Token).
	GitLab string
	// Gitea is the secret of POST /hooks/gitea (X-Gitea-Signature).
	Gitea string
}

// Options configure an Agent. The zero value of each field is its default;
// Repo, DataDir, Releaser and Targets are required.
type Options struct {
	// Repo is the spec repository: an https, http, ssh or file URL, or a
	// local path.
	Repo string
	// Branch is the branch to deploy. Empty means "main".
	Branch string
	// Path is the directory inside the repository holding the spec,
	// slash-separated. Empty means the repository root.
	Path string
	// Interval is the time between rounds when nothing wakes the agent.
	// Zero means 30 seconds.
	Interval time.Duration
	// MaxBackoff caps the wait before retrying after a failed round (git or
	// the registry unreachable); retries start at one second and double,
	// with jitter. Zero means 5 minutes.
	MaxBackoff time.Duration
	// FetchTimeout bounds one git fetch. Zero means 2 minutes.
	FetchTimeout time.Duration
	// DataDir holds the git mirror, checkouts and the history database.
	DataDir string
	// Releaser loads, builds, pushes and signs a commit.
	Releaser release.Releaser
	// Targets returns the targets of a spec.
	Targets TargetsFunc
	// Auth are the git credentials; see GitAuthFromEnv.
	Auth gitsource.GitAuth
	// Webhooks are the webhook secrets.
	Webhooks WebhookSecrets
	// WebhookMaxBody caps a webhook request body. Zero means 1 MiB; larger
	// bodies get 413.
	WebhookMaxBody int64
	// APIToken is the bearer token of the status API. Empty means the API
	// refuses every request (401).
	APIToken string
	// MetricsPublic serves /metrics without the bearer token.
	MetricsPublic bool
	// Plan and Apply tune each round's Compute and Apply. Apply's
	// SecretsFor defaults to the secrets of the released desired state,
	// its PolicyFor to each app's deploy block in the spec in force
	// (PolicyFromSpec); both Loggers default to Logger.
	Plan  plan.PlanOptions
	Apply plan.ApplyOptions
	// HistoryRetention is how many rounds the history keeps. Zero means
	// 5000.
	HistoryRetention int
	// Logger receives the agent's structured logs. Nil means no logging.
	Logger *slog.Logger
	// Metrics, when set, also registers the agent's Prometheus collectors
	// there (they are always served on the API's /metrics). If it is also a
	// prometheus.Gatherer, /metrics serves it instead of the agent's own
	// registry.
	Metrics prometheus.Registerer
	// Clock is the source of time. Nil means the real clock.
	Clock Clock
}

// Agent is ferry's GitOps loop: each round it fetches the branch, releases
// its newest commit (load, build, push, sign), plans against what the
// targets run now and applies, then records the round in its history.
// Rounds are level-based: every round re-observes the targets and repairs
// drift, whether or not the commit changed; a webhook or API call only
// wakes the loop early.
//
// Robustness rules:
//
//   - Git unreachable: the round fails at its fetch step, the desired state
//     in force (the last valid release) is still planned, so drift is
//     repaired but nothing new deploys; retries back off from 1s to
//     Options.MaxBackoff with jitter; Status.Errors says why.
//   - Invalid spec (RoundInput.Diagnostics has errors): nothing from that
//     commit deploys, the previous desired state stays in force, and every
//     round reports the errors with file:line until a newer commit fixes
//     them.
//   - An app that fails to build, push or sign keeps its previous version
//     (or, with none, is held: never created nor deleted); the other apps
//     deploy. Its release is retried with backoff from Interval.
//   - An app whose new version fails on a target (health) keeps what the
//     target runs (Apply's rollback policy); that digest is not retried
//     before a backoff starting at Interval, so it never delays other apps
//     or newer commits; a newer commit that changes the app is tried at
//     once. Sync (POST /v1/sync) retries everything now.
//   - A target that rolls an app back by itself (a ferry-host whose health
//     probes failed within the version's bake) reports it in
//     ObservedApp.RolledBack; the agent records it (history, Status.
//     HostRollbacks) and does not deploy the digest rolled back from to
//     that target again — the plan's change is held, saying why — until a
//     commit changes the app's desired digest.
//   - Pin (rollback) holds an app at a recorded digest until a newer
//     commit changes the app's desired digest; Suspend leaves an app
//     alone. Both persist in the history database.
//   - Killed mid-round: the round stays "running" on disk and is marked
//     "interrupted" by the next NewAgent; checkouts are written to a
//     temporary directory and renamed, and a mirror that cannot be opened
//     is re-cloned. Targets are the truth, so the next round converges
//     with only the changes still missing.
//
// Create it with NewAgent, run it with Start, and Close it after Start
// returns. All methods are safe for concurrent use.
type Agent struct {
	opts  Options
	log   *slog.Logger
	clock Clock
	git   *gitsource.Source
	hist  *history.Store
	met   *agentMetrics

	wake       chan string
	deliveries deliveryLRU // webhook delivery ids seen (webhook.go)
	started    atomic.Bool
	closed     atomic.Bool

	mu     sync.Mutex // guards the fields below, read by API calls
	status Status
	good   *goodState // desired state in force (last valid release)

	// Used only by the round goroutine.
	released     string // commit released last (valid or not)
	invalidMsg   string // why the released commit's spec is invalid, or ""
	invalidDiags []history.SpecDiagnostic
	releaseRetry bool // the last release had failures worth retrying
	releaseFails int
	releaseAt    time.Time // earliest retry of a partly failed release
	failStreak   int
	failures     map[string]*appFailure // target + "/" + app
}

// goodState is the desired state in force: the newest commit whose spec
// was valid, with failed apps replaced by their previous versions.
type goodState struct {
	commit   string
	cfg      *spec.Config
	desired  plan.Desired
	digests  map[string]string // app → desired digest (first target wins)
	released map[string]string // app → digest released from this commit (no fallbacks)
	appErrs  map[string]string // app → release error
	holds    map[string]string // app → why it is held (failed, no previous version)
	secrets  func(string, string) map[string]string
}

type appFailure struct {
	digest  string
	count   int
	retryAt time.Time
	err     string
}

// NewAgent checks opts, opens the history database in opts.DataDir (marking
// a round left running by a killed agent as interrupted) and returns the
// agent. It does not contact git yet. Errors wrap ErrAgentOptions or
// ErrHistoryLocked.
func NewAgent(opts Options) (*Agent, error) {
	switch {
	case opts.Repo == "":
		return nil, fmt.Errorf("%w: no repository", ErrAgentOptions)
	case opts.DataDir == "":
		return nil, fmt.Errorf("%w: no data directory", ErrAgentOptions)
	case opts.Releaser == nil:
		return nil, fmt.Errorf("%w: no releaser", ErrAgentOptions)
	case opts.Targets == nil:
		return nil, fmt.Errorf("%w: no targets function", ErrAgentOptions)
	case opts.Interval < 0 || opts.MaxBackoff < 0:
		return nil, fmt.Errorf("%w: negative interval", ErrAgentOptions)
	}
	opts.Branch = parallel.OrDefault(opts.Branch, "main")
	opts.Path = parallel.OrDefault(opts.Path, ".")
	if !filepath.IsLocal(filepath.FromSlash(opts.Path)) {
		return nil, fmt.Errorf("%w: path %q must stay inside the repository", ErrAgentOptions, opts.Path)
	}
	opts.Interval = parallel.OrDefault(opts.Interval, 30*time.Second)
	opts.MaxBackoff = parallel.OrDefault(opts.MaxBackoff, 5*time.Minute)
	opts.WebhookMaxBody = parallel.OrDefault(opts.WebhookMaxBody, 1<<20)
	if _, err := opts.Auth.Method(opts.Repo); err != nil && errors.Is(err, gitsource.ErrGitURL) {
		return nil, err
	}
	a := &Agent{
		opts:     opts,
		log:      parallel.LoggerOr(opts.Logger),
		clock:    opts.Clock,
		wake:     make(chan string, 1),
		failures: map[string]*appFailure{},
	}
	if a.clock == nil {
		a.clock = realClock{}
	}
	a.git = &gitsource.Source{URL: opts.Repo, Branch: opts.Branch, Dir: opts.DataDir, Auth: opts.Auth, Timeout: opts.FetchTimeout}
	h, interrupted, err := history.Open(opts.DataDir, opts.HistoryRetention)
	if err != nil {
		return nil, err
	}
	a.hist = h
	met, err := newAgentMetrics(opts.Metrics)
	if err != nil {
		h.Close()
		return nil, err
	}
	a.met = met
	for _, id := range interrupted {
		a.log.Warn("round was interrupted by a stop or crash; the next round converges", "round", id)
		a.met.rounds.WithLabelValues(string(history.RoundInterrupted)).Inc()
	}
	a.status = Status{Repo: gitsource.RedactURL(opts.Repo), Branch: opts.Branch, Path: opts.Path}
	if rs, err := h.Rounds(1); err == nil && len(rs) > 0 {
		a.status.LastRound = &rs[0]
	}
	if ls, err := h.LastSuccess(); err == nil {
		a.status.LastSuccessfulCommit, a.status.LastSuccessfulAt = ls.Commit, ls.At
	}
	return a, nil
}

// Close closes the history database. Call it after Start returned.
func (a *Agent) Close() error {
	if !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	return a.hist.Close()
}

// Wake asks for a round now; trigger says why ("webhook:github", "api").
// Wakes that arrive while a round runs coalesce into one more round.
func (a *Agent) Wake(trigger string) {
	select {
	case a.wake <- trigger:
	default:
	}
}

// Start runs rounds until ctx ends: one at once, then one per Interval, or
// sooner when woken, or with backoff after a failed round. It returns nil
// when ctx ends (a round in progress is cancelled and recorded as
// interrupted), or an error if Start was already called.
func (a *Agent) Start(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return fmt.Errorf("agent: agent already started")
	}
	if a.closed.Load() {
		return fmt.Errorf("agent: agent closed")
	}
	a.git.Prune() // leftovers of checkouts a killed agent did not finish
	a.log.Info("agent started", "repo", gitsource.RedactURL(a.opts.Repo), "branch", a.opts.Branch, "path", a.opts.Path, "interval", a.opts.Interval)
	trigger := "start"
	for {
		retry := a.runRound(ctx, trigger)
		if ctx.Err() != nil {
			a.log.Info("agent stopped")
			return nil
		}
		delay := a.opts.Interval
		trigger = "interval"
		if retry {
			a.failStreak++
			delay = min(jitter(time.Second<<min(a.failStreak-1, 20)), a.opts.MaxBackoff)
			trigger = "retry"
		} else {
			a.failStreak = 0
		}
		a.mu.Lock()
		a.status.NextRoundAt = a.clock.Now().Add(delay).UTC()
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			a.log.Info("agent stopped")
			return nil
		case t := <-a.wake:
			trigger = t
		case <-a.clock.After(delay):
		}
	}
}

// jitter returns d scaled by a random factor in [0.8, 1.0].
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.2*rand.Float64()))
}

// roundRun carries one round's working state.
type roundRun struct {
	r       *history.Round
	ctx     context.Context
	retry   bool // retry with backoff
	failed  bool // nothing deployed: result failed
	partial bool
	errs    []string
	deploy  []targets.DesiredApp // artifacts to record
	obs     map[string][]targets.ObservedApp
}

func (rr *roundRun) fail(msg string, retry bool) {
	rr.failed = true
	rr.retry = rr.retry || retry
	rr.errs = append(rr.errs, msg)
}

func (a *Agent) step(rr *roundRun, name string, start time.Time, status history.StepStatus, msg string) {
	d := a.clock.Now().Sub(start)
	rr.r.Steps = append(rr.r.Steps, history.StepResult{Step: name, Status: status, Message: msg, Duration: deploy.Duration(d)})
	if status != history.StepSkipped {
		a.met.stepDuration.WithLabelValues(name).Observe(d.Seconds())
	}
	if status == history.StepFailed {
		a.met.errors.WithLabelValues(name).Inc()
	}
	a.mu.Lock()
	a.status.Running = cloneRound(rr.r)
	a.mu.Unlock()
}

// runRound runs one round and records it; it reports whether the next
// round should come early, with backoff.
func (a *Agent) runRound(ctx context.Context, trigger string) (retry bool) {
	r, err := a.hist.Begin(trigger, a.clock.Now())
	if err != nil {
		a.log.Error("cannot record round", "err", err)
		a.mu.Lock()
		a.status.Errors = []string{err.Error()}
		a.mu.Unlock()
		return true
	}
	rr := &roundRun{r: r, ctx: ctx, obs: map[string][]targets.ObservedApp{}}
	a.mu.Lock()
	a.status.Running = cloneRound(r)
	a.mu.Unlock()
	if trigger == "api" {
		// A manual sync retries everything now.
		clear(a.failures)
		a.releaseAt = time.Time{}
	}
	a.log.Debug("round started", "round", r.ID, "trigger", trigger)

	a.fetchAndRelease(rr)
	a.planAndApply(rr)
	a.finish(rr)
	return rr.retry
}

func (a *Agent) fetchAndRelease(rr *roundRun) {
	ctx := rr.ctx
	t0 := a.clock.Now()
	commit, err := a.git.Fetch(ctx)
	if err == nil {
		a.step(rr, history.StepFetch, t0, history.StepOK, "branch "+a.opts.Branch+" at "+shortSHA(commit))
	} else {
		a.step(rr, history.StepFetch, t0, history.StepFailed, err.Error())
		rr.fail(err.Error()+"; the targets keep serving the last good state", true)
		a.skip(rr, "no commit fetched", history.StepLoad, history.StepBuild)
		return
	}
	rr.r.Fetched = commit
	a.mu.Lock()
	a.status.FetchedCommit = commit
	a.mu.Unlock()

	if commit == a.released && (!a.releaseRetry || a.clock.Now().Before(a.releaseAt)) {
		if a.invalidMsg != "" {
			// Still invalid: keep saying so every round.
			rr.r.SpecErrors = a.invalidDiags
			a.skip(rr, "commit "+shortSHA(commit)+" was already loaded and is invalid", history.StepLoad, history.StepBuild)
			rr.fail(a.invalidMsg, false)
			return
		}
		a.skip(rr, "commit "+shortSHA(commit)+" already released", history.StepLoad, history.StepBuild)
		return
	}
	// A release may take long (builds); record which commit this round
	// works on, so that a crash leaves an interrupted round that says so.
	if err := a.hist.Progress(rr.r); err != nil {
		a.log.Warn("cannot record round progress", "round", rr.r.ID, "err", err)
	}
	t0 = a.clock.Now()
	dir, err := a.git.Checkout(commit)
	if err != nil {
		a.step(rr, history.StepLoad, t0, history.StepFailed, err.Error())
		rr.fail(err.Error(), true)
		a.skip(rr, "checkout failed", history.StepBuild)
		return
	}
	specDir := filepath.Join(dir, filepath.FromSlash(a.opts.Path))
	in, err := a.opts.Releaser.Release(release.WithRepositoryRoot(ctx, dir), specDir, commit)
	if err == nil && in == nil {
		err = errors.New("releaser returned nothing")
	}
	if err != nil {
		msg := fmt.Sprintf("release of %s failed: %v", shortSHA(commit), err)
		a.step(rr, history.StepBuild, t0, history.StepFailed, msg)
		rr.fail(msg+"; the targets keep serving the last good state", true)
		a.released, a.releaseRetry, a.releaseAt, a.invalidMsg, a.invalidDiags = commit, true, time.Time{}, "", nil
		return
	}
	diags := specDiagnostics(in.Diagnostics, dir)
	a.mu.Lock()
	a.status.SpecErrors = nil
	if in.Diagnostics.HasErrors() {
		a.status.SpecErrors = diags
	}
	a.mu.Unlock()
	if len(in.Steps) > 0 {
		for _, rs := range in.Steps {
			s := stepRecord(rs)
			rr.r.Steps = append(rr.r.Steps, s)
			if s.Status != history.StepSkipped {
				a.met.stepDuration.WithLabelValues(s.Step).Observe(s.Duration.Std().Seconds())
			}
			if s.Status == history.StepFailed {
				a.met.errors.WithLabelValues(s.Step).Inc()
			}
		}
	}
	a.released, a.releaseRetry, a.invalidMsg, a.invalidDiags = commit, false, "", nil
	if in.Diagnostics.HasErrors() {
		rr.r.SpecErrors = diags
		var first []string
		for _, d := range diags {
			if d.Severity == "error" {
				first = append(first, d.String())
			}
		}
		msg := fmt.Sprintf("spec of %s is invalid; nothing from it is deployed: %s", shortSHA(commit), strings.Join(first, "; "))
		if len(in.Steps) == 0 {
			a.step(rr, history.StepLoad, t0, history.StepFailed, msg)
			a.skip(rr, "the spec is invalid", history.StepBuild)
		}
		rr.fail(msg, false)
		a.invalidMsg, a.invalidDiags = msg, diags
		return
	}
	if in.Config == nil {
		msg := "releaser returned no spec config"
		a.step(rr, history.StepLoad, t0, history.StepFailed, msg)
		rr.fail(msg, true)
		a.releaseRetry = true
		return
	}
	if len(in.Steps) == 0 {
		a.step(rr, history.StepLoad, t0, history.StepOK, fmt.Sprintf("%d apps, %d targets", len(in.Config.Apps), len(in.Config.Targets)))
	}
	a.mu.Lock()
	prev := a.good
	a.mu.Unlock()
	g := a.newGood(commit, in, prev)
	if len(in.AppErrors) > 0 {
		names := slices.Sorted(maps.Keys(in.AppErrors))
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("app %s: %v", n, in.AppErrors[n]))
			rr.r.Apps = append(rr.r.Apps, history.AppRecord{Round: rr.r.ID, Commit: commit, Time: a.clock.Now().UTC(), App: n,
				Action: "release", Result: string(plan.OutcomeFailed), Error: in.AppErrors[n].Error(), Detail: g.holdOrKeep(n)})
		}
		msg := "release failed for " + strings.Join(parts, "; ")
		if len(in.Steps) == 0 {
			a.step(rr, history.StepBuild, t0, history.StepFailed, msg)
		}
		rr.partial = true
		rr.errs = append(rr.errs, msg)
		a.releaseRetry = true
		a.releaseFails++
		a.releaseAt = a.clock.Now().Add(a.appBackoff(a.releaseFails))
	} else {
		a.releaseFails = 0
		if len(in.Steps) == 0 {
			a.step(rr, history.StepBuild, t0, history.StepOK, fmt.Sprintf("%d apps built, pushed and signed", len(g.released)))
		}
	}
	a.mu.Lock()
	a.good = g
	a.mu.Unlock()
	keep := []string{commit}
	if prev != nil {
		keep = append(keep, prev.commit)
	}
	a.git.Prune(keep...)
}

// newGood merges a valid release with the previous good state: an app that
// failed to release keeps its previous desired version, or is held when it
// has none.
func (a *Agent) newGood(commit string, in *release.RoundInput, prev *goodState) *goodState {
	g := &goodState{commit: commit, cfg: in.Config, digests: map[string]string{}, released: map[string]string{},
		appErrs: map[string]string{}, holds: map[string]string{}}
	d := plan.Desired{Commit: commit}
	for _, dt := range in.Desired.Targets {
		nt := plan.DesiredTarget{Name: dt.Name, Type: dt.Type, Apps: slices.Clone(dt.Apps)}
		for _, app := range dt.Apps {
			g.released[app.Name] = app.Digest
		}
		d.Targets = append(d.Targets, nt)
	}
	for n, err := range in.AppErrors {
		g.appErrs[n] = err.Error()
	}
	for i := range d.Targets {
		dt := &d.Targets[i]
		has := map[string]bool{}
		for _, app := range dt.Apps {
			has[app.Name] = true
		}
		var want []string
		if t := in.Config.Target(dt.Name); t != nil {
			want = t.Apps
		}
		for _, n := range want {
			if has[n] || g.appErrs[n] == "" {
				continue
			}
			if old := prev.app(dt.Name, n); old != nil {
				dt.Apps = append(dt.Apps, *old)
				continue
			}
			g.holds[n] = "its release failed and there is no previous version to keep: " + g.appErrs[n]
		}
		for _, app := range dt.Apps {
			if _, ok := g.digests[app.Name]; !ok {
				g.digests[app.Name] = app.Digest
			}
		}
	}
	// Kept apps carry the secrets of the release they came from; no
	// chain of earlier states is retained.
	g.secrets = plan.SecretsFrom(d)
	g.desired = d
	return g
}

func (g *goodState) app(target, name string) *targets.DesiredApp {
	if g == nil {
		return nil
	}
	for _, dt := range g.desired.Targets {
		if dt.Name != target {
			continue
		}
		for i := range dt.Apps {
			if dt.Apps[i].Name == name {
				a := dt.Apps[i]
				return &a
			}
		}
	}
	return nil
}

func (g *goodState) holdOrKeep(app string) string {
	if h, ok := g.holds[app]; ok {
		return "held: " + h
	}
	return "keeps its previous version " + plan.ShortDigest(g.digests[app])
}

func (a *Agent) skip(rr *roundRun, why string, steps ...string) {
	for _, s := range steps {
		rr.r.Steps = append(rr.r.Steps, history.StepResult{Step: s, Status: history.StepSkipped, Message: why})
	}
}

func (a *Agent) appBackoff(n int) time.Duration {
	d := a.opts.Interval << min(n-1, 20)
	return jitter(min(d, max(a.opts.MaxBackoff, a.opts.Interval)))
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// specDiagnostics converts hcl diagnostics, making file names relative to
// the checkout root.
func specDiagnostics(ds hcl.Diagnostics, root string) []history.SpecDiagnostic {
	var out []history.SpecDiagnostic
	for _, d := range ds {
		sd := history.SpecDiagnostic{Summary: d.Summary, Detail: d.Detail, Severity: "error"}
		if d.Severity == hcl.DiagWarning {
			sd.Severity = "warning"
		}
		if d.Subject != nil {
			f := d.Subject.Filename
			if rel, err := filepath.Rel(root, f); err == nil && filepath.IsLocal(rel) {
				f = rel
			}
			sd.File, sd.Line, sd.Column = filepath.ToSlash(f), d.Subject.Start.Line, d.Subject.Start.Column
		}
		out = append(out, sd)
	}
	return out
}

// stepRecord turns a step the releaser reports into the round's history
// record of it.
func stepRecord(s release.StepReport) history.StepResult {
	st := history.StepOK
	switch s.Outcome {
	case release.StepFailed:
		st = history.StepFailed
	case release.StepSkipped:
		st = history.StepSkipped
	}
	return history.StepResult{Step: s.Name, Status: st, Message: s.Message, Duration: deploy.Duration(s.Duration)}
}

// cloneRound returns a copy of r that shares no slices with it, for the
// status API while the round goroutine goes on appending.
func cloneRound(r *history.Round) *history.Round {
	c := *r
	c.Steps = slices.Clone(r.Steps)
	c.SpecErrors = slices.Clone(r.SpecErrors)
	c.Apps = slices.Clone(r.Apps)
	return &c
}
