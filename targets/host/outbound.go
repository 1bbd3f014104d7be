package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferry-wasm/ferry/deploy/outbound"
	"github.com/ferry-wasm/ferry/targets/host/abi"
)

const maxOutboundPerCall = 64

// allowSet is a component's parsed allowed_outbound_hosts. The grammar
// and the matching rules are deploy/outbound's, the same code the spec
// validates with (ABI.md, LANGUAGE.md).
type allowSet struct{ rules outbound.List }

// parseAllowed parses a component's allowed_outbound_hosts; an entry that
// does not parse makes the app invalid.
func parseAllowed(hosts []string) (allowSet, error) {
	l, err := outbound.ParseList(hosts)
	if err != nil {
		return allowSet{}, fmt.Errorf("%w: allowed_outbound_hosts: %w", ErrInvalidApp, err)
	}
	return allowSet{rules: l}, nil
}

// allows reports whether a request to u is allowed.
func (s allowSet) allows(u *url.URL) bool { return s.rules.Allows(u) }

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
