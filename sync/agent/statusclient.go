package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// Client talks to an agent's status API (see Agent.APIHandler). The zero
// value is not usable: set BaseURL. A Client is safe for concurrent use.
type Client struct {
	// BaseURL is the agent's address, e.g. "http://127.0.0.1:8090".
	BaseURL string
	// Token is the API's bearer token. It is never included in errors.
	Token string
	// HTTP is the client used. Nil means http.DefaultClient.
	HTTP *http.Client
}

// APIError is a non-2xx answer of the status API.
type APIError struct {
	// Code is the HTTP status code.
	Code int
	// Message is the server's error message.
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("status API: %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Unwrap returns ErrUnauthorized for a 401.
func (e *APIError) Unwrap() error {
	if e.Code == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("status API: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("status API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("status API: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(b))
		}
		return &APIError{Code: resp.StatusCode, Message: eb.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("status API: decode %s: %w", path, err)
		}
	}
	return nil
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// History returns up to limit records of app, newest first (limit ≤ 0:
// the server's default).
func (c *Client) History(ctx context.Context, app string, limit int) ([]history.AppRecord, error) {
	var h HistoryResponse
	q := url.Values{"app": {app}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if err := c.do(ctx, http.MethodGet, "/v1/history?"+q.Encode(), nil, &h); err != nil {
		return nil, err
	}
	return h.Records, nil
}

// Rounds returns up to limit rounds, newest first.
func (c *Client) Rounds(ctx context.Context, limit int) ([]history.Round, error) {
	var h HistoryResponse
	path := "/v1/history"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &h); err != nil {
		return nil, err
	}
	return h.Rounds, nil
}

// Rollback pins app to digest (empty: the previous version); see
// Agent.Pin.
func (c *Client) Rollback(ctx context.Context, app, digest string) (*history.Pin, error) {
	var p history.Pin
	if err := c.do(ctx, http.MethodPost, "/v1/rollback", AppRequest{App: app, Digest: digest}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Unpin removes app's rollback pin.
func (c *Client) Unpin(ctx context.Context, app string) error {
	return c.do(ctx, http.MethodPost, "/v1/unpin", AppRequest{App: app}, nil)
}

// Suspend makes the agent leave app alone.
func (c *Client) Suspend(ctx context.Context, app string) error {
	return c.do(ctx, http.MethodPost, "/v1/suspend", AppRequest{App: app}, nil)
}

// Resume undoes Suspend.
func (c *Client) Resume(ctx context.Context, app string) error {
	return c.do(ctx, http.MethodPost, "/v1/resume", AppRequest{App: app}, nil)
}

// Sync wakes a round now.
func (c *Client) Sync(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/sync", nil, nil)
}
