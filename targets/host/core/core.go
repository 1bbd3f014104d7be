package core

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// Options configure a Core.
type Options struct {
	// Runtime serves the apps. Required.
	Runtime *host.Runtime
	// Store is the host's state directory. Nil means nothing is persisted
	// and Restore has nothing to do.
	Store *state.Store
	// Registry pulls artifacts by digest. Nil means Puts of artifacts the
	// store does not already hold fail as unavailable
	// (registry.ErrUnavailable).
	Registry *registry.Client
	// Policy is the host's own trust policy; every artifact must be signed
	// under it. It must be valid unless InsecureSkipVerify is set.
	Policy signer.Policy
	// InsecureSkipVerify turns signature verification off entirely. Only
	// for development; the caller should warn loudly.
	InsecureSkipVerify bool
	// Verify says how signer.Verify reaches the registry (plain HTTP,
	// credentials). The zero value is HTTPS except on loopback, with
	// Docker-config credentials.
	Verify signer.RegistryOptions
	// SecretHashKey keys AppInfo.SecretHashes (api.SecretHashes). The
	// control API uses api.SecretHashKey of its bearer token, so that its
	// clients compute the same hashes. Nil means a random key per Core:
	// the hashes then only tell values apart within this process's life.
	SecretHashKey []byte
	// Logger receives one line per deploy, rollback, delete and restore.
	// Nil discards. Secrets are never logged.
	Logger *slog.Logger
	// Metrics, when set, gets the core's collectors registered (deploys,
	// health probes, health rollbacks). Nil means they are kept but not
	// exported.
	Metrics prometheus.Registerer
}

// Core is the host core: it verifies, pulls, stores and deploys apps into
// the runtime, restores them after a restart, and probes their health
// (rolling a version back by itself within its bake). Create it with New.
// It is safe for concurrent use; operations on one app are serialised,
// different apps proceed in parallel.
type Core struct {
	opts    Options
	log     *slog.Logger
	rt      *host.Runtime
	store   *state.Store
	locks   keyedLock
	metrics *coreMetrics
	secretK []byte               // key of AppInfo.SecretHashes
	closeRT bool                 // Open made the runtime; Close closes it
	reg     *prometheus.Registry // made by Open (Metrics)

	mu     sync.Mutex
	apps   map[string]*entry
	owners map[string]string // app name -> recorded owner (PutRequest.Owner); guarded by mu

	hmu    sync.Mutex
	health map[string]*appHealth // the prober's state (health.go)
}

// entry mirrors what the runtime runs for one app, with the artifact
// details the runtime does not know. An entry is immutable once it is in
// Core.apps: readers take it under mu and use it after unlocking, so a
// change publishes a new entry.
type entry struct {
	cur, prev  *state.Version
	failed     string            // non-empty: recorded but not running
	rolledBack *api.HostRollback // set when the health prober rolled back to cur
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)

