package driver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/kubernetes/render"
)

// FieldManager is the server-side apply field manager of every object the
// driver applies.
const FieldManager = "ferry"

var (
	_ targets.Target        = (*Driver)(nil)
	_ targets.Differ        = (*Driver)(nil)
	_ targets.SecretHasher  = (*Driver)(nil)
	_ targets.OwnerRecorder = (*Driver)(nil)
	_ targets.Checker       = (*Driver)(nil)
)

// resource returns the API resource of a kind of render.Kinds.
func resource(kind string) schema.GroupVersionResource {
	switch kind {
	case "Deployment":
		return schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	case "HorizontalPodAutoscaler":
		return schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}
	case "SpinApp":
		return schema.GroupVersionResource{Group: "core.spinkube.dev", Version: "v1alpha1", Resource: "spinapps"}
	case "SpinAppExecutor":
		return schema.GroupVersionResource{Group: "core.spinkube.dev", Version: "v1alpha1", Resource: "spinappexecutors"}
	}
	return schema.GroupVersionResource{Version: "v1", Resource: strings.ToLower(kind) + "s"} // ConfigMap, Secret, Service
}

// Modes of a Driver (spec.KubeModeHost, spec.KubeModeSpinApp).
const (
	// ModeHost runs apps in ferry's host image (a Deployment per app).
	ModeHost = "host"
	// ModeSpinApp runs apps as SpinKube SpinApps.
	ModeSpinApp = "spinapp"
)

// SpinImager makes the Spin OCI app of a ferry artifact
// (*registry.Client's SpinImageFor does).
type SpinImager interface {
	// SpinImage returns the reference (by digest) of the Spin app made of
	// the ferry artifact ref, pushing it to the artifact's repository when
	// push is set; without push it only computes it.
	SpinImage(ctx context.Context, ref string, push bool) (string, error)
}

// Options configure a Driver. Render's Namespace is required; in mode
// host also Render's Image and TrustKeys, in mode spinapp SpinImages;
// every other zero value is the default named on its field.
type Options struct {
	// Mode is ModeHost (empty means ModeHost) or ModeSpinApp.
	Mode string
	// SpinImages makes and pushes the Spin image of each app in mode
	// spinapp. Required in that mode.
	SpinImages SpinImager
	// Render shapes the objects (namespace, image, replicas, resources,
	// scheduling, autoscaling, trust keys).
	Render render.Options
	// ForceConflicts applies with force also to objects ferry does not
	// manage yet, taking over fields other managers own. False: such a
	// conflict is a *ConflictError.
	ForceConflicts bool
	// RolloutWait bounds how long Put waits for a rollout before it
	// returns PhaseProgressing. Zero: until the Put's context ends (the
	// app's deploy timeout), which is then an error.
	RolloutWait time.Duration
	// PollInterval is how often Put reads the Deployment while it waits.
	// Zero means 250 ms.
	PollInterval time.Duration
	// SecretHashKey keys the secret hashes (SecretHashes). Nil derives it
	// from the REST config's credentials (see New).
	SecretHashKey []byte
	// TrustKeyFiles are PEM public keys read at every Put and Diff into
	// Render.TrustKeys (by base name), so a key changed in the spec reaches
	// the cluster without reopening the driver. A file that cannot be read
	// fails the Put. Nil leaves Render.TrustKeys as given.
	TrustKeyFiles []string
	// Verify, when set, checks in mode host each app's artifact against
	// the trust keys its pods get, before Put applies anything and when
	// Check is asked (the plan), so that an artifact the pods would refuse
	// is reported with the reason (*UntrustedError) instead of as pods
	// that never become ready. The pods still verify it themselves. Nil
	// leaves verification to the pods.
	Verify ArtifactVerifier
	// Logger receives the driver's debug messages. Nil discards them.
	Logger *slog.Logger
}

