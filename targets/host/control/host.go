package control

import (
	"context"
	"errors"

	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/core"
)

// NewHost builds a ferry-host the way `ferry-host` and `ferry up` both do:
// the core from core.Open(cfg) (runtime, state directory, registry client
// and signature verification sharing the environment's registry login,
// metrics), its secret hashes keyed with token (cfg.SecretHashKey is
// replaced by api.SecretHashKey(token)), and the control API over it,
// authenticated by token, logging to cfg.Logger and serving the core's
// metrics at GET /metrics. Close the Server's core (Server.Close) when
// done; restore (Server.Restore) and run the health prober
// (Server.RunHealth) as the entry point sees fit.
func NewHost(cfg core.Config, token string) (*Server, error) {
	if token == "" {
		return nil, errors.New("control: no bearer token configured")
	}
	cfg.SecretHashKey = api.SecretHashKey(token)
	c, err := core.Open(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := NewServer(Options{Core: c, Token: token, Logger: cfg.Logger, Metrics: c.Metrics()})
	if err != nil {
		_ = c.Close(context.Background())
		return nil, err
	}
	return srv, nil
}
