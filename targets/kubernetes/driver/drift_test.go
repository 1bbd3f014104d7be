package driver_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-wasm/ferry/targets/kubernetes/driver"
)

func obj(fields string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "spec": spec}}
	if fields != "" {
		u.SetManagedFields([]metav1.ManagedFieldsEntry{
			{Manager: "kube-controller-manager", Operation: "Update", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:paused":{}}}`)}},
			{Manager: "ferry", Operation: "Apply", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}},
		})
	}
	return u
}

// TestDrift: only fields ferry manages are compared, through maps, keyed
// lists, sets and indexes.
func TestDrift(t *testing.T) {
	fields := `{"f:spec":{"f:replicas":{},"f:containers":{"k:{\"name\":\"ferry-host\"}":{".":{},"f:image":{},"f:env":{"k:{\"name\":\"A\"}":{".":{},"f:name":{},"f:value":{}}}}},"f:finalizers":{"v:\"x\"":{}},"f:ports":{"i:0":{"f:port":{}}},"f:emptyDir":{}}}`
	want := map[string]any{
		"replicas":   int64(2),
		"containers": []any{map[string]any{"name": "ferry-host", "image": "img:1", "env": []any{map[string]any{"name": "A", "value": "1"}}, "terminationMessagePath": "/dev/termination-log"}},
		"finalizers": []any{"x"},
		"ports":      []any{map[string]any{"port": int64(80), "protocol": "TCP"}},
		"emptyDir":   map[string]any{},
		"paused":     false,
	}
	tests := []struct {
		name string
		edit func(live map[string]any)
		want []string
	}{
		{"equal", func(map[string]any) {}, nil},
		{"defaults and other managers' fields are not drift", func(l map[string]any) {
			l["paused"] = true
			l["revisionHistoryLimit"] = int64(10)
			c := l["containers"].([]any)[0].(map[string]any)
			c["imagePullPolicy"] = "IfNotPresent"
			c["env"] = append(c["env"].([]any), map[string]any{"name": "B", "value": "added by hand"})
			l["ports"].([]any)[0].(map[string]any)["protocol"] = "UDP"
		}, nil},
		{"replicas", func(l map[string]any) { l["replicas"] = int64(5) }, []string{"spec.replicas"}},
		{"keyed element value", func(l map[string]any) {
			l["containers"].([]any)[0].(map[string]any)["env"].([]any)[0].(map[string]any)["value"] = "2"
		}, []string{"spec.containers[name=ferry-host].env[name=A].value"}},
		{"keyed element gone", func(l map[string]any) {
			l["containers"].([]any)[0].(map[string]any)["env"] = []any{}
		}, []string{"spec.containers[name=ferry-host].env[name=A]"}},
		{"set element gone", func(l map[string]any) { l["finalizers"] = []any{} }, []string{`spec.finalizers["x"]`}},
		{"indexed element", func(l map[string]any) { l["ports"].([]any)[0].(map[string]any)["port"] = int64(81) }, []string{"spec.ports[0].port"}},
		{"leaf object", func(l map[string]any) { l["emptyDir"] = map[string]any{"medium": "Memory"} }, []string{"spec.emptyDir"}},
		{"field removed", func(l map[string]any) { delete(l, "replicas") }, []string{"spec.replicas"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := obj(fields, want)
			live := obj("", w.DeepCopy().Object["spec"].(map[string]any))
			tc.edit(live.Object["spec"].(map[string]any))
			if diff := cmp.Diff(tc.want, driver.Drift(w, live)); diff != "" {
				t.Errorf("Drift (-want +got):\n%s", diff)
			}
		})
	}
	if got := driver.Drift(obj("", want), obj("", map[string]any{})); got != nil {
		t.Errorf("Drift without ferry's managed fields = %v, want none", got)
	}
}
