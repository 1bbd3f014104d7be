package history

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/parallel"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	bolt "go.etcd.io/bbolt"
)

// RoundResult is how an agent round ended.
type RoundResult string

const (
	// RoundRunning marks a round that has started and not finished.
	RoundRunning RoundResult = "running"
	// RoundSucceeded means every step worked and every app change applied.
	RoundSucceeded RoundResult = "succeeded"
	// RoundPartial means the round deployed what it could, but some apps
	// failed to build or apply, or some targets could not be planned.
	RoundPartial RoundResult = "partial"
	// RoundFailed means the round changed nothing: git, the spec, the
	// release or planning failed as a whole.
	RoundFailed RoundResult = "failed"
	// RoundInterrupted means the agent stopped (or was killed) mid-round.
	// A round found running when the agent starts is marked interrupted.
	RoundInterrupted RoundResult = "interrupted"
)

// Step names of a round, in order. A releaser that reports its own steps
// (release.StepReport) may add others between load and plan, such as
// "push" and "sign".
const (
	StepFetch = "fetch"
	StepLoad  = "load"
	StepBuild = "build"
	StepPlan  = "plan"
	StepApply = "apply"
)

// StepStatus is the result of one step.
type StepStatus string

const (
	// StepOK means the step worked.
	StepOK StepStatus = "ok"
	// StepFailed means the step failed; Message says why.
	StepFailed StepStatus = "failed"
	// StepSkipped means the step was not needed (e.g. no new commit to
	// build) or could not run because an earlier step failed.
	StepSkipped StepStatus = "skipped"
)

// StepResult is the condition one step of a round left behind.
type StepResult struct {
	// Step is the step's name (StepFetch, ...).
	Step string `json:"step"`
	// Status is ok, failed or skipped.
	Status StepStatus `json:"status"`
	// Message explains a failed or skipped step, or summarises an ok one.
	Message string `json:"message,omitempty"`
	// Duration is how long the step took.
	Duration deploy.Duration `json:"duration"`
}

// SpecDiagnostic is a spec error or warning with its source position,
// relative to the repository root.
type SpecDiagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
}

// String renders d like a compiler: "ferry.hcl:3:5: error: summary: detail".
func (d SpecDiagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		fmt.Fprintf(&b, "%s:%d:%d: ", d.File, d.Line, d.Column)
	}
	b.WriteString(d.Severity + ": " + d.Summary)
	if d.Detail != "" {
		b.WriteString(": " + d.Detail)
	}
	return b.String()
}

// AppRecord is what one round did to one app on one target (Target is
// empty for a release failure, which concerns the app everywhere).
type AppRecord struct {
	// Round is the round's ID.
	Round uint64 `json:"round"`
	// Commit is the commit the round deployed.
	Commit string `json:"commit,omitempty"`
	// Time is when the change finished.
	Time time.Time `json:"time"`
	// App and Target name the app and the target.
	App    string `json:"app"`
	Target string `json:"target,omitempty"`
	// Digest is the version the round wanted the app at.
	Digest string `json:"digest,omitempty"`
	// Previous is the version that ran before, if any.
	Previous string `json:"previous,omitempty"`
	// Action is create, update, delete or no-op, or "hold" for an app the
	// round left alone (suspended, failed to build, waiting to retry, its
	// digest rolled back by the target), or "release" for a failed build,
	// push or sign, or "host-rollback" when the target reported having
	// rolled the app back by itself (Previous → Digest, Detail says why),
	// or "unpin" / "unhold" when a commit superseded a rollback pin / a
	// host rollback.
	Action string `json:"action"`
	// Result is applied, failed, unchanged, skipped or held.
	Result string `json:"result"`
	// Pinned is true when the digest came from a rollback pin.
	Pinned bool `json:"pinned,omitempty"`
	// Duration is how long the change took.
	Duration deploy.Duration `json:"duration,omitempty"`
	// Error says why it failed.
	Error string `json:"error,omitempty"`
	// Detail says what runs now after a failure, or why the app was held.
	Detail string `json:"detail,omitempty"`
	// Rollout is, on a fleet target, what the round's plan previewed
	// (plan.RolloutLines joined by "; "): "rollout: roll out DIGEST to N
	// matching devices in W waves (...)" and the current rollout's state.
	Rollout string `json:"rollout,omitempty"`
}

