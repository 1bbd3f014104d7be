package control

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/internal/httproute"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/core"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// DefaultMaxBodyBytes caps a request body: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Options configure a Server. The host core it serves is either Core, or
// made by NewServer from Runtime, Store, Registry, Policy,
// InsecureSkipVerify and Verify (with the secret hash key of Token, and
// Logger and Metrics).
type Options struct {
	// Core is the host core to serve, made with core.New or core.Open
	// with SecretHashKey api.SecretHashKey(Token) (NewHost does that).
	// When set, Runtime, Store and Registry must be nil and Policy,
	// InsecureSkipVerify and Verify are ignored (the core has its own).
	// Nil means NewServer makes one from them.
	Core *core.Core
	// Runtime serves the apps. Required unless Core is set.
	Runtime *host.Runtime
	// Store is the host's state directory. Nil means nothing is persisted
	// and Restore has nothing to do.
	Store *state.Store
	// Registry pulls artifacts by digest. Nil means PUTs of artifacts the
	// store does not already hold fail as unavailable (502).
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
	// Token is the bearer token every request but /healthz must carry.
	// Required: an empty token is refused by NewServer.
	Token string
	// Logger receives one line per deploy, rollback, delete and restore,
	// and per refused request. Nil discards. Tokens and secrets are never
	// logged.
	Logger *slog.Logger
	// Metrics, when set, gets the control API's collectors registered
	// (and the core's, when NewServer makes the core) and is what
	// GET /metrics serves (register the runtime's there too). Nil means
	// /metrics answers 404.
	Metrics *prometheus.Registry
	// MaxBodyBytes caps a request body. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Now is the clock of apply-lock leases (/v1/lock). Nil means
	// time.Now.
	Now func() time.Time
}

// Server is the control API: an http.Handler over a host core. The core's
// operations (Put, Get, List, Delete, RollBack, Restore, RunHealth) are
// promoted for in-process use. Create it with NewServer. It is safe for
// concurrent use.
type Server struct {
	*core.Core

	opts    Options
	log     *slog.Logger
	metrics *ctlMetrics
	tokenH  [32]byte
	handler *httproute.Mux // every route, recorded (Routes)
	leases  leaseTable
}

// Routes returns every route pattern the control API serves (http.ServeMux
// syntax, "PUT /v1/apps/{name}"), sorted: the list an endpoint table
// (tests, docs) must cover. GET /metrics is there only when
// Options.Metrics is set.
func (s *Server) Routes() []string { return s.handler.Patterns() }

// NewServer returns a Server. It fails when Token is missing, when
// neither Core nor Runtime is set (or Core with Runtime, Store or
// Registry), or when making the core fails (see core.New).
func NewServer(opts Options) (*Server, error) {
	if opts.Token == "" {
		return nil, errors.New("control: no bearer token configured")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{opts: opts, log: opts.Logger, Core: opts.Core}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.Core != nil {
		if opts.Runtime != nil || opts.Store != nil || opts.Registry != nil {
			return nil, errors.New("control: Options.Core is set together with Runtime, Store or Registry; the core has its own")
		}
	} else {
		if opts.Runtime == nil {
			return nil, errors.New("control: no runtime")
		}
		c, err := core.New(core.Options{
			Runtime: opts.Runtime, Store: opts.Store, Registry: opts.Registry, Policy: opts.Policy,
			InsecureSkipVerify: opts.InsecureSkipVerify, Verify: opts.Verify,
			SecretHashKey: api.SecretHashKey(opts.Token), Logger: opts.Logger, Metrics: metricsOrNil(opts.Metrics),
		})
		if err != nil {
			return nil, fmt.Errorf("control: %w", err)
		}
		s.Core = c
	}
	s.leases.now = opts.Now
	if s.leases.now == nil {
		s.leases.now = time.Now
	}
	s.tokenH = hashToken(opts.Token)
	s.handler = s.buildMux()
	s.metrics = newCtlMetrics()
	if opts.Metrics != nil {
		if err := s.metrics.register(opts.Metrics); err != nil {
			return nil, fmt.Errorf("control: registering metrics: %w", err)
		}
	}
	return s, nil
}

// metricsOrNil keeps a nil *prometheus.Registry a nil interface.
func metricsOrNil(r *prometheus.Registry) prometheus.Registerer {
	if r == nil {
		return nil
	}
	return r
}
