// Package outbound parses and matches an app's allowed_outbound_hosts, the
// one grammar that both the spec (which validates it) and ferry-host (which
// enforces it) use, so that an entry that validates is one that works.
//
// The grammar follows Spin's allowed_outbound_hosts for HTTP,
// scheme://host[:port] with an optional trailing "/", where
//
//   - scheme is "http", "https", or "*" (both);
//   - host is a lowercase DNS name ("api.example.com"), "*" (any host),
//     "*.domain" (any name below domain at any depth, not domain itself),
//     an IPv4 address, or a bracketed IPv6 address ("[::1]");
//   - port is a number from 1 to 65535, or "*" (any port). Without a port
//     the scheme's default applies (80 for http, 443 for https); "*://" has
//     no default, so it needs an explicit port, as in Spin.
//
// Not supported (refused with a message saying so): other schemes (ferry
// only makes HTTP requests), Spin's "self" host, CIDR ranges, port ranges and
// {…} lists, paths, queries, user info.
//
// It imports only the standard library, so spec and targets/host both import
// it without pulling in each other's dependencies.
package outbound

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every error Parse and ParseList
// return.
var ErrInvalid = errors.New("invalid outbound host")

// Error is an entry that does not parse.
type Error struct {
	// Entry is the entry as written.
	Entry string
	// Reason says in a phrase what is wrong ("the port is empty").
	Reason string
}

// Error implements error: `"ENTRY" is not an allowed outbound host: REASON`.
func (e *Error) Error() string {
	return fmt.Sprintf("%q is not an allowed outbound host: %s", e.Entry, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Rule is one parsed allowed_outbound_hosts entry. The zero Rule allows
// nothing; build one with Parse.
type Rule struct {
	// Scheme is "http", "https" or "*" (either).
	Scheme string
	// Host is "*" (any host), a name, or the text of an IP address in
	// canonical form (IPv6 without brackets). See Suffix.
	Host string
	// Suffix, when set, is ".domain" of a "*.domain" entry: the rule
	// matches every name that ends with it (and Host is empty).
	Suffix string
	// Port is the allowed port; 0 means any port.
	Port int
	// addr is Host parsed, for IP entries.
	addr netip.Addr
}

// Parse parses one allowed_outbound_hosts entry. Its error is an *Error.
func Parse(s string) (Rule, error) {
	r, err := parse(s)
	if err != nil {
		return Rule{}, &Error{Entry: s, Reason: err.Error()}
	}
	return r, nil
}

func parse(s string) (Rule, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Rule{}, errors.New("it has no scheme (write http://, https:// or *://)")
	}
	var r Rule
	switch scheme {
	case "http", "https", "*":
		r.Scheme = scheme
	default:
		return Rule{}, fmt.Errorf("the scheme %q is not http, https or *", scheme)
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/?#@ \t\r\n") {
		return Rule{}, errors.New("it may not have a path, query, fragment, user or spaces")
	}
	if strings.ContainsAny(rest, "{}") {
		return Rule{}, errors.New("lists in {…} are not supported; write one entry per host")
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		i := strings.IndexByte(rest, ']')
		if i < 0 {
			return Rule{}, errors.New("an IPv6 address has no \"]\"")
		}
		host, port = rest[:i+1], rest[i+1:]
		if port != "" {
			p, ok := strings.CutPrefix(port, ":")
			if !ok {
				return Rule{}, errors.New("unexpected text after the IPv6 address")
			}
			port = p
			if port == "" {
				return Rule{}, errors.New("the port is empty")
			}
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i+1:]
		if port == "" {
			return Rule{}, errors.New("the port is empty")
		}
	}
	if err := r.setHost(host); err != nil {
		return Rule{}, err
	}
	switch {
	case port == "*":
		r.Port = 0
	case port == "":
		switch r.Scheme {
		case "http":
			r.Port = 80
		case "https":
			r.Port = 443
		default:
			return Rule{}, errors.New("the scheme * has no default port; add one (\":443\") or \":*\" for any")
		}
	case strings.Contains(port, ".."):
		return Rule{}, errors.New("port ranges are not supported; write a port or *")
	default:
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '0' {
			return Rule{}, fmt.Errorf("the port %q must be a number from 1 to 65535 or *", port)
		}
		r.Port = n
	}
	return r, nil
}

func (r *Rule) setHost(host string) error {
	switch {
	case host == "":
		return errors.New("the host is empty")
	case host == "*":
		r.Host = "*"
	case host == "self":
		return errors.New("the host \"self\" is not supported; name the host")
	case strings.HasPrefix(host, "["):
		a, err := netip.ParseAddr(strings.TrimSuffix(host[1:], "]"))
		if err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("%q is not an IPv6 address", host)
		}
		r.addr = a.Unmap()
		r.Host = r.addr.String()
	case strings.Contains(host, "/"):
		return errors.New("CIDR ranges are not supported; write an address")
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			if !a.Is4() {
				return fmt.Errorf("the IPv6 address %q needs brackets: [%s]", host, host)
			}
			r.addr = a
			r.Host = a.String()
			return nil
		}
		if domain, ok := strings.CutPrefix(host, "*."); ok {
			if !isName(domain) || isIPv4(domain) {
				return fmt.Errorf("%q is not \"*.\" followed by a lowercase host name", host)
			}
			r.Suffix = "." + domain
			return nil
		}
		if strings.Contains(host, "*") {
			return fmt.Errorf("%q has a wildcard that is not a leading \"*.\"", host)
		}
		if !isName(host) {
			return fmt.Errorf("%q is not a lowercase host name", host)
		}
		r.Host = host
	}
	return nil
}

