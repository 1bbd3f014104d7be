package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

const maxOutboundPerCall = 64

// allowSet holds "scheme://host:port" keys a component may call.
type allowSet map[string]struct{}

// originKey normalises a URL to scheme://host:port with the scheme's
// default port filled in.
func originKey(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("no host")
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

func parseAllowed(hosts []string) (allowSet, error) {
	s := allowSet{}
	for _, h := range hosts {
		u, err := url.Parse(h)
		if err != nil {
			return nil, fmt.Errorf("%w: allowed outbound host %q: %w", ErrInvalidApp, h, err)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("%w: allowed outbound host %q has a path", ErrInvalidApp, h)
		}
		k, err := originKey(u)
		if err != nil {
			return nil, fmt.Errorf("%w: allowed outbound host %q: %w", ErrInvalidApp, h, err)
		}
		s[k] = struct{}{}
	}
	return s, nil
}

func (s allowSet) allows(u *url.URL) bool {
	k, err := originKey(u)
	if err != nil {
		return false
	}
	_, ok := s[k]
	return ok
}

var errDenied = errors.New("host not in allowed_outbound_hosts")

// outboundDo performs a guest's outbound request (head format in ABI.md)
// if its origin is allowed, following redirects only to allowed origins.
func (c *component) outboundDo(ctx context.Context, head string, body []byte) (*http.Response, int32) {
	first, rest, _ := strings.Cut(head, "\n")
	method, rawURL, ok := strings.Cut(strings.TrimSpace(first), " ")
	if !ok {
		return nil, abi.ErrInvalid
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || !u.IsAbs() {
		return nil, abi.ErrInvalid
	}
	if !c.allowed.allows(u) {
		c.log.LogAttrs(ctx, slog.LevelWarn, "outbound request denied", slog.String("origin", u.Scheme+"://"+u.Host))
		return nil, abi.ErrDenied
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, abi.ErrInvalid
	}
	for _, line := range strings.Split(rest, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	client := *c.rt.client
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if !c.allowed.allows(r.URL) {
			return fmt.Errorf("redirect to %s: %w", r.URL.Host, errDenied)
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, errDenied) {
			return nil, abi.ErrDenied
		}
		// Log the cause without the URL: its query may carry a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "outbound request failed", slog.String("origin", u.Scheme+"://"+u.Host), slog.String("error", err.Error()))
		return nil, abi.ErrIO
	}
	return resp, 0
}