// Actions of AppRecords about rollbacks a target made by itself.
const (
	// ActionHostRollback: the target rolled the app back (Previous is the
	// digest rolled back from, Digest the one that runs again).
	ActionHostRollback = "host-rollback"
	// ActionUnhold: a commit changed the app, so the host rollback no
	// longer holds its digest back.
	ActionUnhold = "unhold"
)

// Round is the record of one agent round.
type Round struct {
	// ID increases by one per round, across restarts.
	ID uint64 `json:"id"`
	// Trigger says what started the round: "start", "interval", "retry",
	// "webhook:github", "api", ...
	Trigger string `json:"trigger"`
	// Commit is the commit whose desired state the round planned (the
	// newest fetched one when it was valid, else the last good one).
	Commit string `json:"commit,omitempty"`
	// Fetched is the newest commit of the branch the round saw.
	Fetched string `json:"fetched,omitempty"`
	// Author and Message are Commit's author ("Name <email>") and the
	// first line of its message, when the mirror has it.
	Author  string `json:"author,omitempty"`
	Message string `json:"message,omitempty"`
	// StartedAt and FinishedAt bound the round; FinishedAt is zero while
	// it runs.
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Result is how it ended.
	Result RoundResult `json:"result"`
	// Error summarises why the round failed or was partial.
	Error string `json:"error,omitempty"`
	// Steps are the conditions of each step, in order.
	Steps []StepResult `json:"steps,omitempty"`
	// SpecErrors are the spec's diagnostics when loading it failed, with
	// file:line.
	SpecErrors []SpecDiagnostic `json:"spec_errors,omitempty"`
	// Apps are the per-app, per-target records, sorted by app and target.
	Apps []AppRecord `json:"apps,omitempty"`
}

// Step returns the result of the named step, or nil.
func (r *Round) Step(name string) *StepResult {
	for i := range r.Steps {
		if r.Steps[i].Step == name {
			return &r.Steps[i]
		}
	}
	return nil
}

// Pin holds an app at one digest (a rollback) until a newer commit changes
// that app.
type Pin struct {
	// App is the pinned app.
	App string `json:"app"`
	// Digest is the version the app is held at.
	Digest string `json:"digest"`
	// BaseDigest is the digest the spec wanted when the pin was made; a
	// commit whose desired digest differs supersedes the pin. Empty until
	// the agent has seen the app in a release.
	BaseDigest string `json:"base_digest,omitempty"`
	// At is when the pin was made.
	At time.Time `json:"at"`
}

// HostRollback is a rollback a target made by itself (a ferry-host whose
// health probes failed within the version's bake), as the agent recorded
// it. While it is in force the agent does not deploy the version rolled
// back from to that target again; a commit that changes the app's desired
// digest supersedes it.
type HostRollback struct {
	// Target and App name where it happened.
	Target string `json:"target"`
	App    string `json:"app"`
	// From is the digest that was rolled back (the one held back), To the
	// one that runs again.
	From string `json:"from"`
	To   string `json:"to"`
	// Reason is the target's reason.
	Reason string `json:"reason"`
	// At is when the target rolled back (its clock).
	At time.Time `json:"at"`
	// Round is the agent round that first saw it.
	Round uint64 `json:"round"`
	// Superseded is set once a commit changed the app's desired digest:
	// the rollback no longer holds anything back.
	Superseded bool `json:"superseded,omitempty"`
}

// Suspension marks an app the agent leaves as it is.
type Suspension struct {
	// App is the suspended app.
	App string `json:"app"`
	// At is when it was suspended.
	At time.Time `json:"at"`
}

var (
	bucketRounds    = []byte("rounds")
	bucketApps      = []byte("apps")
	bucketArtifacts = []byte("artifacts")
	bucketPins      = []byte("pins")      // Pin by app name
	bucketSuspended = []byte("suspended") // Suspension by app name
	bucketMeta      = []byte("meta")
	// HostRollback by "TARGET/APP"
	bucketHostRollbacks = []byte("host_rollbacks")

	metaLastSuccess = []byte("last_success")
)

// Store is the agent's embedded bbolt database. Every write is one
// transaction; bbolt makes each commit durable, so after SIGKILL the file
// holds exactly the committed transactions. It is safe for concurrent use.
type Store struct {
	db        *bolt.DB
	retention int
}

// Success is the last round that succeeded, as Store.LastSuccess returns it
// (and meta/last_success holds it).
type Success struct {
	// Commit is the commit the round deployed.
	Commit string `json:"commit"`
	// At is when the round finished.
	At time.Time `json:"at"`
	// Round is the round's ID.
	Round uint64 `json:"round"`
}

