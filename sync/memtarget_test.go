package sync

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

// memTarget is the narrow in-memory targets.Target used by this package's
// unit tests (the real host target is tested in targets/host). It keeps real
// semantics: Put switches to a new version only when it is healthy and keeps
// the previous one for RollBack; a digest configured to fail either never
// becomes healthy (the previous version keeps serving) or, with
// failAfterSwitch, is switched to and then reported unhealthy.
type memTarget struct {
	mu          sync.Mutex
	apps        map[string]*memApp
	fail        map[string]failMode // by digest
	unavailable bool
	putDelay    time.Duration
	onPut       func(name string) // called at the start of each Put, unlocked

	puts, deletes, rollbacks int
	inflight, maxInflight    int
	secrets                  map[string]map[string]string // last secrets per app
}

type failMode int

const (
	failKeep        failMode = iota + 1 // new version never healthy; old keeps serving
	failAfterSwitch                     // switched to new, then unhealthy
)

type memApp struct {
	cur     targets.DesiredApp
	prev    *targets.DesiredApp
	managed bool
	healthy bool
	status  string
}

var _ targets.Target = (*memTarget)(nil)
var _ targets.RollBacker = (*memTarget)(nil)

func newMem() *memTarget {
	return &memTarget{apps: map[string]*memApp{}, fail: map[string]failMode{}, secrets: map[string]map[string]string{}}
}

func (m *memTarget) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unavailable {
		return nil, fmt.Errorf("mem: connection refused: %w", targets.ErrUnavailable)
	}
	out := make([]targets.ObservedApp, 0, len(m.apps))
	for name, a := range m.apps {
		o := targets.ObservedApp{Name: name, Ref: a.cur.Ref, Digest: a.cur.Digest, Managed: a.managed, Healthy: a.healthy, Status: a.status}
		if a.prev != nil {
			o.Previous = a.prev.Digest
		}
		out = append(out, o)
	}
	// Deliberately unsorted (map order): the engine must not depend on it.
	return out, nil
}

func (m *memTarget) Put(ctx context.Context, want targets.DesiredApp) error {
	if want.Name == "" || !memValidDigest(want.Digest) {
		return fmt.Errorf("mem: bad app %q digest %q", want.Name, want.Digest)
	}
	if want.Ref != "" && !strings.HasSuffix(want.Ref, "@"+want.Digest) {
		return fmt.Errorf("mem: ref %q does not match digest", want.Ref)
	}
	m.mu.Lock()
	m.puts++
	m.inflight++
	m.maxInflight = max(m.maxInflight, m.inflight)
	onPut, delay := m.onPut, m.putDelay
	m.mu.Unlock()
	defer func() { m.mu.Lock(); m.inflight--; m.mu.Unlock() }()
	if onPut != nil {
		onPut(want.Name)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	a := m.apps[want.Name]
	m.secrets[want.Name] = maps.Clone(want.Secrets)
	switch m.fail[want.Digest] {
	case failKeep:
		return fmt.Errorf("mem: %s: probe failed: %w", want.Digest, targets.ErrUnhealthy)
	case failAfterSwitch:
		m.switchTo(want.Name, a, want, false)
		return fmt.Errorf("mem: %s: unhealthy after switch: %w", want.Digest, targets.ErrUnhealthy)
	}
	m.switchTo(want.Name, a, want, true)
	return nil
}

func (m *memTarget) switchTo(name string, a *memApp, want targets.DesiredApp, healthy bool) {
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
	a.cur, a.managed, a.healthy, a.status = want, true, healthy, status
}

func (m *memTarget) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deletes++
	delete(m.apps, name)
	return nil
}

func (m *memTarget) RollBack(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.apps[name]
	if a == nil || a.prev == nil {
		return errors.New("mem: nothing to roll back to")
	}
	m.rollbacks++
	cur := a.cur
	a.cur, a.prev = *a.prev, &cur
	a.healthy, a.status = true, "serving"
	return nil
}

// set installs an app directly, as if someone deployed it out of band.
func (m *memTarget) set(name, digest string, managed, healthy bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	status := "serving"
	if !healthy {
		status = "failed"
	}
	m.apps[name] = &memApp{cur: targets.DesiredApp{Name: name, Digest: digest, Ref: "reg.test/" + name + "@" + digest},
		managed: managed, healthy: healthy, status: status}
}

// digests returns app → running digest.
func (m *memTarget) digests() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for n, a := range m.apps {
		out[n] = a.cur.Digest
	}
	return out
}

func (m *memTarget) counts() (puts, deletes, rollbacks, maxInflight int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts, m.deletes, m.rollbacks, m.maxInflight
}

// lockingMem adds a Locker to memTarget: one holder at a time.
type lockingMem struct {
	*memTarget
	sem     chan struct{}
	waiting atomic.Int32
	holders []string
}

func newLockingMem() *lockingMem {
	return &lockingMem{memTarget: newMem(), sem: make(chan struct{}, 1)}
}

func (l *lockingMem) Lock(ctx context.Context, holder string) (func(), error) {
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	l.holders = append(l.holders, holder)
	l.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { <-l.sem }) }, nil
}

// noRollBack hides memTarget's RollBack.
type noRollBack struct{ t *memTarget }

func (n noRollBack) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	return n.t.Observe(ctx)
}
func (n noRollBack) Put(ctx context.Context, w targets.DesiredApp) error { return n.t.Put(ctx, w) }
func (n noRollBack) Delete(ctx context.Context, name string) error       { return n.t.Delete(ctx, name) }

// dg returns a valid, distinct digest for a label.
func dg(label string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(label)))
}

// app returns a desired app with a valid ref and config.
func app(name, label string) targets.DesiredApp {
	d := dg(label)
	return targets.DesiredApp{Name: name, Ref: "reg.test/" + name + "@" + d, Digest: d}
}

func tmap(kv ...any) map[string]targets.Target {
	m := map[string]targets.Target{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(targets.Target)
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

type deployVariable = deploy.Variable

func ptr[T any](v T) *T { return &v }

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