// New returns a Core. It fails when Runtime is missing, the policy is
// unusable while verification is on, or the metrics cannot be registered.
func New(opts Options) (*Core, error) {
	if opts.Runtime == nil {
		return nil, errors.New("core: no runtime")
	}
	if !opts.InsecureSkipVerify {
		if err := opts.Policy.Validate(); err != nil {
			return nil, fmt.Errorf("core: trust policy: %w", err)
		}
	}
	c := &Core{
		opts:    opts,
		log:     opts.Logger,
		rt:      opts.Runtime,
		store:   opts.Store,
		secretK: opts.SecretHashKey,
		apps:    map[string]*entry{},
		owners:  map[string]string{},
		health:  map[string]*appHealth{},
		metrics: newCoreMetrics(),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.secretK == nil {
		c.secretK = make([]byte, 32)
		if _, err := rand.Read(c.secretK); err != nil {
			return nil, fmt.Errorf("core: secret hash key: %w", err)
		}
	}
	if opts.Metrics != nil {
		if err := c.metrics.register(opts.Metrics); err != nil {
			return nil, fmt.Errorf("core: registering metrics: %w", err)
		}
	}
	return c, nil
}

// Runtime returns the runtime the core deploys into.
func (s *Core) Runtime() *host.Runtime { return s.rt }

// RestoreReport says what Restore brought back.
type RestoreReport struct {
	// Serving are the apps that serve again, sorted.
	Serving []string
	// Failed maps each app that could not be restored to why. Those apps
	// are listed with api.StatusFailed until a PUT or DELETE.
	Failed map[string]error
}

// Restore deploys every app recorded in the store into the runtime, without
// any registry: each version's modules are read from the store (verified
// by digest) and its cached signatures are verified again locally against
// the host's policy before anything runs. The previous version is loaded
// too, for rollback. An app whose current version fails is reported and
// skipped; the others still load. Apps are restored in parallel.
func (s *Core) Restore(ctx context.Context) RestoreReport {
	rep := RestoreReport{Failed: map[string]error{}}
	if s.store == nil {
		return rep
	}
	names, err := s.store.Names()
	if err != nil {
		rep.Failed["*"] = err
		return rep
	}
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(names), 1)) {
		wg.Go(func() {
			for name := range work {
				err := s.restoreOne(ctx, name)
				mu.Lock()
				if errors.Is(err, errSkipped) {
					// nothing to report
				} else if err != nil {
					rep.Failed[name] = err
				} else {
					rep.Serving = append(rep.Serving, name)
				}
				mu.Unlock()
			}
		})
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	sort.Strings(rep.Serving)
	return rep
}

func (s *Core) restoreOne(ctx context.Context, name string) error {
	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	fail := func(cur *state.Version, err error) error {
		s.mu.Lock()
		s.apps[name] = &entry{cur: cur, failed: err.Error()}
		s.mu.Unlock()
		s.log.LogAttrs(ctx, slog.LevelError, "app not restored", slog.String("app", name), slog.String("error", err.Error()))
		return err
	}
	rec, err := s.store.Load(name)
	if errors.Is(err, state.ErrNotFound) {
		// A directory without a record: a first save that never finished.
		// Nothing was deployed from it.
		return errSkipped
	}
	if err != nil {
		return fail(nil, err)
	}
	s.setOwner(name, rec.Owner)
	curMat, err := s.checkLocal(ctx, &rec.Current)
	if err != nil {
		return fail(&rec.Current, err)
	}
	curBundle, err := curMat.bundle(rec.Current.Secrets)
	if err != nil {
		return fail(&rec.Current, err)
	}
	var prev *state.Version
	if rec.Previous != nil && rec.Previous.Digest == rec.Current.Digest {
		// Written before same-digest PUTs kept the older previous version:
		// it is no version to roll back to.
		rec.Previous = nil
	}
	if rec.Previous != nil {
		var b host.Bundle
		mat, err := s.checkLocal(ctx, rec.Previous)
		if err == nil {
			b, err = mat.bundle(rec.Previous.Secrets)
		}
		if err == nil {
			err = s.rt.Deploy(ctx, rec.Previous.App, b)
		}
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "previous version not restored", slog.String("app", name),
				slog.String("digest", rec.Previous.Digest), slog.String("error", err.Error()))
		} else {
			prev = rec.Previous
		}
	}
	if err := s.rt.Deploy(ctx, rec.Current.App, curBundle); err != nil {
		if prev != nil {
			_ = s.rt.Delete(name)
		}
		return fail(&rec.Current, err)
	}
	var rb *api.HostRollback
	if r := rec.RolledBack; r != nil && r.To == rec.Current.Digest {
		rb = &api.HostRollback{From: r.From, FromRef: r.FromRef, To: r.To, Reason: r.Reason, At: r.At}
	}
	s.mu.Lock()
	s.apps[name] = &entry{cur: &rec.Current, prev: prev, rolledBack: rb}
	s.mu.Unlock()
	s.log.LogAttrs(ctx, slog.LevelInfo, "app restored", slog.String("app", name),
		slog.String("digest", rec.Current.Digest), slog.Bool("previous", prev != nil), slog.Duration("took", time.Since(start)))
	return nil
}

// material is what a version needs besides its record: its modules by
// digest and its components' files archives by component name.
type material struct {
	modules map[string][]byte
	files   map[string][]byte
}

