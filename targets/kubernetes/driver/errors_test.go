package driver

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ferry-wasm/ferry/targets"
)

// TestConflictError: an apply conflict becomes a *ConflictError naming
// each manager and field, as the apiserver reports them.
func TestConflictError(t *testing.T) {
	err := apierrors.NewApplyConflict([]metav1.StatusCause{
		{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl-edit" using apps/v1`, Field: ".spec.replicas"},
		{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "helm"`, Field: `.spec.template.spec.containers[name="ferry-host"].image`},
		{Type: metav1.CauseTypeFieldValueInvalid, Message: "not a conflict", Field: ".x"},
	}, "Apply failed with 2 conflicts")
	got := conflictError("Deployment/apps/shop", err)
	var ce *ConflictError
	if !errors.As(got, &ce) || !errors.Is(got, ErrConflict) {
		t.Fatalf("got %T %v", got, got)
	}
	want := []Conflict{{Manager: "kubectl-edit", Field: ".spec.replicas"}, {Manager: "helm", Field: `.spec.template.spec.containers[name="ferry-host"].image`}}
	if diff := cmp.Diff(want, ce.Conflicts); diff != "" {
		t.Errorf("conflicts (-want +got):\n%s", diff)
	}
	const msg = `Deployment/apps/shop exists and was not made by ferry: .spec.replicas is managed by "kubectl-edit", .spec.template.spec.containers[name="ferry-host"].image is managed by "helm"; remove it, or let ferry take the fields over (force conflicts)`
	if got.Error() != msg {
		t.Errorf("message\n%s\nwant\n%s", got.Error(), msg)
	}
}

// TestAPIErr: which API errors say that retrying may help.
func TestAPIErr(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	tests := []struct {
		err   error
		retry bool
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{apierrors.NewServiceUnavailable("down"), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewInternalError(errors.New("etcd")), true},
		{apierrors.NewTimeoutError("t", 1), true},
		{apierrors.NewForbidden(gr, "shop", errors.New("rbac")), false},
		{apierrors.NewNotFound(gr, "shop"), false},
		{apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "shop", nil), false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%T", tc.err), func(t *testing.T) {
			got := apiErr("get Deployment shop", tc.err)
			if errors.Is(got, targets.ErrUnavailable) != tc.retry || !errors.Is(got, tc.err) {
				t.Errorf("apiErr(%v) = %v; unavailable %v, want %v", tc.err, got, errors.Is(got, targets.ErrUnavailable), tc.retry)
			}
		})
	}
}
