package driver

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-wasm/ferry/targets/kubernetes/render"
)

func TestSubset(t *testing.T) {
	for _, tc := range []struct {
		name      string
		want, got any
		ok        bool
	}{
		{"equal scalars", "a", "a", true},
		{"different scalars", "a", "b", false},
		{"int and float", int64(2), float64(2), true},
		{"number and string", int64(2), "2", false},
		{"extra live fields (server defaults)", map[string]any{"a": "x"}, map[string]any{"a": "x", "b": "y"}, true},
		{"a field ferry sets is gone", map[string]any{"a": "x"}, map[string]any{"b": "y"}, false},
		{"empty wanted field absent", map[string]any{"a": map[string]any{}}, map[string]any{}, true},
		{"nested change", map[string]any{"s": map[string]any{"replicas": int64(2)}}, map[string]any{"s": map[string]any{"replicas": int64(3)}}, false},
		{"list of the same length", []any{map[string]any{"n": "a"}}, []any{map[string]any{"n": "a", "x": "d"}}, true},
		{"list with an extra item (another manager's)", []any{"a"}, []any{"a", "b"}, false},
		{"list reordered", []any{"a", "b"}, []any{"b", "a"}, false},
		{"map against scalar", map[string]any{"a": "x"}, "x", false},
	} {
		if got := subset(tc.want, tc.got); got != tc.ok {
			t.Errorf("%s: subset = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestUnchanged: only an object ferry applied in exactly this shape, with
// every field unchanged, is known unchanged without asking the server; a
// field ferry stopped setting (its hash moved) is not.
func TestUnchanged(t *testing.T) {
	obj := func(data map[string]any) render.Object {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "web-config", "labels": map[string]any{render.LabelName: "web"}}, "data": data}}
		return render.Object{Kind: "ConfigMap", Name: "web-config", U: u}
	}
	applied := func(o render.Object) *unstructured.Unstructured {
		u, err := withApplied(o)
		if err != nil {
			t.Fatal(err)
		}
		live := u.DeepCopy()
		live.SetUID("1234") // the server adds fields
		return live
	}
	o := obj(map[string]any{"a": "1", "b": "2"})
	if !unchanged(o, applied(o)) {
		t.Error("an object as applied is not unchanged")
	}
	edited := applied(o)
	edited.Object["data"].(map[string]any)["a"] = "9"
	if unchanged(o, edited) {
		t.Error("an edited field counts as unchanged")
	}
	fewer := obj(map[string]any{"a": "1"}) // ferry no longer sets b
	if unchanged(fewer, applied(o)) {
		t.Error("a field ferry stopped setting counts as unchanged (it must be removed by an apply)")
	}
	if unchanged(o, nil) {
		t.Error("a missing object counts as unchanged")
	}
	sec := render.Object{Kind: "Secret", Name: render.SecretsName("web"), U: &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "web-secrets", "labels": map[string]any{render.LabelName: "web"}},
		"data": map[string]any{"token": "czNjcmV0"}}}}
	u, err := withApplied(sec)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := u.GetAnnotations()[AnnotationApplied]; ok {
		t.Error("the Secret of secret values carries a hash of its values")
	}
}
