package core

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// Config is what an entry point decides about one ferry-host; Open builds
// the rest the same way for every entry point.
type Config struct {
	// Runtime configures the runtime. Open sets its Metrics to the
	// registry it makes; the rest is used as given.
	Runtime host.Options
	// StoreDir is the state directory of deployed apps (package state).
	// Required.
	StoreDir string
	// Registry configures the client that pulls artifacts. Open adds the
	// environment's registry login (registry.EnvCredentials of Getenv) to
	// its Credentials; Registry.Insecure also makes signature verification
	// use plain HTTP.
	Registry registry.Options
	// Getenv reads the environment's registry login. Nil means none.
	Getenv func(string) string
	// Policy, InsecureSkipVerify and SecretHashKey are as in Options.
	Policy             signer.Policy
	InsecureSkipVerify bool
	SecretHashKey      []byte
	// Logger is the core's logger (Options.Logger). Nil discards.
	Logger *slog.Logger
}

// Open builds a ferry-host core as every entry point does: a metrics
// registry with the Go and process collectors, the state directory, a
// registry client with the environment's login, signature verification
// that reaches the registry with the same login, and the runtime (its
// collectors and the core's in that registry). Metrics returns the
// registry; Close closes the runtime. An error from the environment's
// login wraps registry.ErrCredentialHost.
func Open(cfg Config) (*Core, error) {
	st, err := state.Open(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	regOpts := cfg.Registry
	// Logins are per registry host (the Docker config's "auths", and the
	// environment's login only for FERRY_REGISTRY_HOST): a PUT naming
	// another registry gets no credentials from this host.
	creds, err := registry.EnvCredentials(getenv)
	if err != nil {
		return nil, err
	}
	if len(creds) > 0 {
		merged := make(map[string]registry.Credential, len(regOpts.Credentials)+len(creds))
		for h, c := range regOpts.Credentials {
			merged[h] = c
		}
		for h, c := range creds {
			merged[h] = c
		}
		regOpts.Credentials = merged
	}
	rc, err := registry.New(regOpts)
	if err != nil {
		return nil, err
	}

	rtOpts := cfg.Runtime
	rtOpts.Metrics = metrics
	rt, err := host.New(rtOpts)
	if err != nil {
		return nil, err
	}
	c, err := New(Options{
		Runtime:            rt,
		Store:              st,
		Registry:           rc,
		Policy:             cfg.Policy,
		InsecureSkipVerify: cfg.InsecureSkipVerify,
		Verify: signer.RegistryOptions{
			PlainHTTP:   regOpts.Insecure,
			Credentials: rc.CredentialFor,
		},
		SecretHashKey: cfg.SecretHashKey,
		Logger:        cfg.Logger,
		Metrics:       metrics,
	})
	if err != nil {
		_ = rt.Close(context.Background())
		return nil, fmt.Errorf("core: %w", err)
	}
	c.closeRT, c.reg = true, metrics
	return c, nil
}

// Metrics returns the metrics registry Open made (the Go, process,
// runtime and core collectors; register more there); nil for a Core made
// with New.
func (s *Core) Metrics() *prometheus.Registry { return s.reg }

// Close closes the runtime Open made, stopping the guests still running
// when ctx ends (host.Runtime.Close). For a Core made with New it does
// nothing: the caller owns the runtime.
func (s *Core) Close(ctx context.Context) error {
	if !s.closeRT {
		return nil
	}
	return s.rt.Close(ctx)
}
