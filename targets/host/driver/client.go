package driver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

// ClientOptions configure a Client. The zero value is a plain client with
// no timeout of its own (contexts bound each call).
type ClientOptions struct {
	// HTTPClient makes the requests. Nil means a client built from TLS (or
	// http.DefaultTransport's settings when TLS is nil).
	HTTPClient *http.Client
	// TLS is the client TLS configuration for an https:// endpoint: the CA
	// that signed the host's certificate (RootCAs) and, for mTLS, the
	// client certificate. Ignored when HTTPClient is set.
	TLS *tls.Config
	// LockTTL is the lease asked for when taking the host's apply lock
	// (Hold, Lock), between api.MinLockTTL and api.MaxLockTTL; it is renewed every
	// third of it. Zero means the host's default, api.DefaultLockTTL. A holder
	// that dies keeps the lock this long.
	LockTTL time.Duration
	// Logger receives the apply lock's warnings: failed renewals, a lost
	// lease, a failed release. Nil discards. Tokens are never logged.
	Logger *slog.Logger
}

// Client talks to one ferry-host's control API. It implements
// targets.Target and targets.RollBacker, and targets.Locker with the host's
// apply lock (Lock). It is safe for concurrent use.
type Client struct {
	base    string
	token   string
	hc      *http.Client
	lockTTL time.Duration
	log     *slog.Logger

	leaseMu sync.Mutex
	lease   string // the held apply lock's lease id, sent as api.LeaseHeader
}

var (
	_ targets.Target        = (*Client)(nil)
	_ targets.RollBacker    = (*Client)(nil)
	_ targets.OwnerRecorder = (*Client)(nil)
	_ targets.Locker        = (*Client)(nil)
	_ targets.LockInspector = (*Client)(nil)
)

// NewClient returns a client for the host whose control API listens at
// endpoint ("http://127.0.0.1:8081", "https://edge-1:8081"), sending token
// as the bearer token. It fails only on an endpoint that is not an http or
// https URL.
func NewClient(endpoint, token string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: endpoint %q is not an http:// or https:// URL", ErrBadRequest, endpoint)
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if opts.TLS != nil {
			tr.TLSClientConfig = opts.TLS.Clone()
		}
		hc = &http.Client{Transport: tr}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), token: token, hc: hc, lockTTL: opts.LockTTL, log: log}, nil
}

// Endpoint returns the control API's base URL.
func (c *Client) Endpoint() string { return c.base }

// Apps returns every app on the host.
func (c *Client) Apps(ctx context.Context) ([]api.AppInfo, error) {
	var lr api.ListResponse
	if err := c.do(ctx, http.MethodGet, "/v1/apps", nil, &lr); err != nil {
		return nil, err
	}
	return lr.Apps, nil
}

// App returns one app; ErrNotFound when the host does not run it.
func (c *Client) App(ctx context.Context, name string) (api.AppInfo, error) {
	var ai api.AppInfo
	err := c.do(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(name), nil, &ai)
	return ai, err
}

// PutApp deploys the artifact req names as app name and returns the host's
// status for it once the new version serves.
func (c *Client) PutApp(ctx context.Context, name string, req api.PutRequest) (api.AppInfo, error) {
	var ai api.AppInfo
	err := c.do(ctx, http.MethodPut, "/v1/apps/"+url.PathEscape(name), req, &ai)
	return ai, err
}

// DeleteApp removes app name; absent is not an error.
func (c *Client) DeleteApp(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/apps/"+url.PathEscape(name), nil, nil)
}

// RollBackApp switches app name back to its previous version and returns
// its new status.
func (c *Client) RollBackApp(ctx context.Context, name string) (api.AppInfo, error) {
	var ai api.AppInfo
	err := c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(name)+"/rollback", nil, &ai)
	return ai, err
}

// Observe implements targets.Target: every app on the host (all managed).
func (c *Client) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	apps, err := c.Apps(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]targets.ObservedApp, 0, len(apps))
	for _, a := range apps {
		out = append(out, observed(a))
	}
	return out, nil
}

