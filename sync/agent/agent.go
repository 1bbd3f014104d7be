package agent

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferry-wasm/ferry/internal/httproute"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-wasm/ferry/internal/parallel"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent/gitsource"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/notify"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
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
	// ExtraRoutes, when set, registers more routes on the status API's
	// mux, served under the same bearer token (the fleet hub's admin API).
	ExtraRoutes func(mux *httproute.Mux)
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
	// State, when set, keeps a copy of the agent's durable state (rollback
	// pins, suspensions, host rollbacks, the recent rounds and app history,
	// and the artifacts they name: history.Snapshot) outside DataDir, so
	// that an agent started with an empty DataDir — a new leader in a
	// cluster — continues where the last one stopped. Start loads it into
	// the history before the first round (retrying while it cannot be
	// read); every finished round and every Pin, Unpin, Suspend and
	// Resume saves it. While Start is not running, those four refuse with
	// ErrNotLeader, so that a standby replica never overwrites the
	// leader's state. Nil means the state lives in DataDir only.
	State StateStore
	// Notify, when set, receives the round's notifications (apply failed,
	// rollback, health degraded; see notify.go), from the round goroutine:
	// it must not block. Nil means none.
	Notify func(notify.Event)
}

// StateStore keeps the agent's durable state, as opaque bytes, outside
// its data directory (in a cluster: a ConfigMap). Load returns nil and no
// error when nothing was saved yet; Save replaces what was saved; MaxBytes
// is the largest state Save takes (the agent drops its oldest history to
// fit). Load and Save are called from one goroutine at a time.
type StateStore interface {
	Load(ctx context.Context) ([]byte, error)
	Save(ctx context.Context, state []byte) error
	MaxBytes() int
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
//     alone. Both persist in the history database, and with
//     Options.State also outside it: a new leader with an empty DataDir
//     restores them (and the recent history) before its first round.
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
	bus        Bus         // live events (events.go)
	deliveries deliveryLRU // webhook delivery ids seen (webhook.go)
	started    atomic.Bool
	closed     atomic.Bool
	leading    atomic.Bool // Start runs and restored Options.State
	stateMu    sync.Mutex  // one export and save of Options.State at a time

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
	unhealthy    map[string]bool        // target + "/" + app notified unhealthy (notify.go)
}

// appFailure is an app whose change failed on a target, waiting to be
// retried at that digest.
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
	a.git = &gitsource.Source{URL: opts.Repo, Branch: opts.Branch, Dir: opts.DataDir, Auth: opts.Auth, Timeout: opts.FetchTimeout, Log: a.log}
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
	if a.opts.State != nil {
		if err := a.restoreState(ctx); err != nil {
			if ctx.Err() != nil {
				a.log.Info("agent stopped")
				return nil
			}
			return err
		}
	}
	a.leading.Store(true)
	defer a.leading.Store(false)
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