// Open opens (creating) dir/history.db and marks any round left
// running by a previous process as interrupted. It returns the IDs of the
// rounds so marked.
func Open(dir string, retention int) (*Store, []uint64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "history.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, nil, fmt.Errorf("history: %w: %s", ErrHistoryLocked, filepath.Join(dir, "history.db"))
		}
		return nil, nil, fmt.Errorf("history: open: %w", err)
	}
	h := &Store{db: db, retention: parallel.OrDefault(retention, 5000)}
	var interrupted []uint64
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRounds, bucketApps, bucketArtifacts, bucketPins, bucketSuspended, bucketMeta, bucketHostRollbacks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		rb := tx.Bucket(bucketRounds)
		// Only the newest rounds can be running; walk back a few.
		c := rb.Cursor()
		n := 0
		for k, v := c.Last(); k != nil && n < 16; k, v = c.Prev() {
			n++
			var r Round
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("round %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if r.Result != RoundRunning {
				continue
			}
			r.Result = RoundInterrupted
			r.Error = "the agent stopped before the round finished; the next round converges"
			b, err := json.Marshal(&r)
			if err != nil {
				return err
			}
			if err := rb.Put(k, b); err != nil {
				return err
			}
			interrupted = append(interrupted, r.ID)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	return h, interrupted, nil
}

// Close closes the database and releases its lock.
func (h *Store) Close() error { return h.db.Close() }

func u64(id uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return b[:]
}

// Begin records a new running round and returns it with its ID set.
func (h *Store) Begin(trigger string, start time.Time) (*Round, error) {
	r := &Round{Trigger: trigger, StartedAt: start.UTC(), Result: RoundRunning}
	err := h.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRounds)
		id, err := rb.NextSequence()
		if err != nil {
			return err
		}
		r.ID = id
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return rb.Put(u64(id), b)
	})
	if err != nil {
		return nil, fmt.Errorf("history: begin round: %w", err)
	}
	return r, nil
}

// Progress records a running round as it is so far (its fetched commit and
// steps), so that a round cut short by a crash says what it was doing.
func (h *Store) Progress(r *Round) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	err = h.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRounds).Put(u64(r.ID), b) })
	if err != nil {
		return fmt.Errorf("history: record round progress: %w", err)
	}
	return nil
}

// Finish records a finished round, its app records, the artifacts it
// deployed (so that a later rollback knows what to deploy) and, when it
// succeeded, the last successful commit; then it prunes rounds beyond the
// retention. All in one transaction.
func (h *Store) Finish(r *Round, artifacts []targets.DesiredApp) error {
	slices.SortFunc(r.Apps, func(a, b AppRecord) int {
		return cmpOr(strings.Compare(a.App, b.App), strings.Compare(a.Target, b.Target))
	})
	err := h.db.Update(func(tx *bolt.Tx) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketRounds).Put(u64(r.ID), b); err != nil {
			return err
		}
		ab := tx.Bucket(bucketApps)
		for _, rec := range r.Apps {
			sub, err := ab.CreateBucketIfNotExists([]byte(rec.App))
			if err != nil {
				return err
			}
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := sub.Put(appKey(r.ID, rec), v); err != nil {
				return err
			}
		}
		art := tx.Bucket(bucketArtifacts)
		for _, a := range artifacts {
			key := []byte(a.Name + "@" + a.Digest)
			if art.Get(key) != nil {
				continue
			}
			a = plan.StripSecrets(a)
			v, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if err := art.Put(key, v); err != nil {
				return err
			}
		}
		if r.Result == RoundSucceeded && r.Commit != "" {
			v, err := json.Marshal(Success{Commit: r.Commit, At: r.FinishedAt, Round: r.ID})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketMeta).Put(metaLastSuccess, v); err != nil {
				return err
			}
		}
		return h.prune(tx, r.ID)
	})
	if err != nil {
		return fmt.Errorf("history: record round %d: %w", r.ID, err)
	}
	return nil
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// prune deletes rounds (and their app records) older than the retention.
func (h *Store) prune(tx *bolt.Tx, newest uint64) error {
	if newest <= uint64(h.retention) {
		return nil
	}
	cutoff := u64(newest - uint64(h.retention) + 1)
	rb := tx.Bucket(bucketRounds)
	c := rb.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, cutoff) < 0; k, _ = c.First() {
		if err := rb.Delete(k); err != nil {
			return err
		}
	}
	ab := tx.Bucket(bucketApps)
	return ab.ForEachBucket(func(name []byte) error {
		sub := ab.Bucket(name)
		sc := sub.Cursor()
		for k, _ := sc.First(); k != nil && bytes.Compare(k[:8], cutoff) < 0; k, _ = sc.First() {
			if err := sub.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Rounds returns up to limit rounds, newest first (limit ≤ 0 means 100).
func (h *Store) Rounds(limit int) ([]Round, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []Round
	err := h.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRounds).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var r Round
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return out, nil
}

// Round returns round id, or nil.
func (h *Store) Round(id uint64) (*Round, error) {
	var r *Round
	err := h.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRounds).Get(u64(id))
		if v == nil {
			return nil
		}
		r = new(Round)
		return json.Unmarshal(v, r)
	})
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return r, nil
}