// ObserveApp implements targets.AppObserver: GET /v1/apps/NAME, nil when
// the host does not run it.
func (c *Client) ObserveApp(ctx context.Context, name string) (*targets.ObservedApp, error) {
	a, err := c.App(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	o := observed(a)
	return &o, nil
}

// observed is what Observe reports for a.
func observed(a api.AppInfo) targets.ObservedApp {
	o := targets.ObservedApp{
		Name: a.Name, Ref: a.Ref, Digest: a.Digest, Managed: a.Managed, Owner: a.Owner, Status: a.Status,
		Healthy: a.Healthy, Phase: PhaseOf(a), Previous: a.Previous, Message: a.Message, SecretHashes: a.SecretHashes,
	}
	if rb := a.RolledBack; rb != nil {
		o.RolledBack = &targets.Rollback{From: rb.From, To: rb.To, Reason: rb.Reason, At: rb.At}
	}
	return o
}

// Put implements targets.Target: the host pulls want.Ref by want.Digest,
// verifies it against its own trust policy and deploys it with
// want.Secrets, recording want.Owner as the app's owner. want.App is not sent: the host uses the configuration in
// the signed artifact. Errors wrap targets.ErrVerification (403),
// targets.ErrUnhealthy (422) or targets.ErrUnavailable (502/503/504 or no
// answer) where they apply. A host deploys synchronously: Put returns once
// the new version serves and is healthy, so a nil error comes with
// targets.PhaseReady.
func (c *Client) Put(ctx context.Context, want targets.DesiredApp) (targets.PutResult, error) {
	_, err := c.PutApp(ctx, want.Name, api.PutRequest{Ref: want.Ref, Digest: want.Digest, Secrets: want.Secrets, Owner: want.Owner})
	if err != nil {
		return targets.PutResult{}, err
	}
	return targets.PutResult{Phase: targets.PhaseReady}, nil
}

// PhaseOf is the phase of an app as a ferry-host reports it: serving and
// healthy is targets.PhaseReady, failed (it could not be brought back after
// a restart) targets.PhaseFailed, and anything else (serving but unhealthy,
// a status word this driver does not know) targets.PhaseDegraded. A host
// never reports targets.PhaseProgressing: its deploys are synchronous.
func PhaseOf(a api.AppInfo) targets.Phase {
	switch {
	case a.Status == api.StatusFailed:
		return targets.PhaseFailed
	case a.Status == api.StatusServing && a.Healthy:
		return targets.PhaseReady
	}
	return targets.PhaseDegraded
}

// RecordsOwners implements targets.OwnerRecorder: a ferry-host records
// api.PutRequest.Owner and reports it in api.AppInfo.Owner.
func (c *Client) RecordsOwners() bool { return true }

// Delete implements targets.Target.
func (c *Client) Delete(ctx context.Context, name string) error { return c.DeleteApp(ctx, name) }

// RollBack implements targets.RollBacker.
func (c *Client) RollBack(ctx context.Context, name string) error {
	_, err := c.RollBackApp(ctx, name)
	return err
}

// do sends one request and decodes the answer into out (when non-nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	op := method + " " + path
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return &APIError{Op: op, Message: "encoding request: " + err.Error(), Err: ErrBadRequest}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return &APIError{Op: op, Message: err.Error(), Err: ErrBadRequest}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if strings.HasPrefix(path, "/v1/apps/") && method != http.MethodGet {
		c.leaseMu.Lock()
		if c.lease != "" {
			req.Header.Set(api.LeaseHeader, c.lease)
		}
		c.leaseMu.Unlock()
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// url.Error's message carries the URL, never the header.
		return &APIError{Op: op, Message: err.Error(), Err: errors.Join(targets.ErrUnavailable, ctx.Err())}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &APIError{Op: op, StatusCode: resp.StatusCode, Message: "reading answer: " + err.Error(), Err: targets.ErrUnavailable}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return &APIError{Op: op, StatusCode: resp.StatusCode, Message: "decoding answer: " + err.Error(), Err: ErrServer}
		}
		return nil
	}
	var eb api.ErrorBody
	if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
		eb.Error = strings.TrimSpace(string(data))
		if len(eb.Error) > 512 {
			eb.Error = eb.Error[:512] + "..."
		}
	}
	return &APIError{Op: op, StatusCode: resp.StatusCode, Code: eb.Code, Message: eb.Error, Err: sentinelFor(resp.StatusCode, eb.Code), Lock: eb.Lock}
}

// sentinelFor maps an error status (and code) to the client's sentinels.
func sentinelFor(status int, code string) error {
	switch {
	case status == http.StatusBadRequest:
		return ErrBadRequest
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return targets.ErrVerification
	case status == http.StatusGone, status == http.StatusNotFound && code == api.CodeLeaseNotFound:
		return ErrLeaseLost
	case status == http.StatusNotFound && code == api.CodeArtifactNotFound:
		return ErrArtifactNotFound
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusConflict && code == api.CodeLocked:
		return ErrLocked
	case status == http.StatusConflict:
		return ErrNoPrevious
	case status == http.StatusUnprocessableEntity:
		return targets.ErrUnhealthy
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout,
		status == http.StatusTooManyRequests:
		return targets.ErrUnavailable
	}
	return ErrServer
}