// blobs returns the modules and files archives by digest, for the store.
func (m material) blobs(v *state.Version) map[string][]byte {
	if len(v.Files) == 0 {
		return m.modules
	}
	out := make(map[string][]byte, len(m.modules)+len(v.Files))
	maps.Copy(out, m.modules)
	for comp, d := range v.Files {
		out[d] = m.files[comp]
	}
	return out
}

// bundle unpacks the files archives into read-only in-memory trees and
// returns what the runtime deploys. An unsafe archive wraps
// registry.ErrInvalidArtifact.
func (m material) bundle(secrets map[string]string) (host.Bundle, error) {
	b := host.Bundle{Modules: m.modules, Secrets: secrets}
	for _, comp := range slices.Sorted(maps.Keys(m.files)) {
		tree, err := registry.ReadFiles(m.files[comp])
		if err != nil {
			return host.Bundle{}, fmt.Errorf("files of component %q: %w", comp, err)
		}
		if b.Files == nil {
			b.Files = map[string]fs.FS{}
		}
		b.Files[comp] = tree
	}
	return b, nil
}

// checkLocal reads v's modules and files archives from the store (each
// verified by digest) and verifies its cached signatures against the
// policy.
func (s *Core) checkLocal(ctx context.Context, v *state.Version) (material, error) {
	if !s.opts.InsecureSkipVerify {
		res, err := signer.VerifyLocal(ctx, v.Digest, v.Signatures, s.opts.Policy, signer.VerifyOptions{})
		if err != nil {
			return material{}, fmt.Errorf("cached signature of %s: %w", v.Ref, err)
		}
		v.VerifiedBy = res.Key
	}
	mods, err := s.store.Modules(v)
	if err != nil {
		return material{}, err
	}
	files, err := s.store.Files(v)
	if err != nil {
		return material{}, err
	}
	return material{modules: mods, files: files}, nil
}

// Put deploys the artifact req names as app name and returns its new
// status. See the package documentation for the checks and the errors.
func (s *Core) Put(ctx context.Context, name string, req api.PutRequest) (api.AppInfo, error) {
	start := time.Now()
	info, err := s.put(ctx, name, req)
	result := "ok"
	if err != nil {
		result, _ = Classify(err)
	}
	s.metrics.deploys.WithLabelValues(result).Inc()
	s.metrics.deploySeconds.Observe(time.Since(start).Seconds())
	return info, err
}

