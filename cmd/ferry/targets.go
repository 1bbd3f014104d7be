package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/control"
)

// targetOptions tune how targets are opened.
type targetOptions struct {
	// LockTTL is the lease of a host's apply lock (zero: the host's
	// default, 30 s); a holder that dies keeps the lock that long.
	LockTTL time.Duration
	// Logger receives the targets' warnings (a lost apply lock). Nil
	// discards them.
	Logger *slog.Logger
}

// warnLogger logs warnings and errors to w, for commands that print their
// results on stdout.
func warnLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openTargets connects to every target of cfg that this version of ferry can
// drive. Targets of kinds not supported yet are returned in skipped, with a
// reason, and are not planned.
func openTargets(cfg *spec.Config, only []string, o targetOptions) (map[string]targets.Target, map[string]string, error) {
	out := map[string]targets.Target{}
	skipped := map[string]string{}
	for _, t := range cfg.Targets {
		if len(only) > 0 && !containsString(only, t.Name) {
			continue
		}
		switch {
		case t.Type == spec.TargetHost && t.Host != nil:
			tg, err := hostTarget(t, o)
			if err != nil {
				return nil, nil, fmt.Errorf("target %s: %w", t.Name, err)
			}
			out[t.Name] = tg
		default:
			skipped[t.Name] = fmt.Sprintf("target %s is of type %q, which this version of ferry cannot deploy to yet; it was not planned", t.Name, t.Type)
		}
	}
	return out, skipped, nil
}

// hostTarget builds the target of a host block: one control API client, or
// a control.Group when the block lists several endpoints (every host runs
// every app; see control.Group for how health is decided).
func hostTarget(t *spec.Target, o targetOptions) (targets.Target, error) {
	h := t.Host
	if len(h.Endpoints) == 0 {
		return nil, fmt.Errorf("no endpoint")
	}
	var clients []*control.Client
	for _, ep := range h.Endpoints {
		c, err := hostClient(h, ep, o)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	if len(clients) == 1 {
		return clients[0], nil
	}
	return control.NewGroup(clients...)
}

// hostClient builds a control API client for one endpoint of a host
// target: the token from token_env or token_file, TLS from the CA and client
// certificate files.
func hostClient(h *spec.HostTarget, endpoint string, o targetOptions) (*control.Client, error) {
	token := ""
	switch {
	case h.TokenEnv != "":
		token = os.Getenv(h.TokenEnv)
		if token == "" {
			return nil, fmt.Errorf("environment variable %s (token_env) is empty; set it to the host's control token", h.TokenEnv)
		}
	case h.TokenFile != "":
		b, err := os.ReadFile(expandHome(h.TokenFile))
		if err != nil {
			return nil, fmt.Errorf("token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	opts := control.ClientOptions{LockTTL: o.LockTTL, Logger: o.Logger}
	if h.CAFile != "" || h.ClientCertFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if h.CAFile != "" {
			pem, err := os.ReadFile(expandHome(h.CAFile))
			if err != nil {
				return nil, fmt.Errorf("ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca_file %s: no PEM certificates", h.CAFile)
			}
			cfg.RootCAs = pool
		}
		if h.ClientCertFile != "" {
			cert, err := tls.LoadX509KeyPair(expandHome(h.ClientCertFile), expandHome(h.ClientKeyFile))
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts.TLS = cfg
	}
	return control.NewClient(endpoint, token, opts)
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func printSkipped(w io.Writer, skipped map[string]string) {
	for _, name := range sortedKeys(skipped) {
		fmt.Fprintf(w, "Warning: %s.\n", skipped[name])
	}
}
