package host

import (
	"fmt"
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