// AppHistory returns up to limit records of app, newest first (limit ≤ 0
// means 100).
func (h *Store) AppHistory(app string, limit int) ([]AppRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []AppRecord
	err := h.db.View(func(tx *bolt.Tx) error {
		sub := tx.Bucket(bucketApps).Bucket([]byte(app))
		if sub == nil {
			return nil
		}
		c := sub.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var rec AppRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return out, nil
}

// Artifact returns the recorded desired app for app@digest.
func (h *Store) Artifact(app, digest string) (*targets.DesiredApp, error) {
	var a *targets.DesiredApp
	err := h.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketArtifacts).Get([]byte(app + "@" + digest))
		if v == nil {
			return nil
		}
		a = new(targets.DesiredApp)
		return json.Unmarshal(v, a)
	})
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return a, nil
}

// ArtifactDigests returns the digests recorded for app.
func (h *Store) ArtifactDigests(app string) ([]string, error) {
	var out []string
	prefix := []byte(app + "@")
	err := h.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketArtifacts).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	return out, err
}

// LastSuccess returns the last round that succeeded; the zero Success when
// there was none.
func (h *Store) LastSuccess() (Success, error) {
	var ls Success
	err := h.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(metaLastSuccess)
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &ls)
	})
	return ls, err
}

// SetPin stores p, replacing any pin of p.App, in one transaction.
func (h *Store) SetPin(p Pin) error { return h.put(bucketPins, p.App, p) }

// DeletePin removes app's pin; no pin is no error.
func (h *Store) DeletePin(app string) error { return h.del(bucketPins, app) }

// Suspend stores s, replacing any suspension of s.App, in one transaction.
func (h *Store) Suspend(s Suspension) error { return h.put(bucketSuspended, s.App, s) }

// Resume removes app's suspension; none is no error.
func (h *Store) Resume(app string) error { return h.del(bucketSuspended, app) }

// SetHostRollback stores rb under "TARGET/APP", replacing the one stored
// for that app on that target, in one transaction.
func (h *Store) SetHostRollback(rb HostRollback) error {
	return h.put(bucketHostRollbacks, rb.Target+"/"+rb.App, rb)
}

// put stores v, JSON-encoded, under key in bucket, in one transaction.
func (h *Store) put(bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return h.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), b) })
}

// del removes key from bucket in one transaction; a missing key is no error.
func (h *Store) del(bucket []byte, key string) error {
	return h.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(key)) })
}

// Pins returns the rollback pins by app name.
func (h *Store) Pins() (map[string]Pin, error) {
	out := map[string]Pin{}
	err := h.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPins).ForEach(func(k, v []byte) error {
			var p Pin
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			out[string(k)] = p
			return nil
		})
	})
	return out, err
}

// Suspended returns the suspended apps by app name.
func (h *Store) Suspended() (map[string]Suspension, error) {
	out := map[string]Suspension{}
	err := h.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSuspended).ForEach(func(k, v []byte) error {
			var s Suspension
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			out[string(k)] = s
			return nil
		})
	})
	return out, err
}

// HostRollbacks returns the rollbacks the targets made by themselves, by
// "TARGET/APP".
func (h *Store) HostRollbacks() (map[string]HostRollback, error) {
	out := map[string]HostRollback{}
	err := h.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHostRollbacks).ForEach(func(k, v []byte) error {
			var r HostRollback
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out[string(k)] = r
			return nil
		})
	})
	return out, err
}