func (s *Core) put(ctx context.Context, name string, req api.PutRequest) (api.AppInfo, error) {
	if !nameRE.MatchString(name) {
		return api.AppInfo{}, fmt.Errorf("%w: app name %q is not valid", ErrBadRequest, name)
	}
	ref, err := registry.ParseReference(req.Ref)
	if err != nil {
		return api.AppInfo{}, fmt.Errorf("%w: ref: %w", ErrBadRequest, err)
	}
	dgst := string(ref.Digest)
	switch {
	case dgst == "" && req.Digest == "":
		return api.AppInfo{}, fmt.Errorf("%w: ref %q names no digest; the host deploys by digest only", ErrBadRequest, req.Ref)
	case dgst == "":
		dgst = req.Digest
	case req.Digest != "" && req.Digest != dgst:
		return api.AppInfo{}, fmt.Errorf("%w: ref %q and digest %q disagree", ErrBadRequest, req.Ref, req.Digest)
	}
	ref.Tag = ""
	ref.Digest = ""
	fullRef := ref.String() + "@" + dgst
	if _, err := registry.ParseReference(fullRef); err != nil {
		return api.AppInfo{}, fmt.Errorf("%w: digest: %w", ErrBadRequest, err)
	}

	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		return api.AppInfo{}, err
	}
	defer unlock()

	v, mat, err := s.fetch(ctx, name, fullRef, dgst)
	if err != nil {
		return api.AppInfo{}, err
	}
	bundle, err := mat.bundle(req.Secrets)
	if err != nil {
		return api.AppInfo{}, fmt.Errorf("deploying %s: %w", fullRef, err)
	}
	if v.App.Name != name {
		return api.AppInfo{}, fmt.Errorf("%w: %s holds app %q, not %q", ErrAppMismatch, fullRef, v.App.Name, name)
	}
	v.Secrets = req.Secrets
	v.DeployedAt = time.Now().UTC()

	s.mu.Lock()
	old := s.apps[name]
	s.mu.Unlock()
	if old != nil && old.failed == "" && old.cur != nil && old.cur.Digest == v.Digest {
		// The version that serves, again (new secrets, a restart, or a new
		// owner adopting it).
		return s.putSameVersion(ctx, name, old, v, mat, bundle, req.Owner)
	}
	if err := s.rt.Deploy(ctx, v.App, bundle); err != nil {
		return api.AppInfo{}, fmt.Errorf("deploying %s: %w", fullRef, err)
	}
	next := &entry{cur: v}
	switch {
	case old != nil && old.failed == "":
		next.prev = old.cur
	}
	if s.store != nil {
		rec := state.Record{Name: name, Current: *v, Previous: next.prev, Owner: req.Owner}
		if err := s.store.Save(rec, mat.blobs(v)); err != nil {
			// Undo, so what runs is what the state directory says.
			if next.prev != nil {
				if rerr := s.rt.Rollback(name); rerr == nil {
					next = &entry{cur: old.cur, prev: v}
				}
			} else if rerr := s.rt.Delete(name); rerr == nil {
				next = old
			}
			s.setEntry(name, next)
			return api.AppInfo{}, fmt.Errorf("%w: %w (the version before keeps serving)", ErrPersist, err)
		}
	}
	s.setEntry(name, next)
	s.setOwner(name, req.Owner)
	s.log.LogAttrs(ctx, slog.LevelInfo, "app put", slog.String("app", name), slog.String("ref", fullRef),
		slog.String("verified_by", v.VerifiedBy), slog.Int("secrets", len(req.Secrets)), slog.String("owner", s.ownerOf(name)))
	return s.Get(name)
}

// setOwner records owner for app name; empty keeps the one recorded.
func (s *Core) setOwner(name, owner string) {
	if owner == "" {
		return
	}
	s.mu.Lock()
	s.owners[name] = owner
	s.mu.Unlock()
}

// ownerOf returns the owner recorded for app name ("" for none).
func (s *Core) ownerOf(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owners[name]
}

func (s *Core) setEntry(name string, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e == nil {
		delete(s.apps, name)
		return
	}
	s.apps[name] = e
}

// fetch returns the verified version and its material: from the state
// directory when this host already holds the digest (re-verified locally),
// else from the registry (verified remotely, then pulled by digest, files
// layers checked for unsafe entries).
func (s *Core) fetch(ctx context.Context, name, fullRef, dgst string) (*state.Version, material, error) {
	if s.store != nil {
		if rec, err := s.store.Load(name); err == nil {
			for _, v := range []*state.Version{&rec.Current, rec.Previous} {
				if v == nil || v.Digest != dgst {
					continue
				}
				v := *v
				v.Ref = fullRef
				if mat, err := s.checkLocal(ctx, &v); err == nil {
					return &v, mat, nil
				}
			}
		}
	}
	if s.opts.Registry == nil {
		return nil, material{}, fmt.Errorf("%w: no registry configured to pull %s", registry.ErrUnavailable, fullRef)
	}
	v := &state.Version{Ref: fullRef, Digest: dgst}
	if !s.opts.InsecureSkipVerify {
		res, err := signer.Verify(ctx, fullRef, s.opts.Policy, signer.VerifyOptions{Registry: s.opts.Verify, Logger: s.opts.Logger})
		if err != nil {
			return nil, material{}, fmt.Errorf("verifying %s: %w", fullRef, err)
		}
		v.Signatures = res.Verified
		v.VerifiedBy = res.Key
	}
	pulled, err := s.opts.Registry.PullApp(ctx, fullRef)
	if err != nil {
		return nil, material{}, fmt.Errorf("pulling %s: %w", fullRef, err)
	}
	if string(pulled.Digest) != dgst {
		return nil, material{}, fmt.Errorf("%w: pulled %s, wanted %s", registry.ErrDigestMismatch, pulled.Digest, dgst)
	}
	v.App = pulled.App
	mat := material{modules: pulled.Modules}
	for comp, b := range pulled.Files {
		if v.Files == nil {
			v.Files, mat.files = map[string]string{}, map[string][]byte{}
		}
		v.Files[comp] = b.Desc.Digest.String()
		mat.files[comp] = b.Data
	}
	return v, mat, nil
}

