package driver_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/kubernetes/driver"
)

// TestSpinPhase: a SpinApp's phase from its spec and status alone.
func TestSpinPhase(t *testing.T) {
	sa := func(spec, status map[string]any) *unstructured.Unstructured {
		o := map[string]any{"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp", "metadata": map[string]any{"name": "web"}, "spec": spec}
		if status != nil {
			o["status"] = status
		}
		return &unstructured.Unstructured{Object: o}
	}
	avail := func(status string, ready int64) map[string]any {
		return map[string]any{"readyReplicas": ready, "conditions": []any{map[string]any{"type": "Available", "status": status, "reason": "R", "message": "m"}}}
	}
	two := map[string]any{"replicas": int64(2)}
	tests := []struct {
		name  string
		u     *unstructured.Unstructured
		phase targets.Phase
		msg   string
	}{
		{"no status yet", sa(two, nil), targets.PhaseProgressing, "waiting for spin-operator"},
		{"available, all ready", sa(two, avail("True", 2)), targets.PhaseReady, ""},
		{"available, one of two", sa(two, avail("True", 1)), targets.PhaseProgressing, "1 of 2 replicas ready"},
		{"not available, none ready", sa(two, avail("False", 0)), targets.PhaseProgressing, "not available (R): m"},
		{"not available, some ready", sa(two, avail("False", 1)), targets.PhaseDegraded, "not available"},
		{"autoscaling: one ready is enough", sa(map[string]any{"enableAutoscaling": true}, avail("True", 1)), targets.PhaseReady, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			phase, msg := driver.SpinPhase(tc.u)
			if phase != tc.phase || !strings.Contains(msg, tc.msg) || (tc.msg == "" && msg != "") {
				t.Errorf("SpinPhase = %s %q, want %s %q", phase, msg, tc.phase, tc.msg)
			}
		})
	}
}
