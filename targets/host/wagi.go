package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// runWAGI runs a fresh instance of a WAGI module for the request: the CGI
// environment in environ, the body on stdin, the response on stdout.
func (c *component) runWAGI(ctx context.Context, cs *callState, r *http.Request, m *match) error {
	c.wagiEnv(cs, r, m)
	cs.addArg(m.t.script)
	if q := r.URL.RawQuery; q != "" {
		for _, a := range strings.Split(q, "&") {
			if u, err := url.QueryUnescape(a); err == nil {
				a = u
			}
			cs.addArg(a)
		}
	}
	if cs.wagiComp != c {
		// stderr, random_get and poll_oneoff's sleep go through the
		// callState, which bounds them and ends them with the request.
		cs.bindIO()
		cs.wagiComp, cs.wagiCfg = c, c.cfg.WithStdin(&cs.body).WithStdout(&cs.out).
			WithStderr(&cs.errW).WithRandSource(&cs.rnd).WithNanosleep(cs.sleepF)
	}
	cfg := cs.wagiCfg
	leave, err := c.enterApp(ctx)
	if err != nil {
		return err
	}
	defer leave()
	if err := c.reserveMem(ctx); err != nil {
		return err
	}
	defer c.releaseMem()
	c.alive.Add(1)
	c.m.instances.Inc()
	if c.eng.safe {
		sctx, cancel := cs.safeContext()
		defer cancel()
		ctx = sctx
	}
	mod, err := c.eng.rt.InstantiateModule(ctx, c.mod.cm, cfg)
	if err == nil && !c.eng.safe {
		_, err = startInstance(ctx, mod, "_start")
	}
	c.alive.Add(-1)
	c.m.instances.Dec()
	if mod != nil {
		mod.Close(context.Background())
	}
	return err
}

// startInstance runs the start function of an instrumented instance with its
// interrupt armed until ctx ends, as wazero runs start functions: an exit
// with code 0 is success. It returns the interrupt global.
func startInstance(ctx context.Context, mod api.Module, name string) (api.MutableGlobal, error) {
	g, ok := mod.ExportedGlobal(interruptExport).(api.MutableGlobal)
	if !ok {
		return nil, fmt.Errorf("instrumented module has no %s global", interruptExport)
	}
	fn := mod.ExportedFunction(name)
	if fn == nil {
		return g, nil
	}
	var err error
	if cs, ok := ctx.(*callState); ok {
		// The callState's own fireFn sets whichever global it holds: the
		// interrupt can only fire before finish, and the callState is
		// reused only after it.
		cs.intrG = g
		if cs.fireFn == nil {
			cs.fireFn = func() { cs.intrG.Set(1) }
		}
		cs.setInterrupt(cs.fireFn)
		_, err = fn.Call(ctx)
		cs.clearInterrupt()
	} else {
		stop := context.AfterFunc(ctx, func() { g.Set(1) })
		_, err = fn.Call(ctx)
		stop()
	}
	if isExit(err, 0) {
		err = nil
	}
	return g, err
}

// wagiEnv fills cs.env with the WAGI/CGI variables (see ABI.md), then the
// component's own Env, which wins on a clash.
func (c *component) wagiEnv(cs *callState, r *http.Request, m *match) {
	host, port := r.Host, ""
	if h, p, err := splitHostPort(r.Host); err == nil {
		host, port = h, p
	}
	if port == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if _, p, err := net.SplitHostPort(a.String()); err == nil {
				port = p
			}
		}
	}
	if port == "" {
		port = "80"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	remote := r.RemoteAddr
	if h, _, err := splitHostPort(remote); err == nil {
		remote = h
	}
	rawInfo := m.rest
	info := rawInfo
	if strings.IndexByte(info, '%') >= 0 {
		if u, err := url.PathUnescape(info); err == nil {
			info = u
		}
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}

	cs.addEnv("AUTH_TYPE", "")
	cs.env = strconv.AppendInt(append(cs.env, "CONTENT_LENGTH="...), int64(len(cs.bodyB)), 10)
	cs.endEnv()
	cs.addEnv("CONTENT_TYPE", r.Header.Get("Content-Type"))
	cs.addEnv("GATEWAY_INTERFACE", "CGI/1.1")
	cs.addEnv("PATH_INFO", info)
	cs.addEnv("PATH_TRANSLATED", info)
	cs.addEnv("QUERY_STRING", r.URL.RawQuery)
	cs.addEnv("REMOTE_ADDR", remote)
	cs.addEnv("REMOTE_HOST", remote)
	cs.addEnv("REMOTE_USER", "")
	cs.addEnv("REQUEST_METHOD", r.Method)
	cs.addEnv("SCRIPT_NAME", m.t.script)
	cs.addEnv("SERVER_NAME", host)
	cs.addEnv("SERVER_PORT", port)
	cs.addEnv("SERVER_PROTOCOL", r.Proto)
	cs.addEnv("SERVER_SOFTWARE", "ferry-host")
	cs.env = append(cs.env, "X_FULL_URL="...)
	cs.env = append(cs.env, scheme...)
	cs.env = append(cs.env, "://"...)
	cs.env = append(cs.env, host...)
	cs.env = append(cs.env, ':')
	cs.env = append(cs.env, port...)
	cs.env = append(cs.env, uri...)
	cs.endEnv()
	cs.addEnv("X_MATCHED_ROUTE", m.t.pattern)
	cs.addEnv("X_RAW_PATH_INFO", rawInfo)
	cs.addEnv("X_RELATIVE_PATH", strings.TrimPrefix(info, "/"))
	for i, name := range m.t.params {
		if i < len(m.params) {
			v := m.params[i]
			if u, err := url.PathUnescape(v); err == nil {
				v = u
			}
			cs.addEnvName("X_PARAM_", name)
			cs.env = append(cs.env, v...)
			cs.endEnv()
		}
	}
	for k, vs := range r.Header {
		if k == "Authorization" || k == "Connection" {
			continue
		}
		cs.addEnvName("HTTP_", k)
		for i, v := range vs {
			if i > 0 {
				cs.env = append(cs.env, ", "...)
			}
			cs.env = append(cs.env, v...)
		}
		cs.endEnv()
	}
	if r.Header.Get("Host") == "" && r.Host != "" {
		cs.addEnv("HTTP_HOST", r.Host)
	}
	for _, kv := range c.env {
		cs.env = append(cs.env, kv...)
		cs.env = append(cs.env, 0)
		cs.envN++
	}
}

