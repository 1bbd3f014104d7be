package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Operator is the operator of one label selector requirement.
type Operator string

// Label selector operators.
const (
	// OpEquals: the label exists and equals the only value ("a=b", "a==b").
	OpEquals Operator = "="
	// OpNotEquals: the label is absent or differs from the value ("a!=b").
	OpNotEquals Operator = "!="
	// OpIn: the label exists and is one of the values ("a in (x,y)").
	OpIn Operator = "in"
	// OpNotIn: the label is absent or none of the values ("a notin (x)").
	OpNotIn Operator = "notin"
	// OpExists: the label exists, with any value ("a").
	OpExists Operator = "exists"
	// OpNotExists: the label is absent ("!a").
	OpNotExists Operator = "!"
)

// Requirement is one comma-separated term of a label selector.
type Requirement struct {
	// Key is the label key, with an optional DNS prefix ("example.com/tier").
	Key string `json:"key"`
	// Operator says how Key is tested.
	Operator Operator `json:"operator"`
	// Values are the operand values: one for OpEquals and OpNotEquals, one
	// or more for OpIn and OpNotIn, none otherwise.
	Values []string `json:"values,omitempty"`
}

// LabelSelector selects devices by their labels, in the Kubernetes label
// selector string syntax: "a=b, c!=d, e in (x,y), f notin (z), g, !h". All
// requirements must hold. The zero value (no requirements) matches
// everything. It encodes to text as its canonical string.
type LabelSelector struct {
	// Requirements are the terms, in written order.
	Requirements []Requirement
}