// String renders the rule in the entry syntax (canonical form: default
// ports are written out).
func (r Rule) String() string {
	h := r.Host
	switch {
	case r.Suffix != "":
		h = "*" + r.Suffix
	case r.addr.Is6():
		h = "[" + h + "]"
	}
	p := "*"
	if r.Port != 0 {
		p = strconv.Itoa(r.Port)
	}
	return r.Scheme + "://" + h + ":" + p
}

// Allows reports whether a request to u may be made under this rule. Only
// absolute http and https URLs with a well-formed host are ever allowed.
func (r Rule) Allows(u *url.URL) bool {
	t, ok := targetOf(u)
	return ok && r.allows(t)
}

func (r Rule) allows(t target) bool {
	if r.Scheme == "" || (r.Scheme != "*" && r.Scheme != t.scheme) {
		return false
	}
	if r.Port != 0 && r.Port != t.port {
		return false
	}
	switch {
	case r.Host == "*":
		return true
	case r.Suffix != "":
		return !t.addr.IsValid() && strings.HasSuffix(t.host, r.Suffix)
	case r.addr.IsValid():
		return t.addr == r.addr
	default:
		return !t.addr.IsValid() && t.host == r.Host
	}
}

// List is a component's parsed allowed_outbound_hosts. The empty List
// allows nothing.
type List []Rule

// ParseList parses every entry; the error joins one *Error per invalid
// entry.
func ParseList(entries []string) (List, error) {
	var l List
	var errs []error
	for _, e := range entries {
		r, err := Parse(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l = append(l, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return l, nil
}

// Allows reports whether any rule allows a request to u.
func (l List) Allows(u *url.URL) bool {
	t, ok := targetOf(u)
	if !ok {
		return false
	}
	for _, r := range l {
		if r.allows(t) {
			return true
		}
	}
	return false
}

// target is the part of a request URL that rules look at.
type target struct {
	scheme string
	host   string // lowercase name without a trailing dot, or the address's text
	addr   netip.Addr
	port   int
}

// targetOf extracts scheme, host and port of an absolute http(s) URL,
// filling in the scheme's default port. A host that is neither a DNS name
// nor an IP address (percent-escapes, underscores, a zone) is refused.
func targetOf(u *url.URL) (target, bool) {
	if u == nil {
		return target{}, false
	}
	t := target{scheme: strings.ToLower(u.Scheme)}
	switch t.scheme {
	case "http":
		t.port = 80
	case "https":
		t.port = 443
	default:
		return target{}, false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return target{}, false
		}
		t.port = n
	}
	host := strings.ToLower(u.Hostname())
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return target{}, false
		}
		t.addr = a.Unmap()
		t.host = t.addr.String()
		return t, true
	}
	host = strings.TrimSuffix(host, ".")
	if !isName(host) {
		return target{}, false
	}
	t.host = host
	return t, true
}

// isName reports whether s is a lowercase DNS name: dot-separated labels of
// 1 to 63 letters, digits or "-", not starting or ending with "-", at most
// 253 characters.
func isName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// isIPv4 reports whether s parses as an IPv4 address.
func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}
