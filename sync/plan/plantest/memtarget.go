package plantest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/targets"
)

// MemTarget is the narrow in-memory targets.Target used by this package's
// unit tests (the real host target is tested in targets/host). It keeps real
// semantics: Put switches to a new version only when it is healthy and keeps
// the previous one for RollBack; a digest configured to fail either never
// becomes healthy (the previous version keeps serving) or, with
// failAfterSwitch, is switched to and then reported unhealthy. With Async
// set it behaves like an asynchronous target (a Kubernetes Deployment, a
// fleet): Put switches to the new version, reports it progressing and
// returns at once; Settle finishes the rollout.
type MemTarget struct {
	Mu          sync.Mutex
	apps        map[string]*memApp
	Fail        map[string]FailMode // by digest
	Unavailable bool
	PutDelay    time.Duration
	OnPut       func(name string) // called at the start of each Put, unlocked
	// Async makes Put return targets.PhaseProgressing: the new version is
	// recorded, unhealthy and progressing, until Settle.
	Async bool

	puts, deletes, rollbacks int
	inflight, maxInflight    int
	Secrets                  map[string]map[string]string // last secrets per app
}

// FailMode says how a Put of an app named in MemTarget.Fail goes wrong.
type FailMode int

const (
	FailKeep        FailMode = iota + 1 // new version never healthy; old keeps serving
	FailAfterSwitch                     // switched to new, then unhealthy
)

type memApp struct {
	cur     targets.DesiredApp
	prev    *targets.DesiredApp
	managed bool
	healthy bool
	status  string
	phase   targets.Phase // empty: derived from healthy and status
}

var _ targets.Target = (*MemTarget)(nil)
var _ targets.RollBacker = (*MemTarget)(nil)

// NewMem returns an empty in-memory target.
func NewMem() *MemTarget {
	return &MemTarget{apps: map[string]*memApp{}, Fail: map[string]FailMode{}, Secrets: map[string]map[string]string{}}
}

// Observe implements targets.Target.
func (m *MemTarget) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.Mu.Lock()
	defer m.Mu.Unlock()
	if m.Unavailable {
		return nil, fmt.Errorf("mem: connection refused: %w", targets.ErrUnavailable)
	}
	out := make([]targets.ObservedApp, 0, len(m.apps))
	for name, a := range m.apps {
		o := targets.ObservedApp{Name: name, Ref: a.cur.Ref, Digest: a.cur.Digest, Managed: a.managed, Healthy: a.healthy, Status: a.status, Phase: a.phase}
		if a.prev != nil {
			o.Previous = a.prev.Digest
		}
		out = append(out, o)
	}
	// Deliberately unsorted (map order): the engine must not depend on it.
	return out, nil
}

// Put implements targets.Target: it checks the digest and ref, then
// switches the app (or fails as Fail says). With Async it reports the
// switched-to version progressing.
func (m *MemTarget) Put(ctx context.Context, want targets.DesiredApp) (targets.PutResult, error) {
	if want.Name == "" || !memValidDigest(want.Digest) {
		return targets.PutResult{}, fmt.Errorf("mem: bad app %q digest %q", want.Name, want.Digest)
	}
	if want.Ref != "" && !strings.HasSuffix(want.Ref, "@"+want.Digest) {
		return targets.PutResult{}, fmt.Errorf("mem: ref %q does not match digest", want.Ref)
	}
	m.Mu.Lock()
	m.puts++
	m.inflight++
	m.maxInflight = max(m.maxInflight, m.inflight)
	onPut, delay := m.OnPut, m.PutDelay
	m.Mu.Unlock()
	defer func() { m.Mu.Lock(); m.inflight--; m.Mu.Unlock() }()
	if onPut != nil {
		onPut(want.Name)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return targets.PutResult{}, ctx.Err()
		}
	}
	m.Mu.Lock()
	defer m.Mu.Unlock()
	if err := ctx.Err(); err != nil {
		return targets.PutResult{}, err
	}
	a := m.apps[want.Name]
	m.Secrets[want.Name] = maps.Clone(want.Secrets)
	switch m.Fail[want.Digest] {
	case FailKeep:
		return targets.PutResult{}, fmt.Errorf("mem: %s: probe failed: %w", want.Digest, targets.ErrUnhealthy)
	case FailAfterSwitch:
		m.switchTo(want.Name, a, want, false)
		return targets.PutResult{}, fmt.Errorf("mem: %s: unhealthy after switch: %w", want.Digest, targets.ErrUnhealthy)
	}
	if m.Async {
		m.switchTo(want.Name, a, want, false)
		p := m.apps[want.Name]
		p.status, p.phase = "progressing", targets.PhaseProgressing
		return targets.PutResult{Phase: targets.PhaseProgressing, Message: "rolling out"}, nil
	}
	m.switchTo(want.Name, a, want, true)
	return targets.PutResult{Phase: targets.PhaseReady}, nil
}

// Settle finishes the rollout of an app that an Async Put left
// progressing: it becomes ready and healthy. It reports whether the app
// was progressing.
func (m *MemTarget) Settle(name string) bool {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	a := m.apps[name]
	if a == nil || a.phase != targets.PhaseProgressing {
		return false
	}
	a.healthy, a.status, a.phase = true, "serving", targets.PhaseReady
	return true
}

// SetPhase sets the phase an app reports (empty: derived from its health),
// with the status word and health that go with it, as if the target moved
// by itself.
func (m *MemTarget) SetPhase(name string, phase targets.Phase) {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	a := m.apps[name]
	if a == nil {
		return
	}
	a.phase = phase
	switch phase {
	case targets.PhaseReady:
		a.healthy, a.status = true, "serving"
	case targets.PhaseProgressing:
		a.healthy, a.status = false, "progressing"
	case targets.PhaseDegraded:
		a.healthy, a.status = false, "degraded"
	case targets.PhaseFailed:
		a.healthy, a.status = false, "failed"
	}
}

