package sdk

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-wasm/ferry/sdk/internal/hostcall"
	"github.com/ferry-wasm/ferry/targets/host/abi"
)

// A reactor instance serves one request at a time, so the buffers below are
// reused from request to request: the request head, the response head and a
// body buffer. Everything handed to the handler (the request, its URL,
// header and strings) is freshly allocated, since a handler may keep it.

// maxBuffered is how much of a response body is buffered before the head is
// sent and the body streamed to the host; below it a response is one
// resp_start and one resp_write.
const maxBuffered = 64 << 10

var (
	headBuf = make([]byte, 4096)
	rw      = newResponseWriter(hostcall.RespStart, hostcall.RespWrite)
)

// serve handles one request: it reads the head from the host, runs the
// handler and sends the response. It returns non-zero when the request
// could not be served (the host then answers 500 and drops the instance).
func serve() int32 {
	head, c := hostcall.ReqHead(headBuf)
	if c < 0 {
		return 1
	}
	if cap(head) > cap(headBuf) {
		headBuf = head[:0]
	}
	return handle(handler, head, rw)
}

// handle serves the request of head with h, writing to w, which it leaves
// reset for the next request (a panicking handler included).
func handle(h http.Handler, head []byte, w *responseWriter) (code int32) {
	r, err := parseHead(head)
	if err != nil {
		return 2
	}
	defer func() {
		if p := recover(); p != nil {
			hostcall.Log(abi.LevelError, "ferry sdk: handler panicked: "+panicString(p))
			code = 3
		}
		w.reset()
	}()
	h.ServeHTTP(w, r)
	w.finish()
	if w.failed {
		return 4
	}
	return 0
}

func panicString(p any) string {
	switch v := p.(type) {
	case error:
		return v.Error()
	case string:
		return v
	}
	return "non-string panic"
}

// inlineValues is how many header values share the request's allocation
// (more get a slice of their own): with 4, the allocation is 512 bytes, a
// size class of Go's allocator.
const inlineValues = 4

// request is a request, its URL and the backing array of its first header
// values, allocated together: under wasm an allocation costs several
// hundred nanoseconds, and each byte allocated brings the next garbage
// collection closer.
type request struct {
	r    http.Request
	u    url.URL
	vals [inlineValues]string
}

// parseHead builds a request from the head format of ABI.md. The head is
// copied once, into a string that the request's fields share.
func parseHead(head []byte) (*http.Request, error) {
	a, s := new(request), string(head)
	var lines [6]string
	for i := range lines {
		j := strings.IndexByte(s, '\n')
		if j < 0 {
			return nil, io.ErrUnexpectedEOF
		}
		lines[i], s = s[:j], s[j+1:]
	}
	r := &a.r
	uri := lines[1]
	if path, query, ok := strings.Cut(uri, "?"); plainPath(path) && validQuery(query) {
		// The common case, as url.ParseRequestURI would parse it: a path
		// with nothing escaped or to escape, so Path is the raw path.
		a.u.Path, a.u.RawQuery, a.u.ForceQuery = path, query, ok && query == ""
		r.URL = &a.u
	} else {
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			return nil, err
		}
		r.URL = u
	}
	var n int64
	if lines[5] != "0" {
		n, _ = strconv.ParseInt(lines[5], 10, 64)
	}
	r.Method, r.Proto, r.ProtoMajor, r.ProtoMinor = lines[0], "HTTP/1.1", 1, 1
	r.Host, r.RemoteAddr, r.RequestURI = lines[2], lines[3], uri
	r.ContentLength, r.Body, r.Pattern = n, http.NoBody, lines[4]
	if n > 0 {
		r.Body = body{}
	}
	r.Header = parseLines(r, s, a.vals[:0])
	return r, nil
}

// parseLines sets the path values of r from the "P" lines of s and returns
// the header of its "H" lines, using vals (whose capacity is free) as the
// backing array of the values where it can.
//
// The host sends all values of a name together (it walks an http.Header),
// so the header is built with one map assignment per name, each name's
// values a capped window of one backing array (so that appending to one
// never touches another). Should a name come back later, the header is
// rebuilt the slow way.
func parseLines(r *http.Request, s string, vals []string) http.Header {
	// An estimate of the number of header lines (they are rarely shorter
	// than 32 bytes): counting them would cost more than a map that grows.
	nh := len(s)/32 + 1
	if nh > cap(vals) {
		vals = make([]string, 0, nh)
	}
	h := make(http.Header, nh)
	key, first, open, runs := "", 0, false, 0 // the current run of values of one name
	for rest := s; rest != ""; {
		j := strings.IndexByte(rest, '\n')
		if j < 0 {
			j = len(rest)
		}
		line := rest[:j]
		rest = rest[min(j+1, len(rest)):]
		if line == "" {
			continue
		}
		switch line[0] {
		case 'H':
			k, v := headerLine(line)
			if open && k == key {
				vals = append(vals, v)
				continue
			}
			if open {
				h[key] = vals[first:len(vals):len(vals)]
				runs++
			}
			key, first, open = k, len(vals), true
			vals = append(vals, v)
		case 'P':
			k, v, _ := strings.Cut(line[1:], "=")
			r.SetPathValue(k, v)
		}
	}
	if open {
		h[key] = vals[first:len(vals):len(vals)]
		runs++
	}
	if len(h) != runs {
		return parseHeaderSlow(s)
	}
	return h
}

