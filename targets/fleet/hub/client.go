package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// Client speaks the admin API of an agent's hub (`ferry fleet`).
type Client struct {
	// BaseURL is the agent's API address, e.g. "http://127.0.0.1:8090".
	BaseURL string
	// Token is the agent API's bearer token; never included in errors.
	Token string
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
}

// APIError is a non-2xx answer of the admin API.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("agent answered %d", e.Code)
	}
	return fmt.Sprintf("agent answered %d: %s", e.Code, e.Message)
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
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e errorBody
		json.Unmarshal(b, &e) //nolint:errcheck // a body that is not JSON leaves Message empty
		return &APIError{Code: resp.StatusCode, Message: e.Error}
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// CreateToken creates an enrollment token.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (CreatedToken, error) {
	var out CreatedToken
	err := c.do(ctx, http.MethodPost, "/v1/fleet/tokens", req, &out)
	return out, err
}

// Tokens lists the enrollment tokens (never their secrets).
func (c *Client) Tokens(ctx context.Context) ([]server.Token, error) {
	var out []server.Token
	err := c.do(ctx, http.MethodGet, "/v1/fleet/tokens", nil, &out)
	return out, err
}

// RevokeToken revokes an enrollment token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/fleet/tokens/"+url.PathEscape(id), nil, nil)
}

// Devices lists the devices matching selector (Kubernetes syntax; empty:
// all).
func (c *Client) Devices(ctx context.Context, selector string) ([]server.Device, error) {
	var out []server.Device
	err := c.do(ctx, http.MethodGet, "/v1/fleet/devices?selector="+url.QueryEscape(selector), nil, &out)
	return out, err
}

// RevokeDevice revokes a device's credential at once.
func (c *Client) RevokeDevice(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/fleet/devices/"+url.PathEscape(id)+"/revoke", nil, nil)
}

// Rollouts returns the rollouts of target (all when empty).
func (c *Client) Rollouts(ctx context.Context, target string) ([]controller.Rollout, error) {
	var out []controller.Rollout
	err := c.do(ctx, http.MethodGet, "/v1/fleet/rollouts?target="+url.QueryEscape(target), nil, &out)
	return out, err
}

// Act pauses, resumes or aborts (action) the rollout of app on target and
// returns its status after.
func (c *Client) Act(ctx context.Context, target, app, action, reason string) (controller.Rollout, error) {
	var out controller.Rollout
	var in any
	if action == "abort" && reason != "" {
		in = AbortRequest{Reason: reason}
	}
	err := c.do(ctx, http.MethodPost, "/v1/fleet/rollouts/"+url.PathEscape(target)+"/"+url.PathEscape(app)+"/"+url.PathEscape(action), in, &out)
	return out, err
}
