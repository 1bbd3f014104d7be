package driver_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/kubernetes/driver"
)

func dep(gen, observed int64, replicas *int32, st appsv1.DeploymentStatus) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: replicas}, Status: st}
	d.Status.ObservedGeneration = observed
	return d
}

func cond(reason string, status corev1.ConditionStatus) []appsv1.DeploymentCondition {
	return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: status, Reason: reason, Message: "msg"}}
}

func i32(n int32) *int32 { return &n }

// TestPhase: the rollout phase of a Deployment from its status alone.
func TestPhase(t *testing.T) {
	done := cond("NewReplicaSetAvailable", corev1.ConditionTrue)
	rolling := cond("ReplicaSetUpdated", corev1.ConditionTrue)
	tests := []struct {
		name  string
		d     *appsv1.Deployment
		phase targets.Phase
		msg   string
	}{
		{"ready", dep(2, 2, i32(3), appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, Conditions: done}), targets.PhaseReady, ""},
		{"replicas unset means 1", dep(1, 1, nil, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}), targets.PhaseReady, ""},
		{"generation not observed", dep(3, 2, i32(3), appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, Conditions: done}),
			targets.PhaseProgressing, "waiting for the Deployment controller to observe generation 3"},
		{"replicas being updated", dep(2, 2, i32(3), appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3, Conditions: rolling}),
			targets.PhaseProgressing, "1 of 3 replicas updated"},
		{"old replicas terminating", dep(2, 2, i32(3), appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 3, Conditions: rolling}),
			targets.PhaseProgressing, "1 old replicas pending termination"},
		{"updated not yet available", dep(2, 2, i32(3), appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1, Conditions: rolling}),
			targets.PhaseProgressing, "1 of 3 updated replicas available"},
		{"finished rollout lost replicas", dep(2, 2, i32(3), appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2, Conditions: done}),
			targets.PhaseDegraded, "2 of 3 replicas available"},
		{"progress deadline exceeded", dep(2, 2, i32(3), appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, Conditions: cond("ProgressDeadlineExceeded", corev1.ConditionFalse)}),
			targets.PhaseFailed, "the rollout exceeded its progress deadline: msg"},
		{"pods cannot be created", dep(2, 2, i32(3), appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Message: "quota"}}}),
			targets.PhaseFailed, "pods cannot be created: quota"},
		{"scaled to zero", dep(1, 1, i32(0), appsv1.DeploymentStatus{Conditions: done}), targets.PhaseReady, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			phase, msg := driver.Phase(tc.d)
			if phase != tc.phase || msg != tc.msg {
				t.Errorf("Phase = %s %q, want %s %q", phase, msg, tc.phase, tc.msg)
			}
		})
	}
}
