package sdk

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-wasm/ferry/sdk/internal/hostcall"
)

var headBuf = make([]byte, 4096)

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
	w := &responseWriter{header: make(http.Header, 4)}
	defer func() {
		if p := recover(); p != nil {
			hostcall.Log(8, "ferry sdk: handler panicked: "+panicString(p))
			code = 3
		}
	}()
	handler.ServeHTTP(w, r)
	if !w.started {
		w.start(http.StatusOK)
	}
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

// parseHead builds a request from the head format of ABI.md.
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
	u, err := url.ParseRequestURI(lines[1])
	if err != nil {
		return nil, err
	}
	n, _ := strconv.ParseInt(lines[5], 10, 64)
	r := &http.Request{
		Method: lines[0], URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, 8), Host: lines[2], RemoteAddr: lines[3], RequestURI: lines[1],
		ContentLength: n, Body: http.NoBody, Pattern: lines[4],
	}
	if n > 0 {
		r.Body = io.NopCloser(bodyReader{})
	}
	for len(s) > 0 {
		j := strings.IndexByte(s, '\n')
		if j < 0 {
			j = len(s)
		}
		line := s[:j]
		if j < len(s) {
			s = s[j+1:]
		} else {
			s = ""
		}
		if line == "" {
			continue
		}
		switch line[0] {
		case 'H':
			k, v, _ := strings.Cut(line[1:], ": ")
			r.Header[k] = append(r.Header[k], v)
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

// responseWriter sends the head on the first Write or WriteHeader, then
// streams body bytes to the host.
type responseWriter struct {
	header  http.Header
	started bool
	failed  bool
	hb      bytes.Buffer
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.started {
		return
	}
	w.start(status)
}

func (w *responseWriter) start(status int) {
	w.started = true
	for k, vs := range w.header {
		for _, v := range vs {
			w.hb.WriteString(k)
			w.hb.WriteString(": ")
			w.hb.WriteString(v)
			w.hb.WriteByte('\n')
		}
	}
	if hostcall.RespStart(int32(status), w.hb.Bytes()) < 0 {
		w.failed = true
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.started {
		if _, ok := w.header["Content-Type"]; !ok && len(p) > 0 {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		w.start(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c := hostcall.RespWrite(p); c < 0 {
		w.failed = true
		return 0, CodeError(c)
	}
	return len(p), nil
}