// ArtifactVerifier checks an artifact's signature.
type ArtifactVerifier interface {
	// VerifyArtifact returns nil when ref (REPO@DIGEST) is signed by one of
	// trustKeys (PEM public keys by file name), an error wrapping
	// ErrUntrusted when it is not, or another error when it could not tell
	// (the registry is unreachable).
	VerifyArtifact(ctx context.Context, ref string, trustKeys map[string][]byte) error
}

// Driver deploys apps to one namespace of a cluster. Make one with New.
type Driver struct {
	// snaps is Diff's listing of ferry's objects (see snapshotNow).
	snaps snapCache
	dyn   dynamic.Interface
	o     Options
	key   []byte
	log   *slog.Logger
	poll  time.Duration
}

// New returns a driver for the cluster cfg reaches. It does not contact the
// cluster. Without Options.SecretHashKey the key of the secret hashes is
// derived from cfg's server, the namespace and cfg's static credentials (a
// bearer token, a client key): everyone with the same credentials computes
// the same hashes, and nobody without them can test a guess of a secret
// against a hash in a plan file. A config without static credentials (an
// exec plugin, a token file) gives keys from the server and namespace only.
func New(cfg *rest.Config, o Options) (*Driver, error) {
	if o.Render.Namespace == "" {
		return nil, fmt.Errorf("kubernetes: %w: no namespace", render.ErrInvalid)
	}
	switch o.Mode {
	case "":
		o.Mode = ModeHost
	case ModeHost:
	case ModeSpinApp:
		if o.SpinImages == nil {
			return nil, fmt.Errorf("kubernetes: %w: mode spinapp needs a registry client to push Spin images", render.ErrInvalid)
		}
	default:
		return nil, fmt.Errorf("kubernetes: %w: unknown mode %q", render.ErrInvalid, o.Mode)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.Burst == 0 {
		// One Put is about twenty requests, and its rollout wait polls:
		// client-go's default of 5 per second would make the limiter,
		// not the cluster, the slow part.
		cfg.QPS, cfg.Burst = 50, 100
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	d := &Driver{dyn: dyn, o: o, key: o.SecretHashKey, log: o.Logger, poll: o.PollInterval}
	if d.key == nil {
		d.key = deriveKey(cfg, o.Render.Namespace)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.poll <= 0 {
		d.poll = 250 * time.Millisecond
	}
	return d, nil
}

func deriveKey(cfg *rest.Config, ns string) []byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte("ferry kubernetes secret hashes v1"), []byte(cfg.Host), []byte(ns), []byte(cfg.BearerToken), cfg.KeyData} {
		h.Write(part)
		h.Write([]byte{0})
	}
	if cfg.KeyFile != "" {
		if b, err := os.ReadFile(cfg.KeyFile); err == nil {
			h.Write(b)
		}
	}
	return api.SecretHashKey(string(h.Sum(nil)))
}

func (d *Driver) ri(kind string) dynamic.ResourceInterface {
	return d.dyn.Resource(resource(kind)).Namespace(d.o.Render.Namespace)
}

// apiErr wraps err from the API: transient failures (the server
// unreachable, timeouts, throttling, 5xx) also wrap targets.ErrUnavailable.
func apiErr(what string, err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
		return fmt.Errorf("kubernetes: %s: %w: %w", what, targets.ErrUnavailable, err)
	}
	return fmt.Errorf("kubernetes: %s: %w", what, err)
}

// RecordsOwners implements targets.OwnerRecorder: the owner is the
// ferry.dev/owner annotation (and its hash the label) of every object.
func (d *Driver) RecordsOwners() bool { return true }

// SecretHashes implements targets.SecretHasher: the keyed hashes of the
// values, as Observe reports them from the app's Secret.
func (d *Driver) SecretHashes(app string, secrets map[string]string) map[string]string {
	return api.SecretHashes(d.key, app, secrets)
}

// spin reports whether the driver is in mode spinapp.
func (d *Driver) spin() bool { return d.o.Mode == ModeSpinApp }

