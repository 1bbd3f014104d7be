package render

import (
	"fmt"
	"maps"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	autoscalingac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/targets"
)

// SpinKube's API (the spin-operator CRDs).
const (
	// SpinAPIVersion is the apiVersion of SpinApp and SpinAppExecutor.
	SpinAPIVersion = "core.spinkube.dev/v1alpha1"
	// DefaultExecutor is the SpinAppExecutor a SpinApp names when the
	// target names none: the one SpinKube's install creates.
	DefaultExecutor = "containerd-shim-spin"
)

// SpinKinds returns the kinds an app's objects may have in mode
// "spinapp", in apply order; the driver's inventory lists each.
func SpinKinds() []string {
	return []string{"Secret", "SpinApp", "HorizontalPodAutoscaler"}
}

// SpinApp renders the objects of want in mode "spinapp", in apply order:
// the Secret of secret values (SecretsName), the SpinApp running image
// (the Spin OCI app made of want's artifact) with o's executor
// (DefaultExecutor when empty), replicas and resources, and, with
// o.Autoscaling, a HorizontalPodAutoscaler on the Deployment the operator
// makes (named after the app) while the SpinApp sets enableAutoscaling.
// Non-secret variables are bound inline, secret ones from the Secret. The
// readiness and liveness checks are the first component health path. o's
// Image, TrustKeys, NodeSelector and Tolerations are not used (a SpinApp
// has no fields for the last two). Errors wrap ErrInvalid.
func SpinApp(want targets.DesiredApp, o Options, image string) ([]Object, error) {
	if err := checkSpin(want, o, image); err != nil {
		return nil, err
	}
	name, ns := want.Name, o.Namespace
	labels := Labels(name, want.Owner)
	ann := map[string]string{AnnotationOwner: want.Owner}

	var objs []Object
	sec := coreac.Secret(SecretsName(name), ns).WithLabels(labels).WithAnnotations(ann)
	sdata := map[string][]byte{}
	for k, v := range want.Secrets {
		sdata[k] = []byte(v)
	}
	sec.WithType(corev1.SecretTypeOpaque).WithData(sdata)
	u, err := toUnstructured(sec)
	if err != nil {
		return nil, fmt.Errorf("render Secret %s: %w", SecretsName(name), err)
	}
	objs = append(objs, Object{Kind: "Secret", Name: SecretsName(name), U: u})

	executor := o.Executor
	if executor == "" {
		executor = DefaultExecutor
	}
	spec := map[string]any{"image": image, "executor": executor}
	if o.Autoscaling != nil {
		spec["enableAutoscaling"] = true
	} else {
		spec["replicas"] = int64(max(o.Replicas, 1))
	}
	var vars []any
	for _, v := range sortedKeys(want.App.Variables) {
		vr := want.App.Variables[v]
		switch {
		case vr.Secret:
			if _, ok := want.Secrets[v]; ok {
				vars = append(vars, map[string]any{"name": v, "valueFrom": map[string]any{
					"secretKeyRef": map[string]any{"name": SecretsName(name), "key": v}}})
			}
		case vr.Default != nil:
			vars = append(vars, map[string]any{"name": v, "value": *vr.Default})
		}
	}
	if len(vars) > 0 {
		spec["variables"] = vars
	}
	if h := health(want.App); h != nil {
		probe := map[string]any{"httpGet": map[string]any{"path": h.Path}}
		if h.Interval > 0 {
			probe["periodSeconds"] = seconds(h.Interval)
		}
		if h.Timeout > 0 {
			probe["timeoutSeconds"] = seconds(h.Timeout)
		}
		if h.FailureThreshold > 0 {
			probe["failureThreshold"] = int64(h.FailureThreshold)
		}
		spec["checks"] = map[string]any{"readiness": probe, "liveness": maps.Clone(probe)}
	}
	if o.CPU != "" || o.Memory != "" {
		rl := map[string]any{}
		for rn, q := range map[string]string{"cpu": o.CPU, "memory": o.Memory} {
			if q == "" {
				continue
			}
			v, err := resource.ParseQuantity(q)
			if err != nil {
				return nil, fmt.Errorf("%w: %s %q: %v", ErrInvalid, rn, q, err)
			}
			rl[rn] = v.String()
		}
		spec["resources"] = map[string]any{"requests": rl, "limits": maps.Clone(rl)}
	}
	if len(o.ImagePullSecrets) > 0 {
		var ps []any
		for _, s := range o.ImagePullSecrets {
			ps = append(ps, map[string]any{"name": s})
		}
		spec["imagePullSecrets"] = ps
	}
	sa := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": SpinAPIVersion, "kind": "SpinApp",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": toAny(labels),
			"annotations": toAny(map[string]string{AnnotationOwner: want.Owner, AnnotationRef: want.Ref, AnnotationDigest: want.Digest})},
		"spec": spec,
	}}
	objs = append(objs, Object{Kind: "SpinApp", Name: name, U: sa})

	if a := o.Autoscaling; a != nil {
		hpa := autoscalingac.HorizontalPodAutoscaler(name, ns).WithLabels(labels).WithAnnotations(ann)
		hpa.WithSpec(autoscalingac.HorizontalPodAutoscalerSpec().
			WithScaleTargetRef(autoscalingac.CrossVersionObjectReference().WithAPIVersion("apps/v1").WithKind("Deployment").WithName(name)).
			WithMinReplicas(max(a.Min, 1)).WithMaxReplicas(a.Max).
			WithMetrics(autoscalingac.MetricSpec().WithType(autoscalingv2.ResourceMetricSourceType).WithResource(
				autoscalingac.ResourceMetricSource().WithName(corev1.ResourceCPU).WithTarget(
					autoscalingac.MetricTarget().WithType(autoscalingv2.UtilizationMetricType).WithAverageUtilization(a.CPUPercent)))))
		u, err := toUnstructured(hpa)
		if err != nil {
			return nil, fmt.Errorf("render HorizontalPodAutoscaler %s: %w", name, err)
		}
		objs = append(objs, Object{Kind: "HorizontalPodAutoscaler", Name: name, U: u})
	}
	return objs, nil
}

