package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

var (
	_ targets.Target           = (*Controller)(nil)
	_ targets.OwnerRecorder    = (*Controller)(nil)
	_ targets.RolloutPreviewer = (*Controller)(nil)
)

// recordVersion is the format version of app.json.
const recordVersion = 1

// keepDigests is how many digests' references app.json keeps: those of
// the rollout and of the rollouts it superseded, whose versions pending
// devices may still run.
const keepDigests = 8

// defaultResync is the longest the loop sleeps without a report.
const defaultResync = 10 * time.Second

// reportBatch is how long the loop gathers reports before it steps.
const reportBatch = 50 * time.Millisecond

// Options configure a Controller. Fields marked required must be set; the
// zero value of the others is their default.
type Options struct {
	// Name is the fleet target's name (required): it names the target in
	// states and messages and, with the app, the desired-state slot on the
	// server.
	Name string
	// Fleet is the target's selector and rollout policy (required); nil
	// Rollout means spec.DefaultRollout. SetFleet replaces it.
	Fleet *spec.FleetTarget
	// Server is the device API whose inventory the rollouts read and whose
	// desired states they set (required).
	Server *server.Server
	// Dir is where the rollouts are kept (required); created when missing.
	Dir string
	// Now is the clock; nil means time.Now. It must be the server's (see
	// server.Options.Now).
	Now func() time.Time
	// Resync is the longest the loop waits for a report or a NextCheck
	// before it steps anyway; zero means 10 s. A test with a fake clock
	// calls Wake after moving it.
	Resync time.Duration
	// Logger receives one line per rollout event (start, wave passed,
	// abort, completion); never a value. Nil discards.
	Logger *slog.Logger
	// OnEvent, when set, is told when a rollout starts, completes or
	// aborts (events.go). It is called with the controller's lock held:
	// it must return quickly and must not call the Controller.
	OnEvent func(Event)
}

// Controller is the targets.Target of one fleet target.
type Controller struct {
	name   string
	srv    *server.Server
	dir    string
	now    func() time.Time
	resync time.Duration
	log    *slog.Logger
	wake   chan struct{}
	// onEvent is Options.OnEvent.
	onEvent func(Event)

	mu     sync.Mutex
	policy *spec.FleetTarget
	apps   map[string]*rollout
	// invHint is the size of the last inventory, to allocate the next once.
	invHint int
}

// rollout is one app's rollout; guarded by Controller.mu.
type rollout struct {
	rec   appRecord
	st    *fleet.State
	saved []byte // state.json as last written
	last  fleet.Decision
	// stepped is false until the first step of this process; until then
	// last is empty.
	stepped bool
}

// appRecord is app.json.
type appRecord struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	Owner   string `json:"owner,omitempty"`
	// Refs are the references of the digests the rollout may send, by
	// digest; Order lists the digests newest first.
	Refs  map[string]string `json:"refs"`
	Order []string          `json:"order"`
	// Values are the variable values by digest (secret: the file is 0600).
	Values map[string]map[string]string `json:"values,omitempty"`
	Paused bool                         `json:"paused,omitempty"`
}

var appNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_.]{0,62}[a-z0-9])?$`)

// New opens the controller over opts.Dir, loading every saved rollout, and
// sets every selected device's desired state from them, so the server may
// serve devices as soon as New returns. Call Start to run the rollouts.
// Errors wrap ErrInvalid, server.ErrStore, fleet.ErrInvalidState or
// fleet.ErrStateVersion.
func New(opts Options) (*Controller, error) {
	if opts.Name == "" || opts.Fleet == nil || opts.Server == nil || opts.Dir == "" {
		return nil, fmt.Errorf("%w: a fleet controller needs a name, a fleet target, a server and a directory", ErrInvalid)
	}
	c := &Controller{
		name: opts.Name, srv: opts.Server, dir: opts.Dir, now: opts.Now, resync: opts.Resync,
		log: opts.Logger, wake: make(chan struct{}, 1), policy: opts.Fleet, apps: map[string]*rollout{},
		onEvent: opts.OnEvent,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.resync <= 0 {
		c.resync = defaultResync
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(c.dir, "apps"), 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", server.ErrStore, err)
	}
	entries, err := os.ReadDir(filepath.Join(c.dir, "apps"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", server.ErrStore, err)
	}
	for _, e := range entries {
		if !e.IsDir() || !appNameRE.MatchString(e.Name()) {
			continue
		}
		ro, err := c.loadApp(e.Name())
		if err != nil {
			return nil, err
		}
		if ro != nil {
			c.apps[e.Name()] = ro
		}
	}
	c.mu.Lock()
	devs := c.inventory()
	for name, ro := range c.apps {
		c.applyLocked(name, ro, devs)
	}
	c.mu.Unlock()
	return c, nil
}

func (c *Controller) appDir(name string) string { return filepath.Join(c.dir, "apps", name) }

func (c *Controller) loadApp(name string) (*rollout, error) {
	dir := c.appDir(name)
	recData, err := os.ReadFile(filepath.Join(dir, "app.json"))
	if os.IsNotExist(err) {
		return nil, nil // a Put that died before its first write
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", server.ErrStore, err)
	}
	var rec appRecord
	if err := json.Unmarshal(recData, &rec); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", server.ErrStore, filepath.Join(dir, "app.json"), err)
	}
	if rec.Version != recordVersion || rec.Name != name {
		return nil, fmt.Errorf("%w: %s is not an app record of format version %d", server.ErrStore, filepath.Join(dir, "app.json"), recordVersion)
	}
	stData, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", server.ErrStore, err)
	}
	st, err := fleet.LoadState(stData)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	if rec.Refs == nil {
		rec.Refs = map[string]string{}
	}
	return &rollout{rec: rec, st: st, saved: stData}, nil
}

// SetFleet replaces the target's selector and rollout policy; the next step
// uses it. Nil is ignored.
func (c *Controller) SetFleet(f *spec.FleetTarget) {
	if f == nil {
		return
	}
	c.mu.Lock()
	c.policy = f
	c.mu.Unlock()
	c.Wake()
}

// Wake makes the loop step every rollout now (after a clock change in a
// test, or to pick up a change made outside the server's reports).
func (c *Controller) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// RecordsOwners reports true: Observe returns the owner of each app's Put.
func (c *Controller) RecordsOwners() bool { return true }

// Put starts rolling want out over the fleet and returns PhaseProgressing
// (PhaseReady when that digest's rollout already completed). The same
// digest again only updates the values and owner it delivers. A rollout of
// another digest is superseded. Errors wrap ErrInvalid, ErrAborted (that
// digest's rollout was aborted: deploy a newer one) or server.ErrStore.
func (c *Controller) Put(ctx context.Context, want targets.DesiredApp) (targets.PutResult, error) {
	if !appNameRE.MatchString(want.Name) || want.Digest == "" || want.Ref == "" {
		return targets.PutResult{}, fmt.Errorf("%w: an app needs a name (lower-case letters, digits, '-', '_', '.'), a ref and a digest", ErrInvalid)
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	ro := c.apps[want.Name]
	var st *fleet.State
	var err error
	switch {
	case ro == nil:
		st, err = fleet.NewState("", want.Digest, now)
	case ro.st.To == want.Digest:
		st = ro.st
	default:
		st, err = fleet.Supersede(ro.st, want.Digest, now)
	}
	if err != nil {
		return targets.PutResult{}, err
	}
	st.App, st.Target = want.Name, c.name
	rec := appRecord{Version: recordVersion, Name: want.Name, Refs: map[string]string{}, Values: map[string]map[string]string{}}
	if ro != nil {
		rec.Refs, rec.Order, rec.Values, rec.Paused = maps.Clone(ro.rec.Refs), slices.Clone(ro.rec.Order), maps.Clone(ro.rec.Values), ro.rec.Paused
		if rec.Values == nil {
			rec.Values = map[string]map[string]string{}
		}
	}
	rec.Owner = want.Owner
	rec.Refs[want.Digest] = want.Ref
	if len(want.Secrets) > 0 {
		rec.Values[want.Digest] = maps.Clone(want.Secrets)
	} else {
		delete(rec.Values, want.Digest)
	}
	rec.Order = append([]string{want.Digest}, slices.DeleteFunc(rec.Order, func(d string) bool { return d == want.Digest })...)
	if len(rec.Order) > keepDigests {
		for _, d := range rec.Order[keepDigests:] {
			if d != st.From {
				delete(rec.Refs, d)
				delete(rec.Values, d)
			}
		}
		rec.Order = rec.Order[:keepDigests]
		if st.From != "" && !slices.Contains(rec.Order, st.From) {
			rec.Order = append(rec.Order, st.From)
		}
	}
	if err := c.saveRecord(rec); err != nil {
		return targets.PutResult{}, err
	}
	nro := &rollout{rec: rec, st: st}
	if ro != nil {
		nro.saved, nro.last, nro.stepped = ro.saved, ro.last, ro.stepped && ro.st == st
	}
	if err := c.saveState(nro, st); err != nil {
		return targets.PutResult{}, err
	}
	c.apps[want.Name] = nro
	if ro == nil || ro.st != st {
		c.log.Info("fleet rollout started", "target", c.name, "app", want.Name, "from", fleet.Short(st.From), "to", fleet.Short(st.To), "supersedes", fleet.Short(st.Supersedes))
		c.emit(EventStarted, st)
	}
	c.applyLocked(want.Name, nro, c.inventory())
	c.Wake()
	if st.Outcome == fleet.OutcomeAborted {
		return targets.PutResult{}, fmt.Errorf("%w: the rollout of %s to fleet %s: %s", ErrAborted, fleet.Short(st.To), c.name, st.Reason)
	}
	phase, msg := phaseOf(nro)
	return targets.PutResult{Phase: phase, Message: msg}, nil
}

// Delete ends the app's rollout and removes the app from every device's
// desired state (devices then remove it). Deleting an absent app is not an
// error.
func (c *Controller) Delete(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.apps[name]; !ok {
		return nil
	}
	slot := c.slot(name)
	for _, d := range c.srv.Devices(nil) {
		c.srv.SetDesiredApp(d.ID, slot, nil)
	}
	delete(c.apps, name)
	if err := os.RemoveAll(c.appDir(name)); err != nil {
		return fmt.Errorf("%w: %w", server.ErrStore, err)
	}
	c.log.Info("fleet app deleted", "target", c.name, "app", name)
	return nil
}

// Observe reports every app with a rollout on the target: its to-digest
// and the rollout's phase (progressing while it runs or is paused, ready
// once completed, failed once aborted), with the device counts as message.
func (c *Controller) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]targets.ObservedApp, 0, len(c.apps))
	for name, ro := range c.apps {
		phase, msg := phaseOf(ro)
		out = append(out, observedApp(name, ro.rec.Refs[ro.st.To], ro.rec.Owner, ro.st, phase, msg))
	}
	slices.SortFunc(out, func(a, b targets.ObservedApp) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// observedApp is what Observe reports of app name's rollout st.
func observedApp(name, ref, owner string, st *fleet.State, phase targets.Phase, msg string) targets.ObservedApp {
	return targets.ObservedApp{
		Name: name, Ref: ref, Digest: st.To, Managed: true, Owner: owner,
		Status: string(st.Outcome), Healthy: st.Outcome == fleet.OutcomeCompleted, Phase: phase,
		Previous: st.From, Message: msg,
	}
}

func phaseOf(ro *rollout) (targets.Phase, string) {
	st := ro.st
	cn := st.Counts()
	msg := fmt.Sprintf("%d healthy, %d updating, %d failed, %d rolled back", cn.Healthy, cn.Updating, cn.Failed, cn.RolledBack)
	if ro.stepped {
		msg = fmt.Sprintf("wave %d/%d, %d of %d wave devices healthy; %s", ro.last.Wave+1, ro.last.Waves, ro.last.Gate.Healthy, ro.last.Gate.Devices, msg)
	}
	switch st.Outcome {
	case fleet.OutcomeCompleted:
		return targets.PhaseReady, "completed: " + msg
	case fleet.OutcomeAborted:
		return targets.PhaseFailed, "aborted: " + st.Reason + "; " + msg
	}
	if ro.rec.Paused {
		return targets.PhaseProgressing, "paused: " + msg
	}
	return targets.PhaseProgressing, msg
}

func (c *Controller) slot(app string) string { return c.name + "/" + app }

func (c *Controller) saveRecord(rec appRecord) error {
	if err := os.MkdirAll(c.appDir(rec.Name), 0o700); err != nil {
		return fmt.Errorf("%w: %w", server.ErrStore, err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("%w: %w", server.ErrStore, err)
	}
	return server.WriteFileAtomic(filepath.Join(c.appDir(rec.Name), "app.json"), data)
}

// saveState writes st as ro's state.json unless it is what was last
// written, and records it as written.
func (c *Controller) saveState(ro *rollout, st *fleet.State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("%w: %w", server.ErrStore, err)
	}
	if bytes.Equal(data, ro.saved) {
		return nil
	}
	if err := server.WriteFileAtomic(filepath.Join(c.appDir(ro.rec.Name), "state.json"), data); err != nil {
		return err
	}
	ro.saved = data
	return nil
}

// Start runs the rollouts until ctx ends: it steps every live rollout
// whenever devices report (gathered for 50 ms), enroll or are revoked, when the earliest
// NextCheck passes, on Wake, and at least every Resync. It returns nil when
// ctx ends. Errors of one step (a store that cannot be written) are logged
// and retried at the next wake.
func (c *Controller) Start(ctx context.Context) error {
	reports, cancel := c.srv.Subscribe()
	defer cancel()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := c.StepAll()
		wait := c.resync
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(c.now()), time.Millisecond))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-reports:
			// Reports come in bursts: gather them for a moment so that
			// a fleet's reports cost a few steps, not one each.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(reportBatch):
			}
		case <-c.wake:
		case <-timer.C:
		}
	}
}

// StepAll steps every live, unpaused rollout once now, saves each new
// State, then sets the desired states it implies; it returns the earliest
// NextCheck (zero: none). Start calls it; a test with a fake clock may call
// it directly instead of running Start.
func (c *Controller) StepAll() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	devs := c.inventory()
	var next time.Time
	for _, name := range slices.Sorted(maps.Keys(c.apps)) {
		ro := c.apps[name]
		if !ro.rec.Paused && ro.st.Outcome != fleet.OutcomeAborted {
			t, err := c.stepLocked(name, ro, devs)
			if err != nil {
				c.log.Error("fleet rollout step", "target", c.name, "app", name, "err", err)
				continue
			}
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		c.applyLocked(name, ro, devs)
	}
	return next
}

func (c *Controller) stepLocked(name string, ro *rollout, devs []invDevice) (time.Time, error) {
	obs := observations(name, ro.st.To, devs)
	dec, ns, err := fleet.Step(ro.st, c.policy, obs, c.now())
	if err != nil {
		return time.Time{}, err
	}
	if err := c.saveState(ro, ns); err != nil {
		return time.Time{}, err
	}
	prev := ro.st
	ro.st, ro.last, ro.stepped = ns, dec, true
	for _, w := range dec.Passed {
		c.log.Info("fleet wave passed", "target", c.name, "app", name, "wave", w+1, "of", dec.Waves)
	}
	if prev.Outcome != ns.Outcome {
		switch ns.Outcome {
		case fleet.OutcomeAborted:
			c.log.Warn("fleet rollout aborted", "target", c.name, "app", name, "to", fleet.Short(ns.To), "reason", ns.Reason, "rolled_back", len(dec.RollBack))
			c.emit(EventAborted, ns)
		case fleet.OutcomeCompleted:
			c.log.Info("fleet rollout completed", "target", c.name, "app", name, "to", fleet.Short(ns.To), "devices", len(ns.Devices))
			c.emit(EventCompleted, ns)
		}
	}
	return dec.NextCheck, nil
}

// invDevice is what a step reads of a server.Device: a fifth of its size,
// which matters for an inventory of 10,000 copied at every step.
type invDevice struct {
	ID         string
	Labels     map[string]string
	LastReport time.Time
	Status     *api.StatusReport
}

// inventory is the server's devices not revoked, sharing their labels
// and status with the server (read-only).
func (c *Controller) inventory() []invDevice {
	devs := make([]invDevice, 0, c.invHint)
	c.srv.EachDevice(func(d server.Device) {
		if d.Revoked.IsZero() {
			devs = append(devs, invDevice{ID: d.ID, Labels: d.Labels, LastReport: d.LastReport, Status: d.Status})
		}
	})
	c.invHint = len(devs) + 16
	return devs
}

// observations turns the inventory into the engine's view of app: every
// device not revoked, with what its latest report says about the app.
func observations(app, to string, devs []invDevice) []fleet.Device {
	out := make([]fleet.Device, 0, len(devs))
	for _, d := range devs {
		fd := fleet.Device{ID: d.ID, Labels: d.Labels, LastReport: d.LastReport}
		if d.Status != nil {
			for _, a := range d.Status.Apps {
				if a.Name != app {
					continue
				}
				fd.Digest, fd.Previous = a.Digest, a.Previous
				switch {
				case a.Failed != "" && a.Failed == to:
					// The device refused or rolled back the to-digest.
					fd.Digest, fd.Health = to, fleet.HealthUnhealthy
				case a.Phase == api.PhaseServing && a.Healthy:
					fd.Health = fleet.HealthHealthy
				case a.Phase == api.PhaseUnhealthy || a.Phase == api.PhaseFailed || (a.Phase == api.PhaseServing && !a.Healthy):
					fd.Health = fleet.HealthUnhealthy
				default:
					fd.Health = fleet.HealthUnknown
				}
				break
			}
		}
		out = append(out, fd)
	}
	return out
}

// applyLocked sets the desired app of every device from ro's State: the
// digest State.Desired names for started devices; for the others that the
// target selects, what they were last told, else the version they report
// (when its reference is known), else the rollout's from-digest; nothing
// for devices the target does not select.
func (c *Controller) applyLocked(name string, ro *rollout, devs []invDevice) {
	slot := c.slot(name)
	for _, d := range devs {
		if !c.policy.Selector.Matches(d.Labels) {
			c.srv.SetDesiredApp(d.ID, slot, nil)
			continue
		}
		digest, ok := ro.st.Desired(d.ID)
		if !ok {
			if _, has := c.srv.DesiredApp(d.ID, slot); has {
				continue // a pending device keeps what it was told
			}
			digest = ro.st.From
			if d.Status != nil {
				for _, a := range d.Status.Apps {
					if a.Name == name && a.Digest != "" && ro.rec.Refs[a.Digest] != "" {
						digest = a.Digest
					}
				}
			}
		}
		if digest == "" || ro.rec.Refs[digest] == "" {
			c.srv.SetDesiredApp(d.ID, slot, nil)
			continue
		}
		c.srv.SetDesiredApp(d.ID, slot, &api.DesiredApp{
			Name: name, Ref: ro.rec.Refs[digest], Digest: digest, Values: ro.rec.Values[digest], Owner: ro.rec.Owner,
		})
	}
}
