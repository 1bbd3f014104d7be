package device

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
)

// maxBody bounds every answer the device reads from the server: 4 MiB.
const maxBody = 4 << 20

// CheckServerURL accepts an https URL, or an http URL whose host is a
// loopback address (127.0.0.0/8, ::1, localhost); anything else wraps
// ErrInsecureURL (or is not a URL at all).
func CheckServerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("server URL %q: want http(s)://HOST[:PORT][/PATH]", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("server URL: user information is not allowed in it")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%w: %s (use https://, with --ca-file for a private CA)", ErrInsecureURL, u.Host)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewHTTPClient returns the client a device talks to its server with:
// TLS 1.2 or later, trusting the system roots plus the PEM certificates in
// caFile (when given), no overall timeout (each call bounds itself; a
// long-poll lasts up to its wait), and bounded dial and handshake times.
func NewHTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.MaxIdleConnsPerHost = 2
	tr.Proxy = nil // a device dials its server itself
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates in it", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}

// Client speaks the device protocol (package api) to one server. It holds
// no state but the server's URL and the HTTP client; it is safe for
// concurrent use. Create it with NewClient.
type Client struct {
	base *url.URL
	hc   *http.Client
}

// NewClient returns a client of the server at serverURL (CheckServerURL)
// that uses hc (nil: NewHTTPClient with no CA file).
func NewClient(serverURL string, hc *http.Client) (*Client, error) {
	u, err := CheckServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		if hc, err = NewHTTPClient(""); err != nil {
			return nil, err
		}
	}
	return &Client{base: u, hc: hc}, nil
}

// URL returns the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// callTimeout bounds the calls that are not long-polls.
const callTimeout = 30 * time.Second

// Enroll posts req (POST api.PathEnroll) and returns the server's answer.
// A refused token wraps ErrBadToken; an unreachable server or a 5xx wraps
// ErrUnavailable.
func (c *Client) Enroll(ctx context.Context, req api.EnrollRequest) (api.EnrollResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return api.EnrollResponse{}, err
	}
	resp, err := c.do(ctx, http.MethodPost, api.PathEnroll, "", "", body)
	if err != nil {
		return api.EnrollResponse{}, fmt.Errorf("enrolling: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return api.EnrollResponse{}, fmt.Errorf("enrolling: %w", errorOf(resp))
	}
	var out api.EnrollResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&out); err != nil {
		return api.EnrollResponse{}, fmt.Errorf("enrolling: %w: answer does not parse: %v", ErrProtocol, err)
	}
	if out.DeviceID == "" || out.Credential == "" {
		return api.EnrollResponse{}, fmt.Errorf("enrolling: %w: answer lacks the device ID or the credential", ErrProtocol)
	}
	return out, nil
}

// Desired long-polls the device's desired state. version is the version
// the device has ("" for none: the server answers at once); wait is how
// long the server may hold the request when nothing changed. changed is
// false on 304 Not Modified (d is then zero).
func (c *Client) Desired(ctx context.Context, cred Credential, version string, wait time.Duration) (d api.Desired, changed bool, err error) {
	if wait <= 0 {
		wait = api.DefaultWait
	}
	wait = min(wait, api.MaxWait)
	// The server holds the request up to wait; give it room to answer.
	ctx, cancel := context.WithTimeout(ctx, wait+callTimeout)
	defer cancel()
	path := fmt.Sprintf(api.PathDesiredFmt, url.PathEscape(cred.DeviceID)) + "?wait=" + url.QueryEscape(wait.String())
	etag := ""
	if version != "" {
		etag = strconv.Quote(version)
	}
	resp, err := c.do(ctx, http.MethodGet, path, cred.Secret, etag, nil)
	if err != nil {
		return api.Desired{}, false, fmt.Errorf("polling desired state: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return api.Desired{}, false, nil
	case http.StatusOK:
	default:
		return api.Desired{}, false, fmt.Errorf("polling desired state: %w", errorOf(resp))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&d); err != nil {
		// Not the decoder's message: it may quote a value.
		return api.Desired{}, false, fmt.Errorf("polling desired state: %w: the body does not parse as desired state", ErrProtocol)
	}
	if d.Version == "" {
		if tag := resp.Header.Get("ETag"); tag != "" {
			d.Version = strings.Trim(strings.TrimPrefix(tag, "W/"), `"`)
		}
	}
	return d, true, nil
}

// PutStatus sends the device's status (PUT api.PathStatusFmt; 204).
func (c *Client) PutStatus(ctx context.Context, cred Credential, rep api.StatusReport) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPut, fmt.Sprintf(api.PathStatusFmt, url.PathEscape(cred.DeviceID)), cred.Secret, "", body)
	if err != nil {
		return fmt.Errorf("reporting status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("reporting status: %w", errorOf(resp))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)) //nolint:errcheck // for connection reuse
	return nil
}

// do sends one request. A transport error wraps ErrUnavailable; its
// message names the URL (never the credential, which travels only in the
// Authorization header).
func (c *Client) do(ctx context.Context, method, path, secret, ifNoneMatch string, body []byte) (*http.Response, error) {
	u := c.base.String() + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s %s: %v", ErrUnavailable, method, c.base.Redacted()+strings.SplitN(path, "?", 2)[0], unwrapURLError(err))
	}
	return resp, nil
}

// unwrapURLError drops url.Error's "Get URL:" prefix (do names the URL).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorOf turns a non-success answer into an error wrapping the matching
// sentinel, with the server's message (api.ErrorBody) when it sent one.
func errorOf(resp *http.Response) error {
	var eb api.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(b, &eb)
	msg := eb.Error
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	var sentinel error
	switch {
	case resp.StatusCode == http.StatusUnauthorized && eb.Code == api.CodeBadToken:
		sentinel = ErrBadToken
	case resp.StatusCode == http.StatusUnauthorized:
		sentinel = ErrUnauthorized
	case resp.StatusCode == http.StatusForbidden:
		sentinel = ErrForbidden
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		sentinel = ErrUnavailable
	default:
		sentinel = ErrProtocol
	}
	err := fmt.Errorf("%w: server answered %d: %s", sentinel, resp.StatusCode, msg)
	if sentinel == ErrUnavailable {
		if secs, perr := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); perr == nil && secs > 0 {
			return &retryAfterError{err: err, after: min(time.Duration(secs)*time.Second, maxRetryAfter)}
		}
	}
	return err
}

// maxRetryAfter bounds the wait a server's Retry-After may ask for.
const maxRetryAfter = 10 * time.Minute

// retryAfterError is an ErrUnavailable answer that said when to retry (a
// 503 of an agent that is not the fleet's leader, a 429).
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter returns how long the server asked the device to wait before
// it retries (its Retry-After header, in seconds, at most 10 minutes), or
// zero when err carries no such answer.
func RetryAfter(err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after
	}
	return 0
}
