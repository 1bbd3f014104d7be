package spec

import (
	"fmt"
	"regexp"
	"strings"
)

var variableNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ParseTemplate returns the variable names a component variable template
// refers to, in order. A template is text with "{{ name }}" placeholders
// (spaces inside the braces are optional); name follows the variable name
// rule (a lowercase letter, then lowercase letters, digits or "_"). Errors
// wrap ErrInvalidTemplate.
func ParseTemplate(s string) ([]string, error) {
	var names []string
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return nil, fmt.Errorf("%w: %q has \"}}\" without \"{{\"", ErrInvalidTemplate, s)
			}
			return names, nil
		}
		if strings.Contains(rest[:i], "}}") {
			return nil, fmt.Errorf("%w: %q has \"}}\" without \"{{\"", ErrInvalidTemplate, s)
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return nil, fmt.Errorf("%w: %q has \"{{\" without \"}}\"", ErrInvalidTemplate, s)
		}
		name := strings.TrimSpace(rest[:j])
		if !variableNameRE.MatchString(name) {
			return nil, fmt.Errorf("%w: %q: %q is not a variable name (a lowercase letter, then lowercase letters, digits or \"_\")", ErrInvalidTemplate, s, name)
		}
		names = append(names, name)
		rest = rest[j+2:]
	}
}
