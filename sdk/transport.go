package sdk

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferry-wasm/ferry/sdk/internal/hostcall"
)

// Transport is an http.RoundTripper that sends requests through the host.
// Only origins listed in the component's allowed_outbound_hosts are
// reachable; others fail with ErrDenied. The zero value is ready to use.
type Transport struct{}

// HTTPClient returns an http.Client using Transport.
func HTTPClient() *http.Client { return &http.Client{Transport: Transport{}} }

// RoundTrip implements http.RoundTripper. The request body is sent whole.
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var head strings.Builder
	head.WriteString(req.Method)
	if req.Method == "" {
		head.WriteString("GET")
	}
	head.WriteByte(' ')
	head.WriteString(req.URL.String())
	head.WriteByte('\n')
	for k, vs := range req.Header {
		for _, v := range vs {
			head.WriteString(k + ": " + v + "\n")
		}
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	h := hostcall.HTTPRequest(head.String(), body)
	if h < 0 {
		return nil, fmt.Errorf("ferry: %s %s: %w", req.Method, req.URL.Redacted(), CodeError(h))
	}
	rh, code := hostcall.HTTPResponseHead(h)
	if code < 0 {
		hostcall.HTTPClose(h)
		return nil, CodeError(code)
	}
	br := bufio.NewReader(bytes.NewReader(rh))
	statusLine, _ := br.ReadString('\n')
	status, err := strconv.Atoi(strings.TrimSpace(statusLine))
	if err != nil {
		hostcall.HTTPClose(h)
		return nil, fmt.Errorf("ferry: bad response head from host: %w", ErrIO)
	}
	resp := &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Request: req,
		Body: &respBody{h: h}, ContentLength: -1,
	}
	for {
		line, err := br.ReadString('\n')
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), ": "); ok {
			resp.Header.Add(k, v)
		}
		if err != nil {
			break
		}
	}
	return resp, nil
}

type respBody struct {
	h      int32
	closed bool
}

func (b *respBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := hostcall.HTTPBodyRead(b.h, p)
	if n < 0 {
		return 0, CodeError(n)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return int(n), nil
}

func (b *respBody) Close() error {
	if !b.closed {
		b.closed = true
		hostcall.HTTPClose(b.h)
	}
	return nil
}