// workload is the kind of an app's main object: the one Observe lists and
// whose status is the app's health.
func (d *Driver) workload() string {
	if d.spin() {
		return "SpinApp"
	}
	return "Deployment"
}

// kinds are the kinds of the app's inventory.
func (d *Driver) kinds() []string {
	if d.spin() {
		return render.SpinKinds()
	}
	return render.Kinds()
}

// render renders want, keeping the owner recorded on the cluster when
// want names none. In mode spinapp it first checks the cluster and the
// app (checkSpin) and makes the app's Spin image, pushed when push is set.
func (d *Driver) render(ctx context.Context, want targets.DesiredApp, push bool) ([]render.Object, error) {
	if d.spin() {
		if err := d.checkSpin(ctx, want); err != nil {
			return nil, err
		}
	}
	if want.Owner == "" {
		live, err := d.ri(d.workload()).Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case err == nil && isOurs(live):
			want.Owner = live.GetAnnotations()[render.AnnotationOwner]
		case err != nil && !apierrors.IsNotFound(err):
			return nil, apiErr("get "+d.workload()+" "+want.Name, err)
		}
	}
	if d.spin() {
		return d.renderSpin(ctx, want, push)
	}
	ro := d.o.Render
	keys, err := d.trustKeys()
	if err != nil {
		return nil, err
	}
	ro.TrustKeys = keys
	objs, err := render.App(want, ro)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return objs, nil
}

// trustKeys are the PEM public keys the pods get, by file name: read
// from Options.TrustKeyFiles now, or Render.TrustKeys without them.
func (d *Driver) trustKeys() (map[string][]byte, error) {
	if len(d.o.TrustKeyFiles) == 0 {
		return d.o.Render.TrustKeys, nil
	}
	keys := map[string][]byte{}
	for _, p := range d.o.TrustKeyFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: trust key: %w", err)
		}
		name := filepath.Base(p)
		if _, dup := keys[name]; dup {
			return nil, fmt.Errorf("kubernetes: %w: two trust keys are named %s; the pods mount them in one directory", render.ErrInvalid, name)
		}
		keys[name] = b
	}
	return keys, nil
}

// Check implements targets.Checker: in mode host with Options.Verify, it
// verifies want's artifact against the trust keys the pods get. An
// artifact they would refuse is an *UntrustedError; an artifact that
// cannot be checked (the registry is down) another error. Nil in mode
// spinapp (SpinKube verifies nothing) and without Options.Verify.
func (d *Driver) Check(ctx context.Context, want targets.DesiredApp) error {
	if d.spin() || d.o.Verify == nil {
		return nil
	}
	keys, err := d.trustKeys()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil // render refuses a host-mode app without trust keys
	}
	names := slices.Sorted(maps.Keys(keys))
	if err := d.o.Verify.VerifyArtifact(ctx, want.Ref, keys); err != nil {
		if errors.Is(err, ErrUntrusted) {
			return &UntrustedError{App: want.Name, Ref: want.Ref, Keys: names, Err: err}
		}
		return fmt.Errorf("kubernetes: app %s: cannot verify %s against the trust keys [%s]: %w", want.Name, want.Ref, strings.Join(names, ", "), err)
	}
	return nil
}

// isOurs reports whether u carries ferry's labels and was applied by
// ferry: then ferry repairs its fields with force.
func isOurs(u *unstructured.Unstructured) bool {
	l := u.GetLabels()
	if l[render.LabelManagedBy] != render.ManagedBy {
		return false
	}
	if _, ok := l[render.LabelOwner]; !ok {
		return false
	}
	return ferryFields(u) != nil
}

