package spec

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/deploy/outbound"
)

var appSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "hosts"}, {Name: "key_value_stores"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "component", LabelNames: []string{"name"}}, {Type: "deploy"}},
}

var deploySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "timeout"}, {Name: "auto_rollback"}},
}

var componentSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "wasm"}, {Name: "executor"}, {Name: "routes"}, {Name: "env"}, {Name: "files"},
		{Name: "allowed_outbound_hosts"}, {Name: "key_value_stores"}, {Name: "variables"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "go"}, {Type: "build"}, {Type: "limits"}, {Type: "health"}},
}

var goSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "package", Required: true}},
}

var buildSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "command", Required: true}, {Name: "output", Required: true}, {Name: "workdir"}, {Name: "watch"},
	},
}

var limitsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "memory"}, {Name: "timeout"}, {Name: "max_concurrency"}, {Name: "max_response"},
	},
}

var healthSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "path", Required: true}, {Name: "interval"}, {Name: "timeout"},
		{Name: "failure_threshold"}, {Name: "bake"}},
}

var (
	hostNameRE = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`)
	storeRE    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// appInfo keeps the source ranges of an app's items for checks that need
// more than one block.
type appInfo struct {
	hosts  []strItem
	routes []routeItem
}

type routeItem struct {
	comp string
	text string // as written
	key  string // shape, see Route.key
	rng  hcl.Range
}

func (l *loader) decodeApp(b *hcl.Block) {
	named := l.checkName(b, "app", l.appNames, nameRE, nameRule)
	content, d := b.Body.Content(appSchema)
	l.diags = append(l.diags, d...)
	app := &App{Name: b.Labels[0], DeclRange: b.DefRange}
	info := &appInfo{}
	if named {
		l.appInfo[app] = info
		l.cfg.Apps = append(l.cfg.Apps, app)
	}

	if a := content.Attributes["hosts"]; a != nil {
		items, _ := l.strList(a, "hosts")
		seenHost := map[string]hcl.Range{}
		for _, it := range items {
			h := it.val
			switch {
			case !hostNameRE.MatchString(h):
				l.diags = append(l.diags, errDiag(it.rng, "Invalid host name",
					"%q is not a host name: use lowercase DNS labels such as \"hello.example.com\" or \"*.example.com\", without scheme, port or path.", h))
				continue
			case seenHost[h] != hcl.Range{}:
				l.diags = append(l.diags, errDiag(it.rng, "Duplicate host",
					"Host %q is already listed at %s.", h, seenHost[h]))
				continue
			}
			seenHost[h] = it.rng
			app.Hosts = append(app.Hosts, h)
			info.hosts = append(info.hosts, it)
		}
	}
	if a := content.Attributes["key_value_stores"]; a != nil {
		app.KeyValueStores = l.storeList(a)
	}

	compSeen := map[string]hcl.Range{}
	routeSeen := map[string]routeItem{}
	var deployBlock *hcl.Block
	for _, cb := range content.Blocks {
		if cb.Type == "deploy" {
			if deployBlock != nil {
				l.duplicateBlock(cb, deployBlock, "in an app")
				continue
			}
			deployBlock = cb
			app.Deploy = l.decodeDeploy(cb)
			continue
		}
		if !l.checkName(cb, "component", compSeen, nameRE, nameRule) {
			continue
		}
		c, routes := l.decodeComponent(cb, app)
		app.Components = append(app.Components, c)
		for _, r := range routes {
			if prev, dup := routeSeen[r.key]; dup {
				if prev.comp == r.comp {
					l.diags = append(l.diags, errDiag(r.rng, "Duplicate route",
						"Component %q already has the route %s at %s.", r.comp, sameRoute(prev, r), prev.rng))
				} else {
					l.diags = append(l.diags, errDiag(r.rng, "Route conflict",
						"Components %q and %q of app %q both claim the route %s (the first at %s); a request could not know which to go to.", prev.comp, r.comp, app.Name, sameRoute(prev, r), prev.rng))
				}
				continue
			}
			routeSeen[r.key] = r
			info.routes = append(info.routes, r)
		}
	}
}

// sameRoute describes two routes of the same shape for a message.
func sameRoute(a, b routeItem) string {
	if a.text == b.text {
		return fmt.Sprintf("%q", a.text)
	}
	return fmt.Sprintf("%q (the same as %q: parameter names do not matter)", b.text, a.text)
}

// storeList decodes a list of key-value store names.
func (l *loader) storeList(a *hcl.Attribute) []string {
	items, _ := l.strList(a, a.Name)
	var out []string
	seen := map[string]hcl.Range{}
	for _, it := range items {
		if !storeRE.MatchString(it.val) {
			l.diags = append(l.diags, errDiag(it.rng, "Invalid store name",
				"%q is not a key-value store name: use a lowercase letter, then up to 62 lowercase letters, digits, \"_\" or \"-\".", it.val))
			continue
		}
		if prev, dup := seen[it.val]; dup {
			l.diags = append(l.diags, errDiag(it.rng, "Duplicate store",
				"Store %q is already listed at %s.", it.val, prev))
			continue
		}
		seen[it.val] = it.rng
		out = append(out, it.val)
	}
	return out
}

func (l *loader) decodeComponent(b *hcl.Block, app *App) (*Component, []routeItem) {
	c := &Component{Name: b.Labels[0], DeclRange: b.DefRange, Executor: deploy.ExecutorWAGI}
	content, d := b.Body.Content(componentSchema)
	l.diags = append(l.diags, d...)
	attrs := content.Attributes

	l.decodeSource(b, c, content)

	if a := attrs["executor"]; a != nil {
		if s, ok := l.str(a, "executor"); ok {
			if e := deploy.Executor(s); e.Valid() {
				c.Executor = e
			} else {
				l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid executor",
					"The executor %q is not known: use \"wagi\" (a WASI command per request, the default) or \"reactor\" (an initialised module whose handler export is called per request).", s))
			}
		}
	}

	var routes []routeItem
	if a := attrs["routes"]; a != nil {
		items, _ := l.strList(a, "routes")
		for _, it := range items {
			r, err := ParseRoute(it.val)
			if err != nil {
				l.diags = append(l.diags, errDiag(it.rng, "Invalid route",
					"The route %q is not valid: %s. Routes look like \"/\", \"/about\", \"/users/:id\" or \"/api/...\".", it.val, strings.TrimPrefix(err.Error(), ErrInvalidRoute.Error()+": ")))
				continue
			}
			c.Routes = append(c.Routes, it.val)
			routes = append(routes, routeItem{comp: c.Name, text: it.val, key: r.key(), rng: it.rng})
		}
	}

	if a := attrs["env"]; a != nil {
		items, _ := l.strMap(a, "env")
		for _, it := range items {
			if !envNameRE.MatchString(it.key) {
				l.diags = append(l.diags, errDiag(it.keyRng, "Invalid environment variable name",
					"%q is not an environment variable name: use letters, digits and \"_\", not starting with a digit.", it.key))
				continue
			}
			if c.Env == nil {
				c.Env = map[string]string{}
			}
			c.Env[it.key] = it.val
		}
	}

	if a := attrs["files"]; a != nil {
		items, _ := l.strList(a, "files")
		for _, it := range items {
			abs, ok := l.specPath(it.val, it.rng, "file")
			if !ok || !l.notLinkedOut(abs, it.val, it.rng, "file") {
				continue
			}
			rel, _ := filepath.Rel(l.absDir, abs)
			c.Files = append(c.Files, filepath.ToSlash(rel))
		}
	}

	if a := attrs["allowed_outbound_hosts"]; a != nil {
		items, _ := l.strList(a, "allowed_outbound_hosts")
		for _, it := range items {
			if err := checkOutbound(it.val); err != nil {
				l.diags = append(l.diags, errDiag(it.rng, "Invalid outbound host",
					"%q is not an allowed outbound host: %s. Write scheme://host[:port], such as \"https://api.example.com\", \"https://*.example.com\" or \"http://127.0.0.1:*\".", it.val, err))
				continue
			}
			c.AllowedOutboundHosts = append(c.AllowedOutboundHosts, it.val)
		}
	}

	if a := attrs["key_value_stores"]; a != nil {
		items, _ := l.strList(a, "key_value_stores")
		for _, it := range items {
			if !slices.Contains(app.KeyValueStores, it.val) {
				l.diags = append(l.diags, errDiag(it.rng, "Undeclared key-value store",
					"Component %q uses store %q, but app %q does not declare it; add it to the app's key_value_stores.", c.Name, it.val, app.Name))
				continue
			}
			if slices.Contains(c.KeyValueStores, it.val) {
				l.diags = append(l.diags, errDiag(it.rng, "Duplicate store",
					"Store %q is already listed for component %q.", it.val, c.Name))
				continue
			}
			c.KeyValueStores = append(c.KeyValueStores, it.val)
		}
	}

	if a := attrs["variables"]; a != nil {
		items, _ := l.strMap(a, "variables")
		for _, it := range items {
			if !variableNameRE.MatchString(it.key) {
				l.diags = append(l.diags, errDiag(it.keyRng, "Invalid variable name",
					"%q is not a component variable name: use a lowercase letter, then lowercase letters, digits or \"_\".", it.key))
				continue
			}
			names, err := ParseTemplate(it.val)
			if err != nil {
				l.diags = append(l.diags, errDiag(it.valRng, "Invalid template",
					"The template of component variable %q is not valid: %s.", it.key, strings.TrimPrefix(err.Error(), ErrInvalidTemplate.Error()+": ")))
				continue
			}
			good := true
			for _, n := range names {
				if _, ok := l.varByName[n]; !ok {
					l.diags = append(l.diags, errDiag(it.valRng, "Undeclared variable in template",
						"The template of component variable %q uses {{ %s }}, but no variable %q is declared.", it.key, n, n))
					good = false
				}
			}
			if !good {
				continue
			}
			if c.Variables == nil {
				c.Variables = map[string]string{}
			}
			c.Variables[it.key] = it.val
		}
	}

	var limitsBlock, healthBlock *hcl.Block
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "limits":
			if limitsBlock != nil {
				l.duplicateBlock(blk, limitsBlock, "in a component")
				continue
			}
			limitsBlock = blk
			c.Limits = l.decodeLimits(blk)
		case "health":
			if healthBlock != nil {
				l.duplicateBlock(blk, healthBlock, "in a component")
				continue
			}
			healthBlock = blk
			c.Health = l.decodeHealth(blk)
		}
	}
	return c, routes
}

// decodeSource decodes the component's one source: wasm, go or build.
func (l *loader) decodeSource(b *hcl.Block, c *Component, content *hcl.BodyContent) {
	type src struct {
		rng   hcl.Range
		block *hcl.Block
		attr  *hcl.Attribute
	}
	var srcs []src
	if a := content.Attributes["wasm"]; a != nil {
		srcs = append(srcs, src{rng: a.NameRange, attr: a})
	}
	for _, blk := range content.Blocks {
		if blk.Type == "go" || blk.Type == "build" {
			srcs = append(srcs, src{rng: blk.DefRange, block: blk})
		}
	}
	slices.SortFunc(srcs, func(a, b src) int { return a.rng.Start.Byte - b.rng.Start.Byte })
	switch len(srcs) {
	case 0:
		l.diags = append(l.diags, errDiag(b.DefRange, "Missing component source",
			"Component %q has no source: give exactly one of wasm = \"./x.wasm\", a go { package = \"./dir\" } block, or a build { command = ..., output = ... } block.", c.Name))
		return
	case 1:
	default:
		for _, s := range srcs[1:] {
			l.diags = append(l.diags, errDiag(s.rng, "Conflicting component sources",
				"Component %q already has a source at %s; give exactly one of wasm, go or build.", c.Name, srcs[0].rng))
		}
		return
	}
	s := srcs[0]
	switch {
	case s.attr != nil:
		p, ok := l.str(s.attr, "wasm")
		if !ok {
			return
		}
		abs, ok := l.specPath(p, s.attr.Expr.Range(), "wasm")
		if !ok || !l.checkExists(abs, p, s.attr.Expr.Range(), "Source not found", "Wasm file", false) {
			return
		}
		c.Source = Source{Kind: SourceWasm, Wasm: abs}
	case s.block.Type == "go":
		bc, d := s.block.Body.Content(goSchema)
		l.diags = append(l.diags, d...)
		a := bc.Attributes["package"]
		if a == nil {
			return
		}
		p, ok := l.str(a, "package")
		if !ok {
			return
		}
		abs, ok := l.specPath(p, a.Expr.Range(), "Go package")
		if !ok || !l.checkExists(abs, p, a.Expr.Range(), "Source not found", "Go package directory", true) {
			return
		}
		c.Source = Source{Kind: SourceGo, GoPackage: abs}
	default:
		bc, d := s.block.Body.Content(buildSchema)
		l.diags = append(l.diags, d...)
		out := Source{Kind: SourceBuild, Workdir: l.absDir}
		ok := !d.HasErrors()
		if a := bc.Attributes["command"]; a != nil {
			if cmd, good := l.str(a, "command"); good && strings.TrimSpace(cmd) != "" {
				out.Command = cmd
			} else {
				if good {
					l.diags = append(l.diags, errDiag(a.Expr.Range(), "Empty build command",
						"The build command of component %q is empty.", c.Name))
				}
				ok = false
			}
		}
		if a := bc.Attributes["output"]; a != nil {
			p, good := l.str(a, "output")
			if good {
				out.Output, good = l.specPath(p, a.Expr.Range(), "build output")
			}
			ok = ok && good
		}
		if a := bc.Attributes["workdir"]; a != nil {
			p, good := l.str(a, "workdir")
			if good {
				var abs string
				abs, good = l.specPath(p, a.Expr.Range(), "build workdir")
				good = good && l.checkExists(abs, p, a.Expr.Range(), "Source not found", "build workdir", true)
				out.Workdir = abs
			}
			ok = ok && good
		}
		if a := bc.Attributes["watch"]; a != nil {
			items, good := l.strList(a, "watch")
			for _, it := range items {
				if _, err := filepath.Match(it.val, ""); err != nil {
					l.diags = append(l.diags, errDiag(it.rng, "Invalid watch pattern",
						"The watch pattern %q is not a valid glob pattern: %s.", it.val, err))
					good = false
					continue
				}
				abs, g := l.specPath(it.val, it.rng, "watch pattern")
				if !g {
					good = false
					continue
				}
				out.Watch = append(out.Watch, abs)
			}
			ok = ok && good
		}
		if ok {
			c.Source = out
		}
	}
}

func (l *loader) decodeLimits(b *hcl.Block) Limits {
	var lim Limits
	content, d := b.Body.Content(limitsSchema)
	l.diags = append(l.diags, d...)
	if a := content.Attributes["memory"]; a != nil {
		if n, ok := l.size(a, "memory", "Negative limit"); ok {
			lim.MemoryBytes = n
		}
	}
	if a := content.Attributes["timeout"]; a != nil {
		if t, ok := l.duration(a, "timeout", "Negative limit"); ok {
			lim.Timeout = t
		}
	}
	if a := content.Attributes["max_concurrency"]; a != nil {
		f, ok := l.number(a, "max_concurrency")
		switch {
		case !ok:
		case f.Sign() < 0:
			l.diags = append(l.diags, errDiag(a.Expr.Range(), "Negative limit",
				"The value of max_concurrency must not be negative; 0 means the target's default."))
		default:
			if n, ok := l.integer(a, "max_concurrency", 0, math.MaxInt32, "Invalid limit"); ok {
				lim.MaxConcurrency = int(n)
			}
		}
	}
	if a := content.Attributes["max_response"]; a != nil {
		if n, ok := l.size(a, "max_response", "Negative limit"); ok {
			lim.MaxResponseBytes = n
		}
	}
	return lim
}

// decodeDeploy decodes an app's deploy block (LANGUAGE.md, "deploy").
func (l *loader) decodeDeploy(b *hcl.Block) *DeployPolicy {
	content, d := b.Body.Content(deploySchema)
	l.diags = append(l.diags, d...)
	p := &DeployPolicy{}
	if a := content.Attributes["timeout"]; a != nil {
		if d, ok := l.duration(a, "timeout", "Invalid duration"); ok {
			p.Timeout = d
		}
	}
	if a := content.Attributes["auto_rollback"]; a != nil {
		if v, ok := l.boolean(a, "auto_rollback"); ok {
			p.AutoRollback = &v
		}
	}
	return p
}

func (l *loader) decodeHealth(b *hcl.Block) *Health {
	content, d := b.Body.Content(healthSchema)
	l.diags = append(l.diags, d...)
	a := content.Attributes["path"]
	if a == nil {
		return nil
	}
	p, ok := l.str(a, "path")
	if !ok {
		return nil
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\r\n#") {
		l.diags = append(l.diags, errDiag(a.Expr.Range(), "Invalid health path",
			"The health path %q must be a URL path starting with \"/\", such as \"/healthz\".", p))
		return nil
	}
	h := &Health{Path: p}
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{{"interval", &h.Interval}, {"timeout", &h.Timeout}, {"bake", &h.Bake}} {
		if a := content.Attributes[f.name]; a != nil {
			if d, ok := l.duration(a, f.name, "Invalid duration"); ok {
				*f.dst = d
			}
		}
	}
	if a := content.Attributes["failure_threshold"]; a != nil {
		if n, ok := l.integer(a, "failure_threshold", 0, math.MaxInt32, "Invalid limit"); ok {
			h.FailureThreshold = int(n)
		}
	}
	return h
}

// checkOutbound checks an allowed outbound host with the grammar ferry-host
// enforces (deploy/outbound, LANGUAGE.md), so that what validates works.
func checkOutbound(s string) error {
	_, err := outbound.Parse(s)
	if e, ok := err.(*outbound.Error); ok {
		return errors.New(e.Reason)
	}
	return err
}
