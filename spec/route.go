package spec

import (
	"fmt"
	"regexp"
	"strings"
)

// Route is a parsed component route.
type Route struct {
	// Segments are the path segments without the trailing "..."; a
	// parameter segment keeps its ":" prefix. "/" has no segments.
	Segments []string
	// Prefix is true for a route ending in "/...", which matches its
	// segments and anything below them.
	Prefix bool
}

var (
	routeParamRE   = regexp.MustCompile(`^:[A-Za-z_][A-Za-z0-9_]*$`)
	routeLiteralRE = regexp.MustCompile(`^([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+$`)
)

// ParseRoute parses a route: "/" (exact root), "/a/b" (exact), "/users/:id"
// (":name" matches one segment), "/..." or "/api/..." (prefix: the path and
// everything below it). Segments may not be empty (no "//", no trailing "/"
// except the root), "." or "..", and use only URL path characters. Errors
// wrap ErrInvalidRoute.
func ParseRoute(s string) (Route, error) {
	if !strings.HasPrefix(s, "/") {
		return Route{}, fmt.Errorf("%w: %q does not start with \"/\"", ErrInvalidRoute, s)
	}
	if s == "/" {
		return Route{}, nil
	}
	parts := strings.Split(s[1:], "/")
	var r Route
	for i, p := range parts {
		switch {
		case p == "...":
			if i != len(parts)-1 {
				return Route{}, fmt.Errorf("%w: in %q, \"...\" may only be the last segment", ErrInvalidRoute, s)
			}
			r.Prefix = true
		case p == "":
			return Route{}, fmt.Errorf("%w: %q has an empty segment (a doubled or trailing \"/\")", ErrInvalidRoute, s)
		case p == "." || p == "..":
			return Route{}, fmt.Errorf("%w: %q has a %q segment", ErrInvalidRoute, s, p)
		case strings.HasPrefix(p, ":"):
			if !routeParamRE.MatchString(p) {
				return Route{}, fmt.Errorf("%w: in %q, parameter %q must be \":\" followed by a letter or \"_\" and then letters, digits or \"_\"", ErrInvalidRoute, s, p)
			}
			r.Segments = append(r.Segments, p)
		default:
			if !routeLiteralRE.MatchString(p) {
				return Route{}, fmt.Errorf("%w: segment %q of %q has characters not allowed in a URL path (use %%XX escapes)", ErrInvalidRoute, p, s)
			}
			r.Segments = append(r.Segments, p)
		}
	}
	return r, nil
}

// key is the route's shape for conflict detection: parameter names do not
// matter ("/u/:id" and "/u/:name" are the same route).
func (r Route) key() string {
	var b strings.Builder
	for _, s := range r.Segments {
		b.WriteByte('/')
		if strings.HasPrefix(s, ":") {
			b.WriteByte(':')
		} else {
			b.WriteString(s)
		}
	}
	if r.Prefix {
		b.WriteString("/...")
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}