// parseHeaderSlow is the header of parseLines for a head that repeats a
// name apart from its other values.
func parseHeaderSlow(s string) http.Header {
	h := make(http.Header)
	for s != "" {
		j := strings.IndexByte(s, '\n')
		if j < 0 {
			j = len(s)
		}
		line := s[:j]
		s = s[min(j+1, len(s)):]
		if line != "" && line[0] == 'H' {
			k, v := headerLine(line)
			h[k] = append(h[k], v)
		}
	}
	return h
}

// headerLine splits "HName: value".
func headerLine(line string) (name, value string) {
	k, v, _ := strings.Cut(line[1:], ":")
	if v != "" && v[0] == ' ' {
		v = v[1:]
	}
	return k, v
}

// plainPath reports whether url.ParseRequestURI would set Path to p itself
// and RawPath to "": p is absolute and has no byte that is escaped, or
// would be.
func plainPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c >= 0x80 || pathByte[c] == 0 {
			return false
		}
	}
	return true
}

// validQuery reports whether url.ParseRequestURI accepts q as RawQuery
// (it refuses control bytes).
func validQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// pathByte marks the bytes url.PathEscape's path mode leaves alone: letters,
// digits, "-_.~" and "$&+,/:;=@".
var pathByte = func() (t [128]byte) {
	for c := range t {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~$&+,/:;=@", byte(c)) >= 0 {
			t[c] = 1
		}
	}
	return t
}()

// body reads the request body from the host. It is an io.ReadCloser with no
// state, so it needs no allocation.
type body struct{}

// Close does nothing: the host owns the body.
func (body) Close() error { return nil }

func (body) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := hostcall.ReqBodyRead(p)
	if n < 0 {
		return 0, CodeError(n)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return int(n), nil
}

// responseWriter buffers the body up to maxBuffered; the head goes to the
// host when the handler returns, or when the buffer fills, after which the
// body is streamed.
//
// It sets no Content-Type of its own: the host writes the response through
// net/http, which sniffs one from the body when the guest sent none, as it
// would for a native handler (and without adding it to the handler's
// header map, which an SDK-side sniff did).
type responseWriter struct {
	header  http.Header
	status  int  // set by WriteHeader or the first Write
	started bool // the head was sent to the host
	failed  bool
	hb      []byte // response head lines
	buf     []byte // buffered body

	// The host calls (replaced in tests).
	start func(status int32, head []byte) int32
	write func(body []byte) int32
}

func newResponseWriter(start func(int32, []byte) int32, write func([]byte) int32) *responseWriter {
	return &responseWriter{header: make(http.Header, 4), start: start, write: write}
}

// reset makes w ready for the next request.
func (w *responseWriter) reset() {
	if len(w.header) > 0 {
		clear(w.header)
	}
	w.status, w.started, w.failed = 0, false, false
	w.hb = w.hb[:0]
	if cap(w.buf) > maxBuffered {
		w.buf = nil
	}
	w.buf = w.buf[:0]
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	if status < 100 || status > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(status))
	}
	if status < 200 {
		return // informational responses are not passed on
	}
	w.status = status
	// The head is what the headers are now, as with net/http.
	for k, vs := range w.header {
		for _, v := range vs {
			w.hb = append(w.hb, k...)
			w.hb = append(w.hb, ": "...)
			w.hb = append(w.hb, v...)
			w.hb = append(w.hb, '\n')
		}
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, ErrTooLarge
	}
	if len(w.buf)+len(p) <= maxBuffered {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if !w.flush() {
		return 0, ErrTooLarge
	}
	if len(p) <= maxBuffered {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if c := w.write(p); c < 0 {
		w.failed = true
		return 0, CodeError(c)
	}
	return len(p), nil
}

// WriteString lets io.WriteString and fmt skip a conversion.
func (w *responseWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.failed && len(w.buf)+len(s) <= maxBuffered {
		w.buf = append(w.buf, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// Flush sends the head and what is buffered (http.Flusher).
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.flush()
}

// flush sends the head if needed and the buffered body; false when the host
// refused.
func (w *responseWriter) flush() bool {
	if w.failed {
		return false
	}
	if !w.started {
		w.started = true
		if w.start(int32(w.status), w.hb) < 0 {
			w.failed = true
			return false
		}
	}
	if len(w.buf) > 0 {
		c := w.write(w.buf)
		w.buf = w.buf[:0]
		if c < 0 {
			w.failed = true
			return false
		}
	}
	return true
}

// finish completes the response after the handler returned.
func (w *responseWriter) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.flush()
}
