package spec

import (
	"maps"
	"slices"

	"github.com/ferry-wasm/ferry/deploy"
)

// DeployApp converts the app named name into the shared deploy.App value:
// components in spec order without digests (the builder fills them in),
// and the variables the components' templates refer to. A non-secret
// variable carries the value it had during Load as its default; a secret
// one carries no value at all. ok is false when there is no such app.
// The result shares no memory with c.
func (c *Config) DeployApp(name string) (deploy.App, bool) {
	app := c.App(name)
	if app == nil {
		return deploy.App{}, false
	}
	out := deploy.App{
		Name:           app.Name,
		Hosts:          slices.Clone(app.Hosts),
		KeyValueStores: slices.Clone(app.KeyValueStores),
		Components:     make([]deploy.Component, 0, len(app.Components)),
	}
	for _, comp := range app.Components {
		dc := deploy.Component{
			Name:                 comp.Name,
			Executor:             comp.Executor,
			Routes:               slices.Clone(comp.Routes),
			Env:                  maps.Clone(comp.Env),
			Files:                slices.Clone(comp.Files),
			AllowedOutboundHosts: slices.Clone(comp.AllowedOutboundHosts),
			KeyValueStores:       slices.Clone(comp.KeyValueStores),
			Variables:            maps.Clone(comp.Variables),
			Limits: deploy.Limits{
				MemoryBytes:      comp.Limits.MemoryBytes,
				Timeout:          deploy.Duration(comp.Limits.Timeout),
				MaxConcurrency:   comp.Limits.MaxConcurrency,
				MaxResponseBytes: comp.Limits.MaxResponseBytes,
			},
		}
		if comp.Health != nil {
			dc.Health = &deploy.Health{Path: comp.Health.Path, Interval: deploy.Duration(comp.Health.Interval),
				Timeout: deploy.Duration(comp.Health.Timeout), FailureThreshold: comp.Health.FailureThreshold,
				Bake: deploy.Duration(comp.Health.Bake)}
		}
		for _, tmpl := range comp.Variables {
			names, err := ParseTemplate(tmpl)
			if err != nil {
				continue
			}
			for _, n := range names {
				v := c.Variable(n)
				if v == nil {
					continue
				}
				if out.Variables == nil {
					out.Variables = map[string]deploy.Variable{}
				}
				dv := deploy.Variable{Secret: v.Secret}
				if !v.Secret && v.Value != nil {
					s := *v.Value
					dv.Default = &s
				}
				out.Variables[n] = dv
			}
		}
		out.Components = append(out.Components, dc)
	}
	return out, true
}
