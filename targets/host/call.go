package host

import (
	"bytes"
	"context"
	"net/http"
	"sync"
)

// callKey is the context key of the *callState of a guest call.
type callKey struct{}

// callState is everything a guest call (one request, or a reactor's
// _initialize) can reach through host functions. Pooled.
type callState struct {
	comp *component
	ctx  context.Context

	// env and args are NUL-terminated strings, served by the WASI
	// environ_*/args_* functions.
	env    []byte
	envN   int
	args   []byte
	argsN  int
	body   bytes.Reader // request body (WAGI stdin, reactor req_body_read)
	bodyB  []byte
	out    limitBuf // WAGI stdout, or the reactor's response body
	cancel context.CancelFunc

	// reactor exchange
	req     *http.Request
	m       *match
	head    []byte
	status  int
	hdr     []byte // response head lines as given by resp_start
	started bool

	outbound []*http.Response
}

var callPool = sync.Pool{New: func() any { return new(callState) }}

func getCall(c *component) *callState {
	cs := callPool.Get().(*callState)
	cs.comp = c
	return cs
}

func putCall(cs *callState) {
	for _, resp := range cs.outbound {
		resp.Body.Close()
	}
	clear(cs.outbound)
	cs.outbound = cs.outbound[:0]
	if cap(cs.out.b) > 1<<20 {
		cs.out.b = nil
	}
	if cap(cs.bodyB) > 1<<20 {
		cs.bodyB = nil
	}
	*cs = callState{
		env: cs.env[:0], args: cs.args[:0], out: limitBuf{b: cs.out.b[:0]},
		bodyB: cs.bodyB[:0], head: cs.head[:0], hdr: cs.hdr[:0], outbound: cs.outbound,
	}
	callPool.Put(cs)
}

func (cs *callState) addEnv(k, v string) {
	cs.env = append(cs.env, k...)
	cs.env = append(cs.env, '=')
	cs.env = append(cs.env, v...)
	cs.env = append(cs.env, 0)
	cs.envN++
}

func (cs *callState) addArg(a string) {
	cs.args = append(cs.args, a...)
	cs.args = append(cs.args, 0)
	cs.argsN++
}

// limitBuf buffers up to max bytes; a write past it fails, marks overflow
// and cancels the call so the guest stops promptly.
type limitBuf struct {
	b        []byte
	max      int64
	overflow bool
	cancel   context.CancelFunc
}

func (l *limitBuf) Write(p []byte) (int, error) {
	if int64(len(l.b))+int64(len(p)) > l.max {
		l.overflow = true
		if l.cancel != nil {
			l.cancel()
		}
		return 0, errTooLarge
	}
	if need := len(l.b) + len(p); need > cap(l.b) {
		// Double (append grows large slices by 1.25x, which allocates
		// several times the cap on the way up), never past max.
		c := min(max(2*cap(l.b), need, 4096), int(l.max))
		nb := make([]byte, len(l.b), c)
		copy(nb, l.b)
		l.b = nb
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

type tooLargeError struct{}

func (tooLargeError) Error() string { return "response too large" }

var errTooLarge error = tooLargeError{}

func callFrom(ctx context.Context) *callState {
	cs, _ := ctx.Value(callKey{}).(*callState)
	return cs
}
