package host

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"
)

// Probe requests the health path of component comp of app name's serving
// version through that version's own handler, as the deploy probe does,
// bounded by timeout (zero means Options.HealthTimeout). It returns the
// generation it probed (so the caller can tell a new version from the one
// it probed before) and nil for a 2xx answer, an error wrapping
// ErrHealthCheck for any other answer or a timeout, or ErrNotFound when
// the app or the component (or its health path) is not there.
func (r *Runtime) Probe(ctx context.Context, name, comp string, timeout time.Duration) (uint64, error) {
	r.mu.Lock()
	slot := r.apps[name]
	var v *version
	if slot != nil {
		v = slot.cur
		v.inflight.Add(1)
	}
	r.mu.Unlock()
	if v == nil {
		return 0, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	defer v.inflight.Add(-1)
	if timeout <= 0 {
		timeout = r.opts.HealthTimeout
	}
	var c *component
	for _, x := range v.comps {
		if x.name == comp {
			c = x
		}
	}
	if c == nil || c.health == "" {
		return v.gen, fmt.Errorf("%w: app %q has no component %q with a health path", ErrNotFound, name, comp)
	}
	rt := &router{}
	if err := v.addRoutes(rt); err != nil {
		return v.gen, err
	}
	host := "localhost"
	if len(v.app.Hosts) > 0 {
		host = v.app.Hosts[0]
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := httptest.NewRequestWithContext(pctx, http.MethodGet, "http://"+host+c.health, nil)
	req.RemoteAddr = "127.0.0.1:0"
	rec := httptest.NewRecorder()
	cs := callPool.Get().(*callState)
	cs.mt = match{params: cs.mparams[:0]}
	if !rt.lookup(req.URL.EscapedPath(), &cs.mt) || cs.mt.t.comp != c {
		cs.mt = match{}
		callPool.Put(cs)
		return v.gen, fmt.Errorf("%w: app %q component %q: health path %q does not reach the component", ErrHealthCheck, name, comp, c.health)
	}
	c.serve(rec, req, cs)
	if pctx.Err() != nil && ctx.Err() == nil {
		return v.gen, fmt.Errorf("%w: app %q component %q: GET %s took longer than %s", ErrHealthCheck, name, comp, c.health, timeout)
	}
	if rec.Code < 200 || rec.Code > 299 {
		return v.gen, fmt.Errorf("%w: app %q component %q: GET %s answered %d", ErrHealthCheck, name, comp, c.health, rec.Code)
	}
	return v.gen, nil
}