// Put implements targets.Target: apply, prune, wait for the rollout.
func (d *Driver) Put(ctx context.Context, want targets.DesiredApp) (targets.PutResult, error) {
	d.snaps.drop()
	defer d.snaps.drop()
	if err := d.Check(ctx, want); err != nil {
		return targets.PutResult{}, fmt.Errorf("%w (nothing was applied)", err)
	}
	objs, err := d.render(ctx, want, true)
	if err != nil {
		return targets.PutResult{}, err
	}
	keep := map[string]bool{}
	for _, o := range objs {
		keep[o.Kind+"/"+o.Name] = true
		if o.Kind == "Deployment" && d.o.Render.Autoscaling != nil && !d.spin() {
			if err := d.handOverReplicas(ctx, o); err != nil {
				return targets.PutResult{}, err
			}
		}
		if _, err := d.apply(ctx, o, false); err != nil {
			return targets.PutResult{}, err
		}
	}
	if err := d.prune(ctx, want.Name, keep); err != nil {
		return targets.PutResult{}, err
	}
	if d.spin() {
		return d.waitSpin(ctx, want.Name)
	}
	return d.wait(ctx, want.Name)
}

// apply server-side applies o (a dry run when dryRun is set) and returns
// the result. Objects ferry already manages are applied with force.
func (d *Driver) apply(ctx context.Context, o render.Object, dryRun bool) (*unstructured.Unstructured, error) {
	force := d.o.ForceConflicts || dryRun
	if !force {
		live, err := d.ri(o.Kind).Get(ctx, o.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			force = isOurs(live)
		case !apierrors.IsNotFound(err):
			return nil, apiErr("get "+o.ID(), err)
		}
	}
	u, err := withApplied(o)
	if err != nil {
		return nil, err
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %s: %w", o.ID(), err)
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := d.ri(o.Kind).Patch(ctx, o.Name, types.ApplyPatchType, data, opts)
	if err != nil {
		if apierrors.IsConflict(err) {
			return nil, conflictError(o.ID(), err)
		}
		return nil, apiErr("apply "+o.ID(), err)
	}
	d.log.Debug("applied", "object", o.ID(), "dry_run", dryRun, "force", force)
	return out, nil
}

// HandoverManager is the field manager that holds a Deployment's
// spec.replicas between ferry letting go of it (autoscaling was turned on)
// and the HorizontalPodAutoscaler taking it.
const HandoverManager = "ferry-handover-to-hpa"

// handOverReplicas keeps the replica count of Deployment o when ferry stops
// setting it (autoscaling turned on): were ferry simply to leave
// spec.replicas out, server-side apply would remove the field it alone
// owns and the Deployment would drop to the default of one replica until
// the autoscaler scales it again. So the live count is first applied by
// HandoverManager, which keeps it until the autoscaler takes it over
// (Kubernetes' documented way to transfer ownership). A v1.37 apiserver
// was seen keeping the count even without the handover (the e2e test
// checks the outcome, not which of the two kept it); the handover is for
// the servers that follow the documentation.
func (d *Driver) handOverReplicas(ctx context.Context, o render.Object) error {
	live, err := d.ri("Deployment").Get(ctx, o.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return apiErr("get "+o.ID(), err)
	}
	set := ferryFields(live)
	spec, _ := set["f:spec"].(map[string]any)
	if _, owned := spec["f:replicas"]; !owned || !isOurs(live) {
		return nil
	}
	n, found, _ := unstructured.NestedInt64(live.Object, "spec", "replicas")
	if !found {
		return nil
	}
	patch := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": o.Name, "namespace": d.o.Render.Namespace},
		"spec":     map[string]any{"replicas": n},
	}
	data, err := (&unstructured.Unstructured{Object: patch}).MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	if _, err := d.ri("Deployment").Patch(ctx, o.Name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: HandoverManager, Force: &force}); err != nil {
		return apiErr("hand spec.replicas of "+o.ID()+" over to the autoscaler", err)
	}
	d.log.Debug("handed replicas over", "object", o.ID(), "replicas", n)
	return nil
}