func (m *MemTarget) switchTo(name string, a *memApp, want targets.DesiredApp, healthy bool) {
	want.Secrets = nil
	status := "serving"
	if !healthy {
		status = "failed"
	}
	if a == nil {
		m.apps[name] = &memApp{cur: want, managed: true, healthy: healthy, status: status}
		return
	}
	if a.cur.Digest != want.Digest {
		old := a.cur
		a.prev = &old
	}
	a.cur, a.managed, a.healthy, a.status, a.phase = want, true, healthy, status, ""
}

// Delete implements targets.Target.
func (m *MemTarget) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.Mu.Lock()
	defer m.Mu.Unlock()
	m.deletes++
	delete(m.apps, name)
	return nil
}

// RollBack implements targets.RollBacker.
func (m *MemTarget) RollBack(ctx context.Context, name string) error {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	a := m.apps[name]
	if a == nil || a.prev == nil {
		return errors.New("mem: nothing to roll back to")
	}
	m.rollbacks++
	cur := a.cur
	a.cur, a.prev = *a.prev, &cur
	a.healthy, a.status, a.phase = true, "serving", ""
	return nil
}

// Set installs an app directly, as if someone deployed it out of band.
func (m *MemTarget) Set(name, digest string, managed, healthy bool) {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	status := "serving"
	if !healthy {
		status = "failed"
	}
	m.apps[name] = &memApp{cur: targets.DesiredApp{Name: name, Digest: digest, Ref: "reg.test/" + name + "@" + digest},
		managed: managed, healthy: healthy, status: status}
}

// Digests returns app → running digest.
func (m *MemTarget) Digests() map[string]string {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	out := map[string]string{}
	for n, a := range m.apps {
		out[n] = a.cur.Digest
	}
	return out
}

// Counts returns how many Puts, Deletes and RollBacks ran, and the most
// Puts that ran at once.
func (m *MemTarget) Counts() (puts, deletes, rollbacks, maxInflight int) {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	return m.puts, m.deletes, m.rollbacks, m.maxInflight
}

// LockingMem adds a Locker to MemTarget: one holder at a time.
type LockingMem struct {
	*MemTarget
	sem     chan struct{}
	Waiting atomic.Int32
	Holders []string
}

// NewLockingMem returns an empty in-memory target with an apply lock.
func NewLockingMem() *LockingMem {
	return &LockingMem{MemTarget: NewMem(), sem: make(chan struct{}, 1)}
}

// Lock implements targets.Locker: it waits for the lock (or
// ctx) and records holder.
func (l *LockingMem) Lock(ctx context.Context, holder string) (func(), error) {
	l.Waiting.Add(1)
	defer l.Waiting.Add(-1)
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.Mu.Lock()
	l.Holders = append(l.Holders, holder)
	l.Mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { <-l.sem }) }, nil
}

// NoRollBack hides MemTarget's RollBack.
type NoRollBack struct{ T *MemTarget }

// Observe implements targets.Target.
func (n NoRollBack) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	return n.T.Observe(ctx)
}

// Put implements targets.Target.
func (n NoRollBack) Put(ctx context.Context, w targets.DesiredApp) (targets.PutResult, error) {
	return n.T.Put(ctx, w)
}

// Delete implements targets.Target.
func (n NoRollBack) Delete(ctx context.Context, name string) error { return n.T.Delete(ctx, name) }

// DiffingMem adds a targets.Differ to MemTarget: Diff reports what Drift
// holds for the app (or Err), as a Kubernetes driver would report objects
// edited on the cluster.
type DiffingMem struct {
	*MemTarget
	// Drift is the object drift reported per app name.
	Drift map[string][]targets.ObjectDiff
	// Err, when set, is returned by every Diff.
	Err error
	// Diffed records the apps Diff was asked about, in call order.
	Diffed []string
}

var _ targets.Differ = (*DiffingMem)(nil)

// NewDiffingMem returns an empty in-memory target that reports drift.
func NewDiffingMem() *DiffingMem {
	return &DiffingMem{MemTarget: NewMem(), Drift: map[string][]targets.ObjectDiff{}}
}

// Diff implements targets.Differ.
func (d *DiffingMem) Diff(ctx context.Context, want targets.DesiredApp) ([]targets.ObjectDiff, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.Mu.Lock()
	defer d.Mu.Unlock()
	d.Diffed = append(d.Diffed, want.Name)
	if d.Err != nil {
		return nil, d.Err
	}
	return slices.Clone(d.Drift[want.Name]), nil
}

// Dg returns a valid, distinct digest for a label.
func Dg(label string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(label)))
}

// App returns a desired app with a valid ref and config.
func App(name, label string) targets.DesiredApp {
	d := Dg(label)
	return targets.DesiredApp{Name: name, Ref: "reg.test/" + name + "@" + d, Digest: d}
}

// Tmap builds a target map from name, target pairs.
func Tmap(kv ...any) map[string]targets.Target {
	m := map[string]targets.Target{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(targets.Target)
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// DeployVariable is deploy.Variable, for short test tables.
type DeployVariable = deploy.Variable

// Ptr returns a pointer to a copy of v.
func Ptr[T any](v T) *T { return &v }

// memValidDigest reports whether s looks like "sha256:<64 hex>" or
// "sha512:<128 hex>".
func memValidDigest(s string) bool {
	algo, hex, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	switch algo {
	case "sha256":
		if len(hex) != 64 {
			return false
		}
	case "sha512":
		if len(hex) != 128 {
			return false
		}
	default:
		return false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
