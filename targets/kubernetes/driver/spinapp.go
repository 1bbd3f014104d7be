package driver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/kubernetes/render"
)

// ErrSpinKube is wrapped by the errors of a cluster that lacks what mode
// spinapp needs: the spin-operator CRDs, or the SpinAppExecutor the target
// names. Retrying does not help until it is installed.
var ErrSpinKube = errors.New("kubernetes: SpinKube is not ready for the app")

// checkSpin checks, before anything is applied, that the cluster serves
// SpinApps and has the target's SpinAppExecutor in the namespace, and that
// the app can run in Spin (no reactor component).
func (d *Driver) checkSpin(ctx context.Context, want targets.DesiredApp) error {
	if err := render.CheckSpinApp(want.App); err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	if _, err := d.ri("SpinApp").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return spinListErr(err)
	}
	exec := d.executor()
	list, err := d.ri("SpinAppExecutor").List(ctx, metav1.ListOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%w: the cluster does not serve SpinAppExecutors (%s): install SpinKube's spin-operator CRDs (spin-operator.crds.yaml)", ErrSpinKube, render.SpinAPIVersion)
		}
		return apiErr("list SpinAppExecutors", err)
	}
	var names []string
	for _, u := range list.Items {
		if u.GetName() == exec {
			return nil
		}
		names = append(names, u.GetName())
	}
	have := "there is none"
	if len(names) > 0 {
		sort.Strings(names)
		have = "it has " + strings.Join(names, ", ")
	}
	return fmt.Errorf("%w: SpinAppExecutor %q does not exist in namespace %s (%s): create it (SpinKube's spin-operator.shim-executor.yaml makes %q) or name an existing one with executor = \"...\" in the target", ErrSpinKube, exec, d.o.Render.Namespace, have, render.DefaultExecutor)
}

// spinListErr is the error of listing SpinApps: ErrSpinKube, saying what
// to install, when the cluster does not serve them.
func spinListErr(err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: the cluster does not serve SpinApps (%s, resource spinapps): install SpinKube's spin-operator CRDs (spin-operator.crds.yaml: SpinApp and SpinAppExecutor) and the spin-operator before deploying to a target in mode \"spinapp\"", ErrSpinKube, render.SpinAPIVersion)
	}
	return apiErr("list SpinApps", err)
}

func (d *Driver) executor() string {
	if d.o.Render.Executor != "" {
		return d.o.Render.Executor
	}
	return render.DefaultExecutor
}

// renderSpin renders want in mode spinapp, with its Spin image.
func (d *Driver) renderSpin(ctx context.Context, want targets.DesiredApp, push bool) ([]render.Object, error) {
	image, err := d.o.SpinImages.SpinImage(ctx, want.Ref, push)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: the Spin image of %s: %w", want.Ref, err)
	}
	objs, err := render.SpinApp(want, d.o.Render, image)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return objs, nil
}

// SpinPhase returns the phase of SpinApp u from its status (written by
// spin-operator) and a short phrase saying what it waits for: Ready when
// the Available condition is True and status.readyReplicas reaches
// spec.replicas (one with autoscaling). A SpinApp without status is
// progressing (the operator has not seen it yet). SpinApp status has no
// observedGeneration, so a status from before the last change counts.
func SpinPhase(u *unstructured.Unstructured) (targets.Phase, string) {
	if u.GetDeletionTimestamp() != nil {
		return targets.PhaseDegraded, "being deleted"
	}
	want, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if !found || want < 1 {
		want = 1
	}
	ready, _, _ := unstructured.NestedInt64(u.Object, "status", "readyReplicas")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var avail map[string]any
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Available" {
			avail = m
		}
	}
	switch {
	case avail == nil:
		return targets.PhaseProgressing, "waiting for spin-operator to report the SpinApp's Available condition"
	case avail["status"] != "True":
		msg := fmt.Sprintf("not available (%v): %v", avail["reason"], avail["message"])
		if ready > 0 {
			return targets.PhaseDegraded, msg
		}
		return targets.PhaseProgressing, msg
	case ready < want:
		return targets.PhaseProgressing, fmt.Sprintf("%d of %d replicas ready", ready, want)
	}
	return targets.PhaseReady, ""
}

// waitSpin waits for app's SpinApp to be ready (SpinPhase).
func (d *Driver) waitSpin(ctx context.Context, app string) (targets.PutResult, error) {
	var limit <-chan time.Time
	if d.o.RolloutWait > 0 {
		t := time.NewTimer(d.o.RolloutWait)
		defer t.Stop()
		limit = t.C
	}
	tick := time.NewTicker(d.poll)
	defer tick.Stop()
	for {
		u, err := d.ri("SpinApp").Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return targets.PutResult{}, fmt.Errorf("kubernetes: SpinApp %s: %w: %w", app, targets.ErrUnhealthy, ctx.Err())
			}
			return targets.PutResult{}, apiErr("get SpinApp "+app, err)
		}
		phase, msg := SpinPhase(u)
		if phase == targets.PhaseReady {
			return targets.PutResult{Phase: targets.PhaseReady}, nil
		}
		select {
		case <-ctx.Done():
			return targets.PutResult{}, fmt.Errorf("kubernetes: SpinApp %s: %w: %s (%w)", app, targets.ErrUnhealthy, msg, ctx.Err())
		case <-limit:
			return targets.PutResult{Phase: phase, Message: msg}, nil
		case <-tick.C:
		}
	}
}

// observeSpin lists the namespace's SpinApps: ferry's as managed apps,
// the others as unmanaged ones; a cluster that does not serve SpinApps is
// an ErrSpinKube error. The digest is the ferry artifact's (the
// SpinApp's ferry.dev/digest annotation), not the Spin image's.
func (d *Driver) observeSpin(ctx context.Context) ([]targets.ObservedApp, error) {
	list, err := d.ri("SpinApp").List(ctx, metav1.ListOptions{})
	if err != nil {
		// A cluster without the CRDs fails the plan of the target with
		// what to install, rather than planning creates that would fail.
		return nil, spinListErr(err)
	}
	secrets, err := d.ri("Secret").List(ctx, metav1.ListOptions{LabelSelector: render.LabelManagedBy + "=" + render.ManagedBy + "," + render.LabelOwner})
	if err != nil {
		return nil, apiErr("list Secrets", err)
	}
	byName := map[string]*unstructured.Unstructured{}
	for i := range secrets.Items {
		byName[secrets.Items[i].GetName()] = &secrets.Items[i]
	}
	var out []targets.ObservedApp
	for i := range list.Items {
		u := &list.Items[i]
		out = append(out, d.observedSpinApp(u, byName[render.SecretsName(u.GetName())]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// observedSpinApp is what Observe reports for SpinApp u, with secret its
// app's Secret (nil: none).
func (d *Driver) observedSpinApp(u, secret *unstructured.Unstructured) targets.ObservedApp {
	phase, msg := SpinPhase(u)
	ann, labels := u.GetAnnotations(), u.GetLabels()
	o := targets.ObservedApp{
		Name: u.GetName(), Ref: ann[render.AnnotationRef], Digest: ann[render.AnnotationDigest],
		Phase: phase, Status: string(phase), Healthy: phase == targets.PhaseReady, Message: msg,
	}
	_, owned := labels[render.LabelOwner]
	if labels[render.LabelManagedBy] == render.ManagedBy && owned && labels[render.LabelName] == u.GetName() {
		o.Managed = true
		o.Owner = ann[render.AnnotationOwner]
		o.SecretHashes = d.observedSecretHashes(u.GetName(), secret)
	}
	return o
}