// conflictError turns an apply conflict into a *ConflictError.
func conflictError(object string, err error) error {
	ce := &ConflictError{Object: object}
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Details != nil {
		for _, c := range st.Status().Details.Causes {
			if c.Type != metav1.CauseTypeFieldManagerConflict {
				continue
			}
			m := c.Message
			if i := strings.IndexByte(m, '"'); i >= 0 {
				if j := strings.IndexByte(m[i+1:], '"'); j >= 0 {
					m = m[i+1 : i+1+j]
				}
			}
			ce.Conflicts = append(ce.Conflicts, Conflict{Manager: m, Field: c.Field})
		}
	}
	return ce
}

// inventory lists the objects ferry owns for app, by kind.
func (d *Driver) inventory(ctx context.Context, app string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, kind := range d.kinds() {
		list, err := d.ri(kind).List(ctx, metav1.ListOptions{LabelSelector: render.InventorySelector(app)})
		if err != nil && kind == "SpinApp" && apierrors.IsNotFound(err) {
			continue // the cluster does not serve SpinApps: there are none
		}
		if err != nil {
			return nil, apiErr("list "+kind, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			u.SetKind(kind)
			out = append(out, u)
		}
	}
	return out, nil
}

// prune deletes the objects of app's inventory that keep ("Kind/name")
// does not hold.
func (d *Driver) prune(ctx context.Context, app string, keep map[string]bool) error {
	inv, err := d.inventory(ctx, app)
	if err != nil {
		return err
	}
	for _, u := range inv {
		if keep[u.GetKind()+"/"+u.GetName()] {
			continue
		}
		if err := d.deleteObject(ctx, u); err != nil {
			return err
		}
		d.log.Info("pruned", "object", u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName())
	}
	return nil
}

func (d *Driver) deleteObject(ctx context.Context, u *unstructured.Unstructured) error {
	bg := metav1.DeletePropagationBackground
	uid := u.GetUID()
	err := d.ri(u.GetKind()).Delete(ctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return apiErr("delete "+u.GetKind()+" "+u.GetName(), err)
	}
	return nil
}

// Delete implements targets.Target: it deletes app's inventory (the objects
// with the app's name, ferry's managed-by label and an owner label), and
// nothing else.
func (d *Driver) Delete(ctx context.Context, name string) error {
	d.snaps.drop()
	defer d.snaps.drop()
	inv, err := d.inventory(ctx, name)
	if err != nil {
		return err
	}
	for _, u := range inv {
		if err := d.deleteObject(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// wait waits for app's Deployment to finish its rollout.
func (d *Driver) wait(ctx context.Context, app string) (targets.PutResult, error) {
	var limit <-chan time.Time
	if d.o.RolloutWait > 0 {
		t := time.NewTimer(d.o.RolloutWait)
		defer t.Stop()
		limit = t.C
	}
	tick := time.NewTicker(d.poll)
	defer tick.Stop()
	for {
		u, err := d.ri("Deployment").Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return targets.PutResult{}, fmt.Errorf("kubernetes: Deployment %s: %w: %w", app, targets.ErrUnhealthy, ctx.Err())
			}
			return targets.PutResult{}, apiErr("get Deployment "+app, err)
		}
		dep, err := toDeployment(u)
		if err != nil {
			return targets.PutResult{}, err
		}
		phase, msg := Phase(dep)
		switch phase {
		case targets.PhaseReady:
			return targets.PutResult{Phase: targets.PhaseReady}, nil
		case targets.PhaseFailed:
			return targets.PutResult{}, fmt.Errorf("kubernetes: Deployment %s: %w: %s%s", app, targets.ErrUnhealthy, msg, d.podReasons(ctx, app))
		}
		select {
		case <-ctx.Done():
			return targets.PutResult{}, fmt.Errorf("kubernetes: Deployment %s: %w: %s (%w)%s", app, targets.ErrUnhealthy, msg, ctx.Err(), d.podReasons(ctx, app))
		case <-limit:
			return targets.PutResult{Phase: targets.PhaseProgressing, Message: msg}, nil
		case <-tick.C:
		}
	}
}

// maxPodReasons bounds how many pods podReasons describes.
const maxPodReasons = 3

// podReasons says why app's pods are not ready, for a rollout that failed
// or timed out: each unready pod's false conditions and its containers'
// waiting or terminated reasons with their messages (a readiness probe
// answering "signature: ..." shows here as the kubelet reports it). Empty
// when it cannot tell; it asks the apiserver with a short deadline of its
// own, since ctx may have ended.
func (d *Driver) podReasons(ctx context.Context, app string) string {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	list, err := d.ri("Pod").List(lctx, metav1.ListOptions{
		LabelSelector: render.LabelName + "=" + app + "," + render.LabelManagedBy + "=" + render.ManagedBy,
	})
	if err != nil || len(list.Items) == 0 {
		return ""
	}
	var out []string
	for i := range list.Items {
		if len(out) == maxPodReasons {
			out = append(out, fmt.Sprintf("and %d more", len(list.Items)-i))
			break
		}
		pod := &corev1.Pod{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, pod); err != nil {
			continue
		}
		if why := podReason(pod); why != "" {
			out = append(out, "pod "+pod.Name+": "+why)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, "; ")
}

// podReason says why pod is not ready, or "" when it is.
func podReason(pod *corev1.Pod) string {
	var parts []string
	ready := false
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
		if c.Status != corev1.ConditionTrue && (c.Reason != "" || c.Message != "") {
			parts = append(parts, fmt.Sprintf("%s %s: %s", c.Type, c.Reason, c.Message))
		}
	}
	if ready {
		return ""
	}
	for _, cs := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		switch st := cs.State; {
		case st.Waiting != nil:
			parts = append(parts, fmt.Sprintf("container %s waiting: %s %s", cs.Name, st.Waiting.Reason, st.Waiting.Message))
		case st.Terminated != nil:
			parts = append(parts, fmt.Sprintf("container %s terminated: %s (exit %d) %s", cs.Name, st.Terminated.Reason, st.Terminated.ExitCode, st.Terminated.Message))
		case !cs.Ready:
			parts = append(parts, fmt.Sprintf("container %s running, not ready (restarts %d)", cs.Name, cs.RestartCount))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "phase "+string(pod.Status.Phase))
	}
	return strings.TrimSpace(strings.Join(parts, ", "))
}

func toDeployment(u *unstructured.Unstructured) (*appsv1.Deployment, error) {
	dep := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, dep); err != nil {
		return nil, fmt.Errorf("kubernetes: Deployment %s: %w", u.GetName(), err)
	}
	return dep, nil
}