// CheckSpinApp reports what keeps app from running as a SpinApp: a
// component with ferry's reactor executor (Spin runs WAGI modules through
// its wagi executor, not ferry's reactor ABI), named. Errors wrap
// ErrInvalid.
func CheckSpinApp(app deploy.App) error {
	for _, c := range app.Components {
		if c.Executor == deploy.ExecutorReactor {
			return fmt.Errorf("%w: component %q of app %s uses executor \"reactor\", which Spin cannot run (Spin runs WAGI modules through its wagi executor, not ferry's reactor ABI); use executor \"wagi\" or a target in mode \"host\"", ErrInvalid, c.Name, app.Name)
		}
		if len(c.Files) > 0 {
			return fmt.Errorf("%w: component %q of app %s declares files, which ferry does not put in Spin apps yet; use a target in mode \"host\"", ErrInvalid, c.Name, app.Name)
		}
	}
	return nil
}

func checkSpin(want targets.DesiredApp, o Options, image string) error {
	switch {
	case want.Name == "":
		return fmt.Errorf("%w: the app has no name", ErrInvalid)
	case want.Ref == "" || want.Digest == "":
		return fmt.Errorf("%w: app %s has no artifact reference and digest", ErrInvalid, want.Name)
	case o.Namespace == "":
		return fmt.Errorf("%w: no namespace", ErrInvalid)
	case image == "":
		return fmt.Errorf("%w: app %s has no Spin image", ErrInvalid, want.Name)
	case o.Autoscaling != nil && o.Autoscaling.Max < max(o.Autoscaling.Min, 1):
		return fmt.Errorf("%w: autoscaling max %d is below min %d", ErrInvalid, o.Autoscaling.Max, max(o.Autoscaling.Min, 1))
	}
	if err := CheckSpinApp(want.App); err != nil {
		return err
	}
	for k := range want.Secrets {
		if !keyRE.MatchString(k) {
			return fmt.Errorf("%w: secret variable name %q is not a Secret key", ErrInvalid, k)
		}
	}
	return nil
}

// health returns the first health check of app's components, or nil.
func health(app deploy.App) *deploy.Health {
	for _, c := range app.Components {
		if c.Health != nil && c.Health.Path != "" {
			return c.Health
		}
	}
	return nil
}

func seconds(d deploy.Duration) int64 {
	return max(int64(time.Duration(d)/time.Second), 1)
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
