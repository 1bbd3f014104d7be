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

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// targetOptions tune how targets are opened.
type targetOptions struct {
	// LockTTL is the lease of a host's apply lock (zero: the host's
	// default, 30 s); a holder that dies keeps the lock that long.
	LockTTL time.Duration
	// Logger receives the targets' warnings (a lost apply lock). Nil
	// discards them.
	Logger *slog.Logger
	// Credentials are the operator's host credentials; a host target that
	// names one (credential = "NAME") gets its token and TLS files, for the
	// endpoints the credential allows only. Nil: no credentials.
	Credentials spec.Credentials
	// DefaultToken is sent to host targets that name no credential. Only
	// commands run by hand set it (--host-token-file, FERRY_HOST_TOKEN);
	// the agent never does, so a commit cannot send an agent secret to an
	// endpoint of its choosing. Empty: no token.
	DefaultToken string
}

// credFlags are the flags that give commands their host credentials.
type credFlags struct {
	file          string // --credentials
	hostTokenFile string // --host-token-file (by hand only)
}

// register adds --credentials and, for commands run by hand, also
// --host-token-file.
func (f *credFlags) register(cmd *cobra.Command, byHand bool) {
	cmd.Flags().StringVar(&f.file, "credentials", os.Getenv("FERRY_CREDENTIALS"),
		"host credentials file: credential blocks that host targets name with credential = \"NAME\" (default $FERRY_CREDENTIALS)")
	if byHand {
		cmd.Flags().StringVar(&f.hostTokenFile, "host-token-file", "",
			"bearer token for host targets that name no credential (default: $FERRY_HOST_TOKEN)")
	}
}

// apply fills o's credentials: the credentials file when given and, when
// byHand, the default token from --host-token-file or FERRY_HOST_TOKEN.
// Errors name files, never their contents.
func (f *credFlags) apply(o targetOptions, byHand bool) (targetOptions, error) {
	if f.file != "" {
		creds, diags := spec.LoadCredentials(f.file)
		if diags.HasErrors() {
			return o, fmt.Errorf("--credentials: %s", diags.Error())
		}
		o.Credentials = creds
	}
	if !byHand {
		return o, nil
	}
	if f.hostTokenFile != "" {
		b, err := os.ReadFile(expandHome(f.hostTokenFile))
		if err != nil {
			return o, fmt.Errorf("--host-token-file: %w", err)
		}
		o.DefaultToken = strings.TrimSpace(string(b))
	} else {
		o.DefaultToken = os.Getenv("FERRY_HOST_TOKEN")
	}
	return o, nil
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
// a driver.Group when the block lists several endpoints (every host runs
// every app; see driver.Group for how health is decided).
func hostTarget(t *spec.Target, o targetOptions) (targets.Target, error) {
	h := t.Host
	if len(h.Endpoints) == 0 {
		return nil, fmt.Errorf("no endpoint")
	}
	var clients []*driver.Client
	for _, ep := range h.Endpoints {
		c, err := hostClientFor(t, ep, o)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	if len(clients) == 1 {
		return clients[0], nil
	}
	return driver.NewGroup(clients...)
}

// hostClientFor builds the control API client for one endpoint of host
// target t: with the credential t names, which must exist and allow the
// endpoint, or with o.DefaultToken when t names none.
func hostClientFor(t *spec.Target, endpoint string, o targetOptions) (*driver.Client, error) {
	name := t.Host.Credential
	if name == "" {
		return hostClient(nil, endpoint, o)
	}
	cred := o.Credentials[name]
	switch {
	case cred == nil && len(o.Credentials) == 0:
		return nil, fmt.Errorf("it names credential %q, but no credentials file defines it (pass --credentials FILE)", name)
	case cred == nil:
		return nil, fmt.Errorf("it names credential %q, which the credentials file does not define (it defines %s)", name, strings.Join(o.Credentials.Names(), ", "))
	case !cred.Allows(endpoint):
		return nil, fmt.Errorf("credential %q may not be sent to %s: the credentials file allows it only for %s", name, endpoint, strings.Join(cred.Endpoints, ", "))
	}
	return hostClient(cred, endpoint, o)
}

// hostClient builds a control API client for one endpoint of a host
// target: the token and TLS files of cred, or o.DefaultToken without one.
// The caller has checked that cred allows endpoint.
func hostClient(cred *spec.Credential, endpoint string, o targetOptions) (*driver.Client, error) {
	opts := driver.ClientOptions{LockTTL: o.LockTTL, Logger: o.Logger}
	if cred == nil {
		return driver.NewClient(endpoint, o.DefaultToken, opts)
	}
	token := ""
	switch {
	case cred.TokenEnv != "":
		token = os.Getenv(cred.TokenEnv)
		if token == "" {
			return nil, fmt.Errorf("credential %s: environment variable %s (token_env) is empty; set it to the host's control token", cred.Name, cred.TokenEnv)
		}
	case cred.TokenFile != "":
		b, err := os.ReadFile(expandHome(cred.TokenFile))
		if err != nil {
			return nil, fmt.Errorf("credential %s: token_file: %w", cred.Name, err)
		}
		token = strings.TrimSpace(string(b))
	}
	if cred.CAFile != "" || cred.ClientCertFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if cred.CAFile != "" {
			pem, err := os.ReadFile(expandHome(cred.CAFile))
			if err != nil {
				return nil, fmt.Errorf("credential %s: ca_file: %w", cred.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("credential %s: ca_file %s: no PEM certificates", cred.Name, cred.CAFile)
			}
			cfg.RootCAs = pool
		}
		if cred.ClientCertFile != "" {
			cert, err := tls.LoadX509KeyPair(expandHome(cred.ClientCertFile), expandHome(cred.ClientKeyFile))
			if err != nil {
				return nil, fmt.Errorf("credential %s: client certificate: %w", cred.Name, err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts.TLS = cfg
	}
	return driver.NewClient(endpoint, token, opts)
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
