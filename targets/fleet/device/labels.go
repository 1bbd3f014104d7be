package device

import (
	"fmt"
	"regexp"
	"strings"
)

// labelKeyRE and labelValueRE are Kubernetes label syntax: an optional
// DNS-subdomain prefix and a name of at most 63 characters; a value of at
// most 63 characters, possibly empty.
var (
	labelKeyRE   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
)

// ParseLabels parses "k=v,k2=v2" (Kubernetes label syntax; empty gives
// none). A repeated key or a malformed pair is an error.
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("label %q: want key=value", kv)
		case !labelKeyRE.MatchString(k) || len(k) > 253+1+63:
			return nil, fmt.Errorf("label key %q is not a valid label key", k)
		case !labelValueRE.MatchString(v):
			return nil, fmt.Errorf("label %s: value %q is not a valid label value", k, v)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("label %s given twice", k)
		}
		out[k] = v
	}
	return out, nil
}
