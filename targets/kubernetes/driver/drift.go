package driver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ferryFields returns the field set (managedFields fieldsV1) that manager
// FieldManager applied to u, or nil when it applied none.
func ferryFields(u *unstructured.Unstructured) map[string]any {
	for _, mf := range u.GetManagedFields() {
		if mf.Manager != FieldManager || mf.Operation != "Apply" || mf.FieldsV1 == nil || mf.Subresource != "" {
			continue
		}
		var set map[string]any
		if err := json.Unmarshal(mf.FieldsV1.Raw, &set); err != nil {
			return nil
		}
		return set
	}
	return nil
}

// Drift returns the paths of the fields that manager "ferry" manages in
// want (a dry-run apply's result) whose values differ in live, sorted.
// Fields ferry does not manage (defaults, status, other managers' fields)
// are never compared, so they are never drift.
func Drift(want, live *unstructured.Unstructured) []string {
	set := ferryFields(want)
	if set == nil {
		return nil
	}
	var out []string
	walk(set, want.Object, live.Object, "", &out)
	sort.Strings(out)
	return out
}

// walk compares a and b on the fields of set (a fieldsV1 tree: "f:name"
// for a field, "k:{...}" for a list element by its keys, "v:..." for a set
// element, "i:N" for a list index, "." for the node itself), appending the
// paths of the fields that differ.
func walk(set map[string]any, a, b any, path string, out *[]string) {
	for _, k := range sortedKeys(set) {
		sub, _ := set[k].(map[string]any)
		leaf := isLeaf(sub)
		switch {
		case k == ".":
		case strings.HasPrefix(k, "f:"):
			name := k[2:]
			p := name
			if path != "" {
				p = path + "." + name
			}
			am, _ := a.(map[string]any)
			bm, _ := b.(map[string]any)
			av, aok := am[name]
			bv, bok := bm[name]
			switch {
			case aok != bok:
				*out = append(*out, p)
			case !aok:
			case leaf:
				if !reflect.DeepEqual(av, bv) {
					*out = append(*out, p)
				}
			default:
				walk(sub, av, bv, p, out)
			}
		case strings.HasPrefix(k, "k:"):
			var key map[string]any
			if json.Unmarshal([]byte(k[2:]), &key) != nil {
				continue
			}
			p := path + "[" + keyString(key) + "]"
			ae, be := findByKey(a, key), findByKey(b, key)
			switch {
			case (ae == nil) != (be == nil):
				*out = append(*out, p)
			case ae == nil:
			case leaf:
				if !reflect.DeepEqual(ae, be) {
					*out = append(*out, p)
				}
			default:
				walk(sub, ae, be, p, out)
			}
		case strings.HasPrefix(k, "v:"):
			var v any
			if json.Unmarshal([]byte(k[2:]), &v) != nil {
				continue
			}
			if contains(a, v) != contains(b, v) {
				*out = append(*out, fmt.Sprintf("%s[%s]", path, k[2:]))
			}
		case strings.HasPrefix(k, "i:"):
			var i int
			if _, err := fmt.Sscanf(k[2:], "%d", &i); err != nil {
				continue
			}
			al, _ := a.([]any)
			bl, _ := b.([]any)
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case (i < len(al)) != (i < len(bl)):
				*out = append(*out, p)
			case i >= len(al):
			case leaf:
				if !reflect.DeepEqual(al[i], bl[i]) {
					*out = append(*out, p)
				}
			default:
				walk(sub, al[i], bl[i], p, out)
			}
		}
	}
}

// isLeaf reports whether a field set node has no children but itself.
func isLeaf(sub map[string]any) bool {
	for k := range sub {
		if k != "." {
			return false
		}
	}
	return true
}

func keyString(key map[string]any) string {
	var parts []string
	for _, k := range sortedKeys(key) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, key[k]))
	}
	return strings.Join(parts, ",")
}

// findByKey returns the element of list l whose fields hold key.
func findByKey(l any, key map[string]any) any {
	list, _ := l.([]any)
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		match := true
		for k, v := range key {
			if !looseEqual(m[k], v) {
				match = false
				break
			}
		}
		if match {
			return e
		}
	}
	return nil
}

// looseEqual compares a decoded object value with a decoded key value
// (numbers decode as int64 in one and float64 in the other).
func looseEqual(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func contains(l any, v any) bool {
	list, _ := l.([]any)
	for _, e := range list {
		if looseEqual(e, v) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func decodeBase64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}
