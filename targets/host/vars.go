package host

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/ferry-wasm/ferry/deploy"
)

var varRef = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// resolveVariables expands a component's variable templates ("{{ name }}")
// over the app's variables: a value given in secrets wins, then the
// variable's default. Errors name variables, never values.
func resolveVariables(app deploy.App, c deploy.Component, secrets map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(c.Variables))
	for name, tmpl := range c.Variables {
		var err error
		val := varRef.ReplaceAllStringFunc(tmpl, func(ref string) string {
			ref = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(ref, "{{"), "}}"))
			if v, ok := secrets[ref]; ok {
				if _, declared := app.Variables[ref]; declared {
					return v
				}
			}
			decl, ok := app.Variables[ref]
			if !ok {
				if err == nil {
					err = fmt.Errorf("%w: component variable %q refers to %q, which the app does not declare", ErrInvalidApp, name, ref)
				}
				return ""
			}
			if decl.Default == nil {
				if err == nil {
					err = fmt.Errorf("%w: app variable %q (used by component variable %q)", ErrMissingVariable, ref, name)
				}
				return ""
			}
			return *decl.Default
		})
		if err != nil {
			return nil, err
		}
		out[name] = val
	}
	return out, nil
}

// Reconfigure loads app again with b — typically the same modules with new
// Bundle.Secrets — and makes it serve in place of the current version,
// checked like Deploy (ABI, health probe, atomic swap, in-flight requests
// finish on the old instance), but without shifting versions: the version
// kept for Rollback stays the one it was, and the replaced one is unloaded.
// It is how a rotated secret reaches a running app without a new artifact.
// It returns ErrNotFound when app is not deployed; on any error the running
// version is left untouched. Values are never logged.
func (r *Runtime) Reconfigure(ctx context.Context, app deploy.App, b Bundle) error {
	if r.closed.Load() {
		return ErrClosed
	}
	r.mu.Lock()
	_, ok := r.apps[app.Name]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, app.Name)
	}
	v, err := r.load(ctx, app, b)
	if err != nil {
		return err
	}
	if err := r.probe(ctx, v); err != nil {
		r.retire(v)
		return err
	}
	r.mu.Lock()
	slot := r.apps[app.Name]
	if r.closed.Load() || slot == nil {
		r.mu.Unlock()
		r.retire(v)
		if slot == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, app.Name)
		}
		return ErrClosed
	}
	old := slot.cur
	if err := r.swapLocked(app.Name, old, v); err != nil {
		r.mu.Unlock()
		r.retire(v)
		return err
	}
	slot.cur = v
	r.mu.Unlock()
	r.retire(old)
	r.log.LogAttrs(ctx, slog.LevelInfo, "app reconfigured", slog.String("app", app.Name), slog.Uint64("generation", v.gen))
	return nil
}
