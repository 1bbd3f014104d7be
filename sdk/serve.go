package sdk

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-wasm/ferry/sdk/internal/hostcall"
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
	rw      = &responseWriter{header: make(http.Header, 4)}
)

// serve handles one request: it reads the head from the host, runs the
// handler and sends the response. It returns non-zero when the request
// could not be served (the host then answers 500 and drops the instance).
func serve() (code int32) {
	head, c := hostcall.ReqHead(headBuf)
	if c < 0 {
		return 1
	}
	if cap(head) > cap(headBuf) {
		headBuf = head[:0]
	}
	r, err := parseHead(head)
	if err != nil {
		return 2
	}
	w := rw
	w.reset()
	defer func() {
		if p := recover(); p != nil {
			hostcall.Log(8, "ferry sdk: handler panicked: "+panicString(p))
			w.reset()
			code = 3
		}
	}()
	handler.ServeHTTP(w, r)
	w.finish()
	failed := w.failed
	w.reset()
	if failed {
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

// request is a request and its URL, allocated together.
type request struct {
	r http.Request
	u url.URL
}

// parseHead builds a request from the head format of ABI.md. The head is
// copied once into a string that the request's fields share.
func parseHead(head []byte) (*http.Request, error) {
	s := string(head)
	var lines [6]string
	for i := range lines {
		j := strings.IndexByte(s, '\n')
		if j < 0 {
			return nil, io.ErrUnexpectedEOF
		}
		lines[i], s = s[:j], s[j+1:]
	}
	n, _ := strconv.ParseInt(lines[5], 10, 64)
	a := &request{}
	r := &a.r
	uri := lines[1]
	if path, query, _ := strings.Cut(uri, "?"); strings.HasPrefix(path, "/") && !strings.ContainsAny(path, "%#") {
		// The common case: no escapes, so Path is the raw path.
		a.u.Path, a.u.RawQuery = path, query
		r.URL = &a.u
	} else {
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			return nil, err
		}
		r.URL = u
	}
	r.Method, r.Proto, r.ProtoMajor, r.ProtoMinor = lines[0], "HTTP/1.1", 1, 1
	r.Host, r.RemoteAddr, r.RequestURI = lines[2], lines[3], uri
	r.ContentLength, r.Body, r.Pattern = n, http.NoBody, lines[4]
	if n > 0 {
		r.Body = io.NopCloser(bodyReader{})
	}

	// Headers: one map sized for them and one backing array for the
	// values (each key's slice is capped, so a second value of the same
	// name appends elsewhere).
	nh := strings.Count(s, "\nH")
	if strings.HasPrefix(s, "H") {
		nh++
	}
	r.Header = make(http.Header, nh)
	vals := make([]string, 0, nh)
	for len(s) > 0 {
		var line string
		if j := strings.IndexByte(s, '\n'); j >= 0 {
			line, s = s[:j], s[j+1:]
		} else {
			line, s = s, ""
		}
		if line == "" {
			continue
		}
		switch line[0] {
		case 'H':
			k, v, _ := strings.Cut(line[1:], ": ")
			if old, ok := r.Header[k]; ok {
				r.Header[k] = append(old, v)
				continue
			}
			if len(vals) < cap(vals) {
				vals = append(vals, v)
				r.Header[k] = vals[len(vals)-1 : len(vals) : len(vals)]
			} else {
				r.Header[k] = []string{v}
			}
		case 'P':
			k, v, _ := strings.Cut(line[1:], "=")
			r.SetPathValue(k, v)
		}
	}
	return r, nil
}

type bodyReader struct{}

func (bodyReader) Read(p []byte) (int, error) {
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
type responseWriter struct {
	header  http.Header
	status  int  // set by WriteHeader or the first Write
	started bool // the head was sent to the host
	failed  bool
	hb      []byte // response head lines
	buf     []byte // buffered body
}

func (w *responseWriter) reset() {
	clear(w.header)
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
	w.appendHead()
}

func (w *responseWriter) appendHead() {
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
		if _, ok := w.header["Content-Type"]; !ok && len(p) > 0 {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
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
	if c := hostcall.RespWrite(p); c < 0 {
		w.failed = true
		return 0, CodeError(c)
	}
	return len(p), nil
}

// WriteString lets io.WriteString and fmt skip a conversion.
func (w *responseWriter) WriteString(s string) (int, error) {
	if w.status != 0 && !w.failed && len(w.buf)+len(s) <= maxBuffered {
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
		if hostcall.RespStart(int32(w.status), w.hb) < 0 {
			w.failed = true
			return false
		}
	}
	if len(w.buf) > 0 {
		c := hostcall.RespWrite(w.buf)
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