// Delete removes app name from the runtime and the state directory.
// Deleting an absent app is not an error.
func (s *Core) Delete(ctx context.Context, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: app name %q is not valid", ErrBadRequest, name)
	}
	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.rt.Delete(name); err != nil && !errors.Is(err, host.ErrNotFound) {
		return err
	}
	s.setEntry(name, nil)
	s.mu.Lock()
	delete(s.owners, name)
	s.mu.Unlock()
	s.forgetHealth(name)
	if s.store != nil {
		if err := s.store.Delete(name); err != nil {
			return fmt.Errorf("%w: %w", ErrPersist, err)
		}
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "app deleted", slog.String("app", name))
	return nil
}

// RollBack makes the previous version of app name serve again (and keeps
// the one it replaces as the new previous). It fails with host.ErrNotFound
// or host.ErrNoPrevious.
func (s *Core) RollBack(ctx context.Context, name string) (api.AppInfo, error) {
	ai, _, err := s.rollBack(ctx, name, "", "")
	return ai, err
}

// rollBack is RollBack. With from set (the health prober), it rolls back
// only while from still serves, and records (in memory and in the state
// directory) that the host rolled back by itself, and why; rb is that
// record, nil when nothing changed. A manual rollback (from empty) records
// nothing and clears an earlier record.
func (s *Core) rollBack(ctx context.Context, name, from, reason string) (api.AppInfo, *api.HostRollback, error) {
	if !nameRE.MatchString(name) {
		return api.AppInfo{}, nil, fmt.Errorf("%w: app name %q is not valid", ErrBadRequest, name)
	}
	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		return api.AppInfo{}, nil, err
	}
	defer unlock()
	s.mu.Lock()
	e := s.apps[name]
	s.mu.Unlock()
	switch {
	case e == nil:
		return api.AppInfo{}, nil, fmt.Errorf("%w: %q", host.ErrNotFound, name)
	case from != "" && (e.cur == nil || e.cur.Digest != from):
		// Something else changed the app first.
		ai, err := s.Get(name)
		return ai, nil, err
	case e.failed != "" || e.prev == nil:
		return api.AppInfo{}, nil, fmt.Errorf("%w: app %q", host.ErrNoPrevious, name)
	case e.prev.Digest == e.cur.Digest:
		// Only a record written before same-digest PUTs kept the older
		// previous version can say this; switching would change nothing.
		return api.AppInfo{}, nil, fmt.Errorf("%w: app %q: its previous version is the one that serves", host.ErrNoPrevious, name)
	}
	var rb *api.HostRollback
	if from != "" {
		rb = &api.HostRollback{From: e.cur.Digest, FromRef: e.cur.Ref, To: e.prev.Digest, Reason: reason, At: time.Now().UTC()}
	}
	if err := s.rt.Rollback(name); err != nil {
		return api.AppInfo{}, nil, err
	}
	if s.store != nil {
		rec := state.Record{Name: name, Current: *e.prev, Previous: e.cur, RolledBack: rollbackToState(rb)}
		if err := s.store.Save(rec, nil); err != nil {
			_ = s.rt.Rollback(name)
			return api.AppInfo{}, nil, fmt.Errorf("%w: %w (nothing changed)", ErrPersist, err)
		}
	}
	s.setEntry(name, &entry{cur: e.prev, prev: e.cur, rolledBack: rb})
	s.log.LogAttrs(ctx, slog.LevelInfo, "app rolled back", slog.String("app", name),
		slog.String("digest", e.prev.Digest), slog.String("from", e.cur.Digest), slog.Bool("by_health_probe", rb != nil))
	ai, err := s.Get(name)
	return ai, rb, err
}