var (
	labelNameRE  = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$`)
	labelValueRE = regexp.MustCompile(`^(([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)$`)
	dnsSubdomRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// ParseLabelSelector parses s. The empty string (or only spaces) gives the
// empty selector. Errors wrap ErrInvalidSelector.
func ParseLabelSelector(s string) (LabelSelector, error) {
	toks, err := lexSelector(s)
	if err != nil {
		return LabelSelector{}, err
	}
	p := selParser{toks: toks, src: s}
	return p.parse()
}

// Matches reports whether labels satisfy every requirement of s.
func (s LabelSelector) Matches(labels map[string]string) bool {
	for _, r := range s.Requirements {
		v, ok := labels[r.Key]
		switch r.Operator {
		case OpEquals:
			if !ok || v != r.Values[0] {
				return false
			}
		case OpNotEquals:
			if ok && v == r.Values[0] {
				return false
			}
		case OpIn:
			if !ok || !slices.Contains(r.Values, v) {
				return false
			}
		case OpNotIn:
			if ok && slices.Contains(r.Values, v) {
				return false
			}
		case OpExists:
			if !ok {
				return false
			}
		case OpNotExists:
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Empty reports whether s has no requirements (and so matches everything).
func (s LabelSelector) Empty() bool { return len(s.Requirements) == 0 }

// IsZero reports whether s is the zero value; it is the same as Empty.
func (s LabelSelector) IsZero() bool { return s.Empty() }

// String returns the canonical form: requirements in written order,
// separated by ",", with in-sets as "key in (a,b)".
func (s LabelSelector) String() string {
	parts := make([]string, 0, len(s.Requirements))
	for _, r := range s.Requirements {
		switch r.Operator {
		case OpEquals, OpNotEquals:
			parts = append(parts, r.Key+string(r.Operator)+strings.Join(r.Values, ""))
		case OpIn, OpNotIn:
			parts = append(parts, r.Key+" "+string(r.Operator)+" ("+strings.Join(r.Values, ",")+")")
		case OpExists:
			parts = append(parts, r.Key)
		case OpNotExists:
			parts = append(parts, "!"+r.Key)
		}
	}
	return strings.Join(parts, ",")
}

// MarshalText implements encoding.TextMarshaler with String.
func (s LabelSelector) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseLabelSelector.
func (s *LabelSelector) UnmarshalText(b []byte) error {
	v, err := ParseLabelSelector(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

type selTokKind int

const (
	tokWord selTokKind = iota
	tokComma
	tokOpen
	tokClose
	tokEq    // = or ==
	tokNotEq // !=
	tokBang  // !
)

type selTok struct {
	kind selTokKind
	text string
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '/'
}

func lexSelector(s string) ([]selTok, error) {
	var toks []selTok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == ',':
			toks = append(toks, selTok{kind: tokComma, text: ","})
			i++
		case c == '(':
			toks = append(toks, selTok{kind: tokOpen, text: "("})
			i++
		case c == ')':
			toks = append(toks, selTok{kind: tokClose, text: ")"})
			i++
		case c == '=':
			if i+1 < len(s) && s[i+1] == '=' {
				i++
			}
			toks = append(toks, selTok{kind: tokEq, text: "="})
			i++
		case c == '!':
			if i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, selTok{kind: tokNotEq, text: "!="})
				i += 2
			} else {
				toks = append(toks, selTok{kind: tokBang, text: "!"})
				i++
			}
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, selTok{kind: tokWord, text: s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("%w: unexpected character %q", ErrInvalidSelector, rune(c))
		}
	}
	return toks, nil
}

type selParser struct {
	toks []selTok
	pos  int
	src  string
}

func (p *selParser) peek() *selTok {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

func (p *selParser) next() *selTok {
	t := p.peek()
	if t != nil {
		p.pos++
	}
	return t
}

func (p *selParser) errf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidSelector}, args...)...)
}

func (p *selParser) parse() (LabelSelector, error) {
	var sel LabelSelector
	if len(p.toks) == 0 {
		return sel, nil
	}
	for {
		r, err := p.requirement()
		if err != nil {
			return LabelSelector{}, err
		}
		sel.Requirements = append(sel.Requirements, r)
		t := p.next()
		if t == nil {
			return sel, nil
		}
		if t.kind != tokComma {
			return LabelSelector{}, p.errf("expected \",\" after a requirement, found %q", t.text)
		}
		if p.peek() == nil {
			return LabelSelector{}, p.errf("trailing \",\"")
		}
	}
}

func (p *selParser) key() (string, error) {
	t := p.next()
	if t == nil || t.kind != tokWord {
		if t == nil {
			return "", p.errf("expected a label key at the end")
		}
		return "", p.errf("expected a label key, found %q", t.text)
	}
	if err := checkLabelKey(t.text); err != nil {
		return "", err
	}
	return t.text, nil
}

func checkLabelKey(k string) error {
	name := k
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if prefix == "" || len(prefix) > 253 || !dnsSubdomRE.MatchString(prefix) {
			return fmt.Errorf("%w: label key %q has an invalid prefix (want a lowercase DNS name)", ErrInvalidSelector, k)
		}
	}
	if !labelNameRE.MatchString(name) {
		return fmt.Errorf("%w: invalid label key %q (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)", ErrInvalidSelector, k)
	}
	return nil
}

func checkLabelValue(v string) error {
	if !labelValueRE.MatchString(v) {
		return fmt.Errorf("%w: invalid label value %q (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)", ErrInvalidSelector, v)
	}
	return nil
}

func (p *selParser) requirement() (Requirement, error) {
	if t := p.peek(); t != nil && t.kind == tokBang {
		p.next()
		k, err := p.key()
		if err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: k, Operator: OpNotExists}, nil
	}
	k, err := p.key()
	if err != nil {
		return Requirement{}, err
	}
	t := p.peek()
	if t == nil || t.kind == tokComma {
		return Requirement{Key: k, Operator: OpExists}, nil
	}
	p.next()
	switch {
	case t.kind == tokEq || t.kind == tokNotEq:
		op := OpEquals
		if t.kind == tokNotEq {
			op = OpNotEquals
		}
		v := ""
		if n := p.peek(); n != nil && n.kind == tokWord {
			v = n.text
			p.next()
		}
		if err := checkLabelValue(v); err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: k, Operator: op, Values: []string{v}}, nil
	case t.kind == tokWord && (t.text == "in" || t.text == "notin"):
		op := OpIn
		if t.text == "notin" {
			op = OpNotIn
		}
		if o := p.next(); o == nil || o.kind != tokOpen {
			return Requirement{}, p.errf("expected \"(\" after %q", t.text)
		}
		var vals []string
		for {
			n := p.next()
			if n == nil {
				return Requirement{}, p.errf("missing \")\"")
			}
			if n.kind != tokWord {
				return Requirement{}, p.errf("expected a value in the set of %q, found %q", k, n.text)
			}
			if err := checkLabelValue(n.text); err != nil {
				return Requirement{}, err
			}
			vals = append(vals, n.text)
			n = p.next()
			if n == nil {
				return Requirement{}, p.errf("missing \")\"")
			}
			if n.kind == tokClose {
				break
			}
			if n.kind != tokComma {
				return Requirement{}, p.errf("expected \",\" or \")\" in the set of %q, found %q", k, n.text)
			}
		}
		return Requirement{Key: k, Operator: op, Values: vals}, nil
	default:
		return Requirement{}, p.errf("expected an operator (=, ==, !=, in, notin) after %q, found %q", k, t.text)
	}
}
