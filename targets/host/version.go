package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/targets/host/abi"
)

// version is one loaded, immutable generation of an app.
type version struct {
	rt         *Runtime
	app        deploy.App
	gen        uint64
	comps      []*component
	deployedAt time.Time
	health     Health

	inflight atomic.Int64
	retired  atomic.Bool
	closed   atomic.Bool
}

func (v *version) hostKeys() []string {
	if len(v.app.Hosts) == 0 {
		return []string{""}
	}
	out := make([]string, len(v.app.Hosts))
	for i, h := range v.app.Hosts {
		out[i] = hostKey(h)
	}
	return out
}

func (v *version) addRoutes(rt *router) error {
	for _, c := range v.comps {
		for _, p := range c.routes {
			if err := rt.add(&target{v: v, comp: c, pattern: p, script: scriptName(p)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v *version) status(s Status) VersionStatus {
	vs := VersionStatus{Generation: v.gen, Status: s, Health: v.health, DeployedAt: v.deployedAt, App: v.app}
	for _, c := range v.comps {
		vs.Components = append(vs.Components, ComponentStatus{Name: c.name, Digest: c.digest, Executor: c.exec})
	}
	return vs
}

// close releases the version's instances and module references. It runs
// once, after the version left the routing table and drained.
func (v *version) close() {
	if v.closed.Swap(true) {
		return
	}
	for _, c := range v.comps {
		c.close()
	}
}

// load validates app, compiles its modules and builds a version that is not
// yet serving.
func (r *Runtime) load(ctx context.Context, app deploy.App, b Bundle) (*version, error) {
	if !appNameRE.MatchString(app.Name) {
		return nil, fmt.Errorf("%w: app name %q must match %s", ErrInvalidApp, app.Name, appNameRE)
	}
	if len(app.Components) == 0 {
		return nil, fmt.Errorf("%w: app %q has no components", ErrInvalidApp, app.Name)
	}
	v := &version{rt: r, app: app, gen: r.gen.Add(1), deployedAt: time.Now(), health: HealthUnchecked}
	seen := map[string]bool{}
	// Check every route of the app on its own first: a conflict inside the
	// app is an invalid app.
	for _, c := range app.Components {
		if c.Name == "" || seen[c.Name] {
			return nil, fmt.Errorf("%w: app %q: component name %q is empty or repeated", ErrInvalidApp, app.Name, c.Name)
		}
		seen[c.Name] = true
		comp, err := r.newComponent(ctx, v, c, b)
		if err != nil {
			v.close()
			return nil, fmt.Errorf("app %q component %q: %w", app.Name, c.Name, err)
		}
		v.comps = append(v.comps, comp)
	}
	if err := v.addRoutes(&router{}); err != nil {
		v.close()
		return nil, fmt.Errorf("app %q: %w", app.Name, err)
	}
	return v, nil
}

// verifyDigest checks that wasm hashes to digest.
func verifyDigest(digest string, wasm []byte) error {
	hexd, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		return fmt.Errorf("%w: digest %q is not sha256", ErrInvalidApp, digest)
	}
	sum := sha256.Sum256(wasm)
	if hex.EncodeToString(sum[:]) != hexd {
		return fmt.Errorf("%w: bytes hash to sha256:%x, want %s", ErrDigestMismatch, sum, digest)
	}
	return nil
}

// probe runs each component's health path through the version's own router
// and requires a 2xx answer.
func (r *Runtime) probe(ctx context.Context, v *version) error {
	rt := &router{}
	if err := v.addRoutes(rt); err != nil {
		return err
	}
	host := "localhost"
	if len(v.app.Hosts) > 0 {
		host = v.app.Hosts[0]
	}
	checked := false
	for _, c := range v.comps {
		if c.health == "" {
			continue
		}
		checked = true
		pctx, cancel := context.WithTimeout(ctx, r.opts.HealthTimeout)
		req := httptest.NewRequestWithContext(pctx, http.MethodGet, "http://"+host+c.health, nil)
		req.RemoteAddr = "127.0.0.1:0"
		rec := httptest.NewRecorder()
		cs := callPool.Get().(*callState)
		cs.mt = match{params: cs.mparams[:0]}
		if !rt.lookup(req.URL.EscapedPath(), &cs.mt) {
			cs.mt = match{}
			callPool.Put(cs)
			cancel()
			return fmt.Errorf("%w: app %q component %q: health path %q matches no route of the app", ErrHealthCheck, v.app.Name, c.name, c.health)
		}
		cs.mt.t.comp.serve(rec, req, cs)
		cancel()
		if rec.Code < 200 || rec.Code > 299 {
			return fmt.Errorf("%w: app %q component %q: GET %s answered %d", ErrHealthCheck, v.app.Name, c.name, c.health, rec.Code)
		}
	}
	if checked {
		v.health = HealthHealthy
	}
	r.log.LogAttrs(ctx, slog.LevelDebug, "app version loaded", slog.String("app", v.app.Name), slog.String("health", string(v.health)))
	return nil
}

// requiredExports checks the compiled module's exports for executor.
func requiredExports(cm wazero.CompiledModule, exec deploy.Executor) error {
	exports := cm.ExportedFunctions()
	for _, name := range abi.RequiredExports(string(exec)) {
		if _, ok := exports[name]; !ok {
			return fmt.Errorf("%w: %s executor needs the export %q", ErrMissingExport, exec, name)
		}
	}
	return nil
}
