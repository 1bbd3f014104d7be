package host

import (
	"fmt"
	"strings"
)

// Routing rule (documented in ABI.md too):
//
//   - A route is exact ("/hello"), has parameters ("/users/:id"), or is a
//     prefix ("/api/..."; "/..." matches everything). Empty segments are
//     ignored, so "/a/" and "/a" are the same route.
//   - The path is matched segment by segment from the left. At each segment a
//     literal segment beats a ":param" segment, which beats a "/..." prefix
//     ending at that point. A prefix "/a/..." also matches "/a" itself, but
//     an exact "/a" beats it.
//   - Within one host name all routes of all apps on it form one table; the
//     same route twice is a conflict refused at deploy. Host-specific apps
//     are tried before apps that answer any host.

// routeKind is how a route pattern matches.
type routeKind uint8

const (
	routeExact routeKind = iota
	routePrefix
)

// target is what a route resolves to.
type target struct {
	v       *version
	comp    *component
	pattern string // as written, e.g. "/users/:id" or "/api/..."
	// script is SCRIPT_NAME: the pattern without a trailing "/..." ("/" at
	// least). For parameter routes it is the pattern itself.
	script string
	params []string // parameter names in order
}

// node is one segment level of a router.
type node struct {
	lit       map[string]*node
	param     *node
	paramName string
	exact     *target
	prefix    *target
}

// router matches request paths for one host key. It is immutable once
// built.
type router struct {
	root node
	n    int
}

// match is the result of a lookup.
type match struct {
	t *target
	// rest is the raw path after the prefix (starting with "/"), for prefix
	// routes; empty otherwise.
	rest string
	// params are the parameter values, parallel to t.params.
	params []string
}

// splitPattern validates a route and returns its segments and kind.
func splitPattern(p string) ([]string, routeKind, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, 0, fmt.Errorf("%w: route %q must start with /", ErrInvalidApp, p)
	}
	kind := routeExact
	if p == "/..." {
		return nil, routePrefix, nil
	}
	if strings.HasSuffix(p, "/...") {
		kind = routePrefix
		p = strings.TrimSuffix(p, "/...")
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s == "" {
			continue
		}
		if s == "..." || strings.Contains(s, "...") {
			return nil, 0, fmt.Errorf("%w: route %q: \"...\" is only allowed as the last segment", ErrInvalidApp, p)
		}
		if s == ":" {
			return nil, 0, fmt.Errorf("%w: route %q: parameter without a name", ErrInvalidApp, p)
		}
		segs = append(segs, s)
	}
	return segs, kind, nil
}

// add inserts a route. owner names the app for conflict messages.
func (r *router) add(t *target) error {
	segs, kind, err := splitPattern(t.pattern)
	if err != nil {
		return err
	}
	n := &r.root
	for _, s := range segs {
		if strings.HasPrefix(s, ":") {
			name := s[1:]
			if n.param == nil {
				n.param = &node{}
				n.paramName = name
			}
			t.params = append(t.params, name)
			n = n.param
			continue
		}
		if n.lit == nil {
			n.lit = map[string]*node{}
		}
		c := n.lit[s]
		if c == nil {
			c = &node{}
			n.lit[s] = c
		}
		n = c
	}
	slot := &n.exact
	if kind == routePrefix {
		slot = &n.prefix
	}
	if *slot != nil {
		o := *slot
		return fmt.Errorf("%w: route %q of app %q component %q is already served by app %q component %q (as %q)",
			ErrRouteConflict, t.pattern, t.v.app.Name, t.comp.name, o.v.app.Name, o.comp.name, o.pattern)
	}
	*slot = t
	r.n++
	return nil
}

// lookup matches a raw (escaped) path. It returns false when nothing matches.
func (r *router) lookup(path string, m *match) bool {
	if r == nil || r.n == 0 {
		return false
	}
	return r.root.walk(path, 0, m)
}

// walk matches path[i:] against n. Param values are appended to m.params and
// removed again on backtracking.
func (n *node) walk(path string, i int, m *match) bool {
	// Skip slashes to the next segment.
	for i < len(path) && path[i] == '/' {
		i++
	}
	if i >= len(path) {
		if n.exact != nil {
			m.t, m.rest = n.exact, ""
			return true
		}
		if n.prefix != nil {
			m.t, m.rest = n.prefix, ""
			return true
		}
		return false
	}
	end := strings.IndexByte(path[i:], '/')
	if end < 0 {
		end = len(path)
	} else {
		end += i
	}
	seg := path[i:end]
	if n.lit != nil {
		if c := n.lit[seg]; c != nil && c.walk(path, end, m) {
			return true
		}
	}
	if n.param != nil {
		k := len(m.params)
		m.params = append(m.params, seg)
		if n.param.walk(path, end, m) {
			return true
		}
		m.params = m.params[:k]
	}
	if n.prefix != nil {
		m.t = n.prefix
		// rest keeps the slash before the remaining segments.
		j := i
		if j > 0 && path[j-1] == '/' {
			j--
		}
		m.rest = path[j:]
		return true
	}
	return false
}

// scriptName returns SCRIPT_NAME for a pattern.
func scriptName(p string) string {
	if p == "/..." {
		return "/"
	}
	if s, ok := strings.CutSuffix(p, "/..."); ok {
		return s
	}
	return p
}