// List returns every app on the host, sorted by name.
func (s *Core) List() []api.AppInfo {
	s.mu.Lock()
	names := make([]string, 0, len(s.apps))
	for n := range s.apps {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	out := make([]api.AppInfo, 0, len(names))
	for _, n := range names {
		if ai, err := s.Get(n); err == nil {
			out = append(out, ai)
		}
	}
	return out
}

// Get returns the status of app name, or an error wrapping host.ErrNotFound.
func (s *Core) Get(name string) (api.AppInfo, error) {
	s.mu.Lock()
	e := s.apps[name]
	owner := s.owners[name]
	s.mu.Unlock()
	if e == nil {
		return api.AppInfo{}, fmt.Errorf("%w: %q", host.ErrNotFound, name)
	}
	ai := api.AppInfo{Name: name, Managed: true, Owner: owner}
	if e.cur != nil {
		ai.Ref, ai.Digest, ai.VerifiedBy, ai.DeployedAt = e.cur.Ref, e.cur.Digest, e.cur.VerifiedBy, e.cur.DeployedAt
	}
	if e.failed != "" {
		ai.Status, ai.Message = api.StatusFailed, e.failed
		return ai, nil
	}
	if e.prev != nil {
		ai.Previous, ai.PreviousRef = e.prev.Digest, e.prev.Ref
	}
	st, err := s.rt.App(name)
	if err != nil {
		ai.Status, ai.Message = api.StatusFailed, err.Error()
		return ai, nil
	}
	ai.Status = api.StatusServing
	ai.Health = string(st.Current.Health)
	ai.Healthy = st.Current.Health == host.HealthHealthy || st.Current.Health == host.HealthUnchecked
	probes, ok := s.healthOf(name, st.Current.Generation, st.Current.App.Components)
	ai.Probes = probes
	if !ok {
		ai.Healthy, ai.Health = false, api.HealthUnhealthy
	}
	ai.RolledBack = e.rolledBack
	ai.Generation = st.Current.Generation
	for _, c := range st.Current.Components {
		ai.Components = append(ai.Components, api.ComponentStatus{Name: c.Name, Digest: c.Digest, Executor: c.Executor})
	}
	ai.SecretHashes = api.SecretHashes(s.secretK, name, e.cur.Secrets)
	return ai, nil
}

// keyedLock serialises work per key; waiting respects the context.
type keyedLock struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch chan struct{}
	n  int
}

func (k *keyedLock) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.n++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		l.n--
		if l.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, fmt.Errorf("waiting for another operation on app %q: %w", key, ctx.Err())
	}
}

// putSameVersion serves v — the digest that serves now, typically with new
// secrets — in place of old.cur through Runtime.Reconfigure: no new
// artifact, and the version kept for rollback stays what it was (a PUT of
// the serving digest does not make the serving version its own previous).
// DeployedAt stays the version's first deploy. Persisting comes last; if it
// fails, the old secrets are put back.
func (s *Core) putSameVersion(ctx context.Context, name string, old *entry, v *state.Version, mat material, bundle host.Bundle, owner string) (api.AppInfo, error) {
	v.DeployedAt = old.cur.DeployedAt
	if err := s.rt.Reconfigure(ctx, v.App, bundle); err != nil {
		return api.AppInfo{}, fmt.Errorf("deploying %s: %w", v.Ref, err)
	}
	next := &entry{cur: v, prev: old.prev}
	if s.store != nil {
		if err := s.store.Save(state.Record{Name: name, Current: *v, Previous: old.prev, Owner: owner}, mat.blobs(v)); err != nil {
			if ob, berr := mat.bundle(old.cur.Secrets); berr == nil && s.rt.Reconfigure(ctx, old.cur.App, ob) == nil {
				next = old
			}
			s.setEntry(name, next)
			return api.AppInfo{}, fmt.Errorf("%w: %w (the version before keeps serving)", ErrPersist, err)
		}
	}
	s.setEntry(name, next)
	s.setOwner(name, owner)
	s.log.LogAttrs(ctx, slog.LevelInfo, "app reconfigured", slog.String("app", name), slog.String("ref", v.Ref),
		slog.Int("secrets", len(v.Secrets)))
	return s.Get(name)
}