// Phase returns the rollout phase of dep from its status, in the manner of
// kstatus, and a short phrase saying what it waits for (empty when ready).
// A rollout under way (a generation the controller has not observed yet,
// replicas not yet updated or available) is PhaseProgressing; one past its
// progress deadline, or whose pods cannot be created, is PhaseFailed; a
// finished rollout that lost available replicas is PhaseDegraded.
func Phase(dep *appsv1.Deployment) (targets.Phase, string) {
	want := int32(1)
	if dep.Spec.Replicas != nil {
		want = *dep.Spec.Replicas
	}
	st := dep.Status
	if dep.DeletionTimestamp != nil {
		return targets.PhaseDegraded, "being deleted"
	}
	if st.ObservedGeneration < dep.Generation {
		return targets.PhaseProgressing, fmt.Sprintf("waiting for the Deployment controller to observe generation %d", dep.Generation)
	}
	var progressing *appsv1.DeploymentCondition
	for i, c := range st.Conditions {
		switch c.Type {
		case appsv1.DeploymentProgressing:
			progressing = &st.Conditions[i]
		case appsv1.DeploymentReplicaFailure:
			if c.Status == "True" {
				return targets.PhaseFailed, "pods cannot be created: " + c.Message
			}
		}
	}
	if progressing != nil && progressing.Reason == "ProgressDeadlineExceeded" {
		return targets.PhaseFailed, "the rollout exceeded its progress deadline: " + progressing.Message
	}
	complete := progressing != nil && progressing.Status == "True" && progressing.Reason == "NewReplicaSetAvailable"
	switch {
	case st.UpdatedReplicas < want:
		return targets.PhaseProgressing, fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return targets.PhaseProgressing, fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas && complete:
		return targets.PhaseDegraded, fmt.Sprintf("%d of %d replicas available", st.AvailableReplicas, st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		return targets.PhaseProgressing, fmt.Sprintf("%d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas)
	}
	return targets.PhaseReady, ""
}

// Observe implements targets.Target: every Deployment of the namespace,
// ferry's as managed apps and the others as unmanaged ones.
func (d *Driver) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	if d.spin() {
		if _, err := d.refreshSnapshot(ctx, nil); err != nil {
			return nil, err
		}
		return d.observeSpin(ctx)
	}
	// Every Deployment (ferry's and others', which are reported
	// unmanaged); ferry's objects of the other kinds come with the
	// snapshot Diff reads, so nothing is listed twice.
	list, err := d.ri("Deployment").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, apiErr("list Deployments", err)
	}
	snap, err := d.refreshSnapshot(ctx, list)
	if err != nil {
		return nil, err
	}
	byName := map[string]*unstructured.Unstructured{} // ferry's Secrets with an owner
	for _, u := range snap.objs {
		if u.GetKind() != "Secret" {
			continue
		}
		if _, owned := u.GetLabels()[render.LabelOwner]; owned {
			byName[u.GetName()] = u
		}
	}
	var out []targets.ObservedApp
	for i := range list.Items {
		u := &list.Items[i]
		o, err := d.observedDeployment(u, byName[render.SecretsName(u.GetName())])
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// observedDeployment is what Observe reports for Deployment u, with
// secret its app's Secret (nil: none).
func (d *Driver) observedDeployment(u, secret *unstructured.Unstructured) (targets.ObservedApp, error) {
	dep, err := toDeployment(u)
	if err != nil {
		return targets.ObservedApp{}, err
	}
	phase, msg := Phase(dep)
	o := targets.ObservedApp{
		Name:    dep.Name,
		Ref:     dep.Annotations[render.AnnotationRef],
		Digest:  dep.Spec.Template.Annotations[render.AnnotationDigest],
		Phase:   phase,
		Status:  string(phase),
		Healthy: phase == targets.PhaseReady,
		Message: msg,
	}
	_, owned := dep.Labels[render.LabelOwner]
	if dep.Labels[render.LabelManagedBy] == render.ManagedBy && owned && dep.Labels[render.LabelName] == dep.Name {
		o.Managed = true
		o.Owner = dep.Annotations[render.AnnotationOwner]
		o.SecretHashes = d.observedSecretHashes(dep.Name, secret)
	}
	return o, nil
}

// ObserveApp implements targets.AppObserver: the app's Deployment (or
// SpinApp) and its Secret, read by name, reported as Observe would.
func (d *Driver) ObserveApp(ctx context.Context, name string) (*targets.ObservedApp, error) {
	kind := "Deployment"
	if d.spin() {
		kind = "SpinApp"
	}
	u, err := d.ri(kind).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if d.spin() {
			// As Observe: a cluster that serves no SpinApps is an
			// ErrSpinKube error, not "nothing runs".
			if _, lerr := d.ri("SpinApp").List(ctx, metav1.ListOptions{Limit: 1}); lerr != nil {
				return nil, spinListErr(lerr)
			}
		}
		return nil, nil
	case err != nil:
		return nil, apiErr("get "+kind+" "+name, err)
	}
	secret, err := d.ri("Secret").Get(ctx, render.SecretsName(name), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		secret = nil
	case err != nil:
		return nil, apiErr("get Secret "+render.SecretsName(name), err)
	case secret.GetLabels()[render.LabelManagedBy] != render.ManagedBy:
		secret = nil // not ferry's (Observe lists only ferry's owned Secrets)
	default:
		if _, owned := secret.GetLabels()[render.LabelOwner]; !owned {
			secret = nil
		}
	}
	var o targets.ObservedApp
	if d.spin() {
		o = d.observedSpinApp(u, secret)
	} else if o, err = d.observedDeployment(u, secret); err != nil {
		return nil, err
	}
	return &o, nil
}

// observedSecretHashes hashes the values of app's secret Secret u (one
// of ferry's; nil when there is none: an empty map).
func (d *Driver) observedSecretHashes(app string, u *unstructured.Unstructured) map[string]string {
	vals := map[string]string{}
	if u != nil && u.GetLabels()[render.LabelName] == app {
		data, _, _ := unstructured.NestedStringMap(u.Object, "data")
		for k, b64 := range data {
			if v, err := decodeBase64(b64); err == nil {
				vals[k] = v
			}
		}
	}
	return d.SecretHashes(app, vals)
}

// Diff implements targets.Differ: for each object of want, a dry-run apply
// compared with the live object on the fields ferry manages, plus the
// objects of the inventory that want no longer has.
func (d *Driver) Diff(ctx context.Context, want targets.DesiredApp) ([]targets.ObjectDiff, error) {
	objs, err := d.render(ctx, want, false)
	if err != nil {
		return nil, err
	}
	// One listing of ferry's objects serves every app of a plan; an
	// object ferry applied exactly as it would now, with every field it
	// sets unchanged, needs no request at all. Anything else is asked of
	// the server (a dry-run apply), which is always right.
	snap, err := d.snapshotFor(ctx, want.Name)
	if err != nil {
		return nil, err
	}
	var out []targets.ObjectDiff
	keep := map[string]bool{}
	for _, o := range objs {
		keep[o.Kind+"/"+o.Name] = true
		live := snap.objs[o.Kind+"/"+o.Name]
		if live == nil {
			// Not ferry's, or not there: ask.
			got, err := d.ri(o.Kind).Get(ctx, o.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				out = append(out, targets.ObjectDiff{Object: o.ID(), Change: "create"})
				continue
			}
			if err != nil {
				return nil, apiErr("get "+o.ID(), err)
			}
			live = got
		} else if !isSecretValues(o) && unchanged(o, live) {
			continue
		}
		var fields []string
		if o.Kind == "Secret" && o.Name == render.SecretsName(want.Name) {
			// Values are compared by hash (SecretHashes), never here;
			// only the metadata ferry sets is.
			if !maps.Equal(o.U.GetLabels(), pick(live.GetLabels(), o.U.GetLabels())) {
				fields = append(fields, "metadata.labels")
			}
			if !maps.Equal(o.U.GetAnnotations(), pick(live.GetAnnotations(), o.U.GetAnnotations())) {
				fields = append(fields, "metadata.annotations")
			}
		} else {
			dry, err := d.apply(ctx, o, true)
			if err != nil {
				return nil, err
			}
			fields = Drift(dry, live)
		}
		if len(fields) > 0 {
			out = append(out, targets.ObjectDiff{Object: o.ID(), Change: "update", Fields: fields})
		}
	}
	inv, err := snap.inventoryOf(want.Name)
	if err != nil {
		return nil, err
	}
	for _, u := range inv {
		if !keep[u.GetKind()+"/"+u.GetName()] {
			out = append(out, targets.ObjectDiff{Object: u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName(), Change: "delete"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out, nil
}

// pick returns the entries of m whose keys like has.
func pick(m, like map[string]string) map[string]string {
	out := map[string]string{}
	for k := range like {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
