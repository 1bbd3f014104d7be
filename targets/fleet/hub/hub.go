package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// ErrUnknownTarget is wrapped by errors about a fleet target the hub has
// no controller for.
var ErrUnknownTarget = errors.New("unknown fleet target")

// Options configure a Hub. Dir is required; the zero value of the others
// is their default.
type Options struct {
	// Dir holds the device store (devices/) and one folder per fleet
	// target (targets/NAME: its policy and rollouts). Created when missing,
	// mode 0700.
	Dir string
	// Now is the clock of the server and every controller; nil is
	// time.Now.
	Now func() time.Time
	// Resync is the controllers' longest wait between steps; zero is
	// their default.
	Resync time.Duration
	// Logger receives the server's and controllers' lines; nil discards.
	Logger *slog.Logger
	// OnEvent, when set, is every controller's controller.Options.OnEvent:
	// told when a rollout starts, completes or aborts. It must return
	// quickly and must not call the hub.
	OnEvent func(controller.Event)
	// Leading, when set, reports whether this agent leads its replicas
	// (leader election in a cluster). While it reports false the device
	// API answers every request 503 with Retry-After (FollowerRetryAfter)
	// and the admin API answers 503: a follower's device store is not the
	// fleet's, so it neither tells devices what to run nor takes their
	// status. Run Start only on the leader. Nil means always leading.
	Leading func() bool
}

// FollowerRetryAfter is the Retry-After a follower's device API answers
// with: about how long a new leader takes to take over.
const FollowerRetryAfter = 5 * time.Second

// Hub is the device API server and the fleet controllers of one agent. It
// is safe for concurrent use.
type Hub struct {
	opts Options
	srv  *server.Server
	log  *slog.Logger
	met  *hubMetrics

	mu   sync.Mutex
	ctx  context.Context // set by Start; nil before
	ctls map[string]*controller.Controller
}

var targetNameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Open opens the hub over opts.Dir and restores the controller of every
// fleet target saved there. Call Start to run their rollouts.
func Open(opts Options) (*Hub, error) {
	if opts.Dir == "" {
		return nil, errors.New("fleet hub: no directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "targets"), 0o700); err != nil {
		return nil, fmt.Errorf("fleet hub: %w", err)
	}
	srv, err := server.Open(filepath.Join(opts.Dir, "devices"), server.Options{Now: opts.Now, Logger: opts.Logger.With("component", "fleet-server")})
	if err != nil {
		return nil, fmt.Errorf("fleet hub: %w", err)
	}
	h := &Hub{opts: opts, srv: srv, log: opts.Logger, ctls: map[string]*controller.Controller{}}
	h.met = newHubMetrics(h)
	entries, err := os.ReadDir(filepath.Join(opts.Dir, "targets"))
	if err != nil {
		return nil, fmt.Errorf("fleet hub: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !targetNameRE.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(opts.Dir, "targets", e.Name(), "policy.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fleet hub: target %s: %w", e.Name(), err)
		}
		var f spec.FleetTarget
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("fleet hub: target %s: policy.json: %w", e.Name(), err)
		}
		if _, err := h.newController(e.Name(), &f); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Server returns the device API server.
func (h *Hub) Server() *server.Server { return h.srv }

// DeviceHandler serves the device API (enroll, desired, status), or, while
// Options.Leading reports false, answers 503 with Retry-After.
func (h *Hub) DeviceHandler() http.Handler { return h.leaderOnly(h.srv.Handler()) }

// leaderOnly answers 503 with Retry-After while the hub does not lead.
func (h *Hub) leaderOnly(next http.Handler) http.Handler {
	if h.opts.Leading == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.opts.Leading() {
			w.Header().Set("Retry-After", strconv.Itoa(int(FollowerRetryAfter/time.Second)))
			writeJSON(w, http.StatusServiceUnavailable, errorBody{"this agent is not the leader of its replicas; the leader serves the fleet: retry later"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Start runs the rollouts of every controller, and of those Target creates
// later, until ctx ends. It returns at once.
func (h *Hub) Start(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx != nil {
		return
	}
	h.ctx = ctx
	for _, c := range h.ctls {
		h.startLocked(c)
	}
}

func (h *Hub) startLocked(c *controller.Controller) {
	ctx := h.ctx
	go func() {
		if err := c.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			h.log.Error("fleet controller stopped", "error", err.Error())
		}
	}()
}

// Target returns the controller of fleet target name with policy f,
// creating it on first use (and starting it when the hub runs) and
// otherwise giving it f, so a changed rollout policy applies from the next
// step. The policy is saved so that Open restores the controller.
func (h *Hub) Target(name string, f *spec.FleetTarget) (*controller.Controller, error) {
	if !targetNameRE.MatchString(name) || f == nil {
		return nil, fmt.Errorf("fleet hub: invalid fleet target %q", name)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("fleet hub: target %s: %w", name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	dir := filepath.Join(h.opts.Dir, "targets", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet hub: %w", err)
	}
	if old, err := os.ReadFile(filepath.Join(dir, "policy.json")); err != nil || string(old) != string(b) {
		if err := server.WriteFileAtomic(filepath.Join(dir, "policy.json"), b); err != nil {
			return nil, fmt.Errorf("fleet hub: target %s: %w", name, err)
		}
	}
	if c, ok := h.ctls[name]; ok {
		c.SetFleet(f)
		return c, nil
	}
	c, err := h.newControllerLocked(name, f)
	if err != nil {
		return nil, err
	}
	if h.ctx != nil {
		h.startLocked(c)
	}
	return c, nil
}

func (h *Hub) newController(name string, f *spec.FleetTarget) (*controller.Controller, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.newControllerLocked(name, f)
}

func (h *Hub) newControllerLocked(name string, f *spec.FleetTarget) (*controller.Controller, error) {
	c, err := controller.New(controller.Options{
		Name: name, Fleet: f, Server: h.srv, Dir: filepath.Join(h.opts.Dir, "targets", name),
		Now: h.opts.Now, Resync: h.opts.Resync, Logger: h.log.With("component", "fleet", "target", name),
		OnEvent: h.met.onEvent,
	})
	if err != nil {
		return nil, fmt.Errorf("fleet hub: target %s: %w", name, err)
	}
	h.ctls[name] = c
	return c, nil
}

// Controller returns the controller of fleet target name. Errors wrap
// ErrUnknownTarget.
func (h *Hub) Controller(name string) (*controller.Controller, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.ctls[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q (known: %v)", ErrUnknownTarget, name, slices.Sorted(maps.Keys(h.ctls)))
	}
	return c, nil
}

// Rollouts returns the rollouts of target (every target when empty),
// sorted by target and app.
func (h *Hub) Rollouts(target string) ([]controller.Rollout, error) {
	h.mu.Lock()
	names := slices.Sorted(maps.Keys(h.ctls))
	ctls := maps.Clone(h.ctls)
	h.mu.Unlock()
	if target != "" {
		if _, ok := ctls[target]; !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownTarget, target)
		}
		names = []string{target}
	}
	out := []controller.Rollout{}
	for _, n := range names {
		out = append(out, ctls[n].Rollouts()...)
	}
	return out, nil
}

// FleetTarget is Target as a targets.Target, for targets/open.Options.Fleets.
func (h *Hub) FleetTarget(name string, f *spec.FleetTarget) (targets.Target, error) {
	c, err := h.Target(name, f)
	if err != nil {
		return nil, err
	}
	return c, nil
}
