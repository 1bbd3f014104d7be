package plan

import (
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/parallel"
)

// ConfigChanges lists the configuration fields that differ between old and
// new, as paths in the artifact's JSON names ("hosts",
// "components[web].routes", "components[web].env[LOG_LEVEL]",
// "variables[greeting]", "components[api] added"). A component whose Wasm
// changed reads "components[web].wasm sha256:aaa… → sha256:bbb…". Values are
// never included, so the list is safe to print even for secret variables.
// Nil and empty lists or maps are equal. The result is sorted within each
// level and empty when nothing differs.
func ConfigChanges(old, new deploy.App) []string {
	var out []string
	if old.Name != new.Name {
		out = append(out, "name")
	}
	if !sliceEq(old.Hosts, new.Hosts) {
		out = append(out, "hosts")
	}
	if !sliceEq(old.KeyValueStores, new.KeyValueStores) {
		out = append(out, "key_value_stores")
	}
	out = append(out, mapDiff("variables", old.Variables, new.Variables, func(a, b deploy.Variable) bool {
		return a.Secret == b.Secret && reflect.DeepEqual(a.Default, b.Default)
	})...)

	oc := map[string]deploy.Component{}
	var oldOrder, newOrder []string
	for _, c := range old.Components {
		oc[c.Name] = c
		oldOrder = append(oldOrder, c.Name)
	}
	nc := map[string]deploy.Component{}
	for _, c := range new.Components {
		nc[c.Name] = c
		newOrder = append(newOrder, c.Name)
	}
	for _, name := range sortedUnion(oc, nc) {
		a, inOld := oc[name]
		b, inNew := nc[name]
		p := fmt.Sprintf("components[%s]", name)
		switch {
		case !inOld:
			out = append(out, p+" added")
		case !inNew:
			out = append(out, p+" removed")
		default:
			out = append(out, componentChanges(p, a, b)...)
		}
	}
	if len(oc) == len(old.Components) && len(nc) == len(new.Components) &&
		len(oldOrder) == len(newOrder) && !slices.Equal(oldOrder, newOrder) && sameKeys(oc, nc) {
		out = append(out, "components order")
	}
	return out
}

func componentChanges(p string, a, b deploy.Component) []string {
	var out []string
	if a.Digest != b.Digest {
		out = append(out, fmt.Sprintf("%s.wasm %s → %s", p, ShortDigest(a.Digest), ShortDigest(b.Digest)))
	}
	if parallel.OrDefault(a.Executor, deploy.ExecutorWAGI) != parallel.OrDefault(b.Executor, deploy.ExecutorWAGI) {
		out = append(out, p+".executor")
	}
	if !sliceEq(a.Routes, b.Routes) {
		out = append(out, p+".routes")
	}
	out = append(out, mapDiff(p+".env", a.Env, b.Env, func(x, y string) bool { return x == y })...)
	if !sliceEq(a.Files, b.Files) {
		out = append(out, p+".files")
	}
	if !sliceEq(a.AllowedOutboundHosts, b.AllowedOutboundHosts) {
		out = append(out, p+".allowed_outbound_hosts")
	}
	if !sliceEq(a.KeyValueStores, b.KeyValueStores) {
		out = append(out, p+".key_value_stores")
	}
	out = append(out, mapDiff(p+".variables", a.Variables, b.Variables, func(x, y string) bool { return x == y })...)
	if a.Limits.MemoryBytes != b.Limits.MemoryBytes {
		out = append(out, p+".limits.memory_bytes")
	}
	if a.Limits.Timeout != b.Limits.Timeout {
		out = append(out, p+".limits.timeout")
	}
	if a.Limits.MaxConcurrency != b.Limits.MaxConcurrency {
		out = append(out, p+".limits.max_concurrency")
	}
	if a.Limits.MaxResponseBytes != b.Limits.MaxResponseBytes {
		out = append(out, p+".limits.max_response_bytes")
	}
	if !reflect.DeepEqual(a.Health, b.Health) {
		out = append(out, p+".health")
	}
	return out
}

func sliceEq(a, b []string) bool { return slices.Equal(a, b) } // nil and empty are equal

func mapDiff[V any](prefix string, a, b map[string]V, eq func(x, y V) bool) []string {
	var out []string
	for _, k := range sortedUnion(a, b) {
		x, inA := a[k]
		y, inB := b[k]
		if !inA || !inB || !eq(x, y) {
			out = append(out, fmt.Sprintf("%s[%s]", prefix, k))
		}
	}
	return out
}

func sortedUnion[V any](a, b map[string]V) []string {
	ks := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func sameKeys[V any](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}