var errNoHeaders = errors.New("no blank line after the CGI headers")

// writeCGIHead parses a CGI response (headers, blank line, body), sets the
// headers on w and returns the status and body. "Status: 404 Not Found" sets
// the status; "Location:" without a status means 302; the default is 200.
// At least one of Content-Type, Location or Status is required.
func writeCGIHead(w http.ResponseWriter, out []byte) (int, []byte, error) {
	status := http.StatusOK
	explicit, sufficient := false, false
	rest := out
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return 0, nil, errNoHeaders
		}
		line := rest[:i]
		rest = rest[i+1:]
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return 0, nil, fmt.Errorf("CGI header line %q has no colon", line)
		}
		k, v = bytes.TrimSpace(k), bytes.TrimSpace(v)
		if err := checkCGIHeader(k, v); err != nil {
			return 0, nil, err
		}
		name := canonicalKey(k)
		val := commonValue(v)
		switch name {
		case "Status":
			code := val
			if sp := strings.IndexByte(val, ' '); sp >= 0 {
				code = val[:sp]
			}
			n, err := strconv.Atoi(code)
			if err != nil || n < 100 || n > 999 {
				return 0, nil, fmt.Errorf("CGI status %q is not a status code", val)
			}
			status, explicit, sufficient = n, true, true
		case "Location":
			// Clients parse a redirect's Location before anything else
			// (Go's refuses the whole response otherwise): a value that is
			// no URL is the guest's error, answered 502 like any other.
			if _, err := url.Parse(val); err != nil || val == "" {
				return 0, nil, fmt.Errorf("CGI Location %q is not a URL", val)
			}
			w.Header().Set("Location", val)
			if !explicit {
				status = http.StatusFound
			}
			sufficient = true
		default:
			if name == "Content-Type" {
				sufficient = true
			}
			if name == "Content-Length" || name == "Transfer-Encoding" || name == "Connection" {
				continue // the host frames the body itself
			}
			w.Header().Add(name, val)
		}
	}
	if !sufficient {
		return 0, nil, errors.New("CGI response has none of Content-Type, Location or Status")
	}
	return status, rest, nil
}

// checkCGIHeader refuses a header the host could not pass on as valid
// HTTP: a name that is no token (RFC 9110 5.1) or a value with control
// characters other than tab (5.5). Clients refuse a whole response with
// one (found by FuzzWAGIResponse: a value "\x1f").
func checkCGIHeader(k, v []byte) error {
	if len(k) == 0 {
		return fmt.Errorf("CGI header line has an empty name")
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return fmt.Errorf("CGI header name %q is not a token", k)
		}
	}
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Errorf("CGI header %s has a control character in its value", k)
		}
	}
	return nil
}

// commonKeys are header names a CGI response usually has, returned by
// canonicalKey without allocating.
var commonKeys = []string{"Content-Type", "Status", "Location", "Content-Length", "Cache-Control", "Set-Cookie"}

// canonicalKey returns the canonical form of a header name.
func canonicalKey(k []byte) string {
	for _, c := range commonKeys {
		if len(k) == len(c) && bytes.EqualFold(k, []byte(c)) {
			return c
		}
	}
	return http.CanonicalHeaderKey(string(k))
}

// commonValues are header values a CGI response usually has, returned by
// commonValue without allocating.
var commonValues = []string{
	"text/plain", "text/plain; charset=utf-8", "text/html", "text/html; charset=utf-8",
	"application/json", "application/octet-stream", "no-cache", "no-store",
}

// commonValue returns v as a string, without allocating when it is one of
// commonValues.
func commonValue(v []byte) string {
	for _, c := range commonValues {
		if string(v) == c {
			return c
		}
	}
	return string(v)
}

var errNoPort = errors.New("no port")

// splitHostPort is net.SplitHostPort without the allocated error for the
// common case of a host without a port.
func splitHostPort(hp string) (host, port string, err error) {
	if strings.IndexByte(hp, ':') < 0 {
		return "", "", errNoPort
	}
	return net.SplitHostPort(hp)
}
