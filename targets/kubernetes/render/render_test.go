package render_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/kubernetes/render"
)

const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func str(s string) *string { return &s }

func app() targets.DesiredApp {
	return targets.DesiredApp{
		Name: "shop", Ref: "registry.example.com/shop@" + digest, Digest: digest, Owner: "git@example.com:acme/spec.git#prod",
		App: deploy.App{Name: "shop", Variables: map[string]deploy.Variable{
			"greeting": {Default: str("hello")}, "color": {Default: str("blue")}, "token": {Secret: true}, "unset": {},
		}},
		Secrets: map[string]string{"token": "s3cret"},
	}
}

func opts() render.Options {
	return render.Options{Namespace: "apps", Image: "ghcr.io/ferry-wasm/ferry-host:v1", TrustKeys: map[string][]byte{"cosign.pub": []byte("PEM")}}
}

func from[T any](t *testing.T, o render.Object) *T {
	t.Helper()
	v := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.U.Object, v); err != nil {
		t.Fatalf("%s: %v", o.ID(), err)
	}
	return v
}

func byKind(objs []render.Object, kind, name string) (render.Object, bool) {
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return render.Object{}, false
}

// TestApp: the objects of the contract, their labels, and how each
// option shows in them.
func TestApp(t *testing.T) {
	full := opts()
	full.Replicas = 5 // ignored: autoscaling owns the count
	full.CPU, full.Memory = "250m", "128Mi"
	full.NodeSelector = map[string]string{"kubernetes.io/arch": "arm64"}
	full.Tolerations = []render.Toleration{{Key: "dedicated", Operator: "Equal", Value: "wasm", Effect: "NoSchedule"}, {Operator: "Exists"}}
	full.ImagePullSecrets = []string{"ghcr-pull"}
	full.Autoscaling = &render.Autoscaling{Min: 2, Max: 10, CPUPercent: 70}
	three := opts()
	three.Replicas = 3

	tests := []struct {
		name  string
		opts  render.Options
		kinds []string
		check func(t *testing.T, objs []render.Object, d *appsv1.Deployment)
	}{
		{name: "defaults", opts: opts(), kinds: []string{"ConfigMap/shop-config", "Secret/shop-secrets", "Secret/shop-trust", "Service/shop", "Deployment/shop"},
			check: func(t *testing.T, objs []render.Object, d *appsv1.Deployment) {
				if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
					t.Errorf("replicas = %v, want 1", d.Spec.Replicas)
				}
				c := d.Spec.Template.Spec.Containers[0]
				if len(c.Resources.Requests) != 0 || len(c.Resources.Limits) != 0 || len(c.Env) != 2 {
					t.Errorf("resources %v, env %v; want no resources and HOME, XDG_CACHE_HOME", c.Resources, c.Env)
				}
				p := d.Spec.Template.Spec
				if p.NodeSelector != nil || p.Tolerations != nil || p.ImagePullSecrets != nil {
					t.Errorf("pod spec has scheduling options: %+v", p)
				}
			}},
		{name: "replicas", opts: three, kinds: []string{"ConfigMap/shop-config", "Secret/shop-secrets", "Secret/shop-trust", "Service/shop", "Deployment/shop"},
			check: func(t *testing.T, objs []render.Object, d *appsv1.Deployment) {
				if *d.Spec.Replicas != 3 {
					t.Errorf("replicas = %d, want 3", *d.Spec.Replicas)
				}
			}},
		{name: "every option", opts: full, kinds: []string{"ConfigMap/shop-config", "Secret/shop-secrets", "Secret/shop-trust", "Service/shop", "Deployment/shop", "HorizontalPodAutoscaler/shop"},
			check: func(t *testing.T, objs []render.Object, d *appsv1.Deployment) {
				if d.Spec.Replicas != nil {
					t.Errorf("replicas = %d; with autoscaling the Deployment must leave it to the autoscaler", *d.Spec.Replicas)
				}
				if _, set := objs[4].U.Object["spec"].(map[string]any)["replicas"]; set {
					t.Error("spec.replicas is in the applied object")
				}
				c := d.Spec.Template.Spec.Containers[0]
				want := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("128Mi")}
				if !c.Resources.Requests.Cpu().Equal(want[corev1.ResourceCPU]) || !c.Resources.Limits.Memory().Equal(want[corev1.ResourceMemory]) ||
					!c.Resources.Limits.Cpu().Equal(want[corev1.ResourceCPU]) || !c.Resources.Requests.Memory().Equal(want[corev1.ResourceMemory]) {
					t.Errorf("resources = %v, want requests = limits = %v", c.Resources, want)
				}
				if len(c.Env) != 3 || c.Env[2].Name != "GOMEMLIMIT" || c.Env[2].Value != "134217728" {
					t.Errorf("env = %+v, want GOMEMLIMIT=134217728 (128Mi) after HOME and XDG_CACHE_HOME", c.Env)
				}
				p := d.Spec.Template.Spec
				if diff := cmp.Diff(map[string]string{"kubernetes.io/arch": "arm64"}, p.NodeSelector); diff != "" {
					t.Errorf("node selector: %s", diff)
				}
				wantTol := []corev1.Toleration{{Key: "dedicated", Operator: "Equal", Value: "wasm", Effect: "NoSchedule"}, {Operator: "Exists"}}
				if diff := cmp.Diff(wantTol, p.Tolerations); diff != "" {
					t.Errorf("tolerations: %s", diff)
				}
				if len(p.ImagePullSecrets) != 1 || p.ImagePullSecrets[0].Name != "ghcr-pull" {
					t.Errorf("image pull secrets = %v", p.ImagePullSecrets)
				}
				hpa := from[autoscalingv2.HorizontalPodAutoscaler](t, objs[5])
				if hpa.Spec.ScaleTargetRef != (autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "shop"}) ||
					*hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas != 10 || len(hpa.Spec.Metrics) != 1 ||
					hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU || *hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
					t.Errorf("HPA spec = %+v", hpa.Spec)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render.App(app(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.Kind+"/"+o.Name)
				if o.U.GetNamespace() != "apps" || o.U.GetKind() != o.Kind || o.U.GetName() != o.Name {
					t.Errorf("%s: namespace %q kind %q name %q", o.ID(), o.U.GetNamespace(), o.U.GetKind(), o.U.GetName())
				}
				wantLabels := map[string]string{"app.kubernetes.io/managed-by": "ferry", "app.kubernetes.io/name": "shop", "ferry.dev/owner": render.OwnerHash("git@example.com:acme/spec.git#prod")}
				if diff := cmp.Diff(wantLabels, o.U.GetLabels()); diff != "" {
					t.Errorf("%s labels (-want +got):\n%s", o.ID(), diff)
				}
				if got := o.U.GetAnnotations()["ferry.dev/owner"]; got != "git@example.com:acme/spec.git#prod" {
					t.Errorf("%s owner annotation = %q", o.ID(), got)
				}
				if _, has := o.U.Object["status"]; has {
					t.Errorf("%s has a status", o.ID())
				}
			}
			if diff := cmp.Diff(tc.kinds, kinds); diff != "" {
				t.Fatalf("objects (-want +got):\n%s", diff)
			}
			d := from[appsv1.Deployment](t, objs[4])
			checkContract(t, objs, d)
			tc.check(t, objs, d)
		})
	}
}

// checkContract checks what every app's objects have, whatever the
// options: the CONTRACT's args, probes, mounts, ports and data.
func checkContract(t *testing.T, objs []render.Object, d *appsv1.Deployment) {
	t.Helper()
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("containers = %d", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	wantArgs := "app --ref registry.example.com/shop@" + digest + " --trust-key /etc/ferry/trust --config-dir /etc/ferry/config --secrets-dir /etc/ferry/secrets --listen :8080 --health-listen :8081 --state-dir /var/lib/ferry"
	if c.Name != "ferry-host" || c.Image != "ghcr.io/ferry-wasm/ferry-host:v1" || strings.Join(c.Args, " ") != wantArgs {
		t.Errorf("container %s image %s args %q", c.Name, c.Image, strings.Join(c.Args, " "))
	}
	if g := c.ReadinessProbe.HTTPGet; g.Path != "/readyz" || g.Port.IntValue() != 8081 {
		t.Errorf("readiness probe %+v", g)
	}
	if g := c.LivenessProbe.HTTPGet; g.Path != "/livez" || g.Port.IntValue() != 8081 {
		t.Errorf("liveness probe %+v", g)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if diff := cmp.Diff(map[string]string{"trust": "/etc/ferry/trust", "config": "/etc/ferry/config", "secrets": "/etc/ferry/secrets", "state": "/var/lib/ferry", "tmp": "/tmp"}, mounts); diff != "" {
		t.Errorf("mounts: %s", diff)
	}
	vols := map[string]string{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		switch {
		case v.Secret != nil:
			vols[v.Name] = "secret " + v.Secret.SecretName
		case v.ConfigMap != nil:
			vols[v.Name] = "configmap " + v.ConfigMap.Name
		case v.EmptyDir != nil:
			vols[v.Name] = "emptyDir"
		}
	}
	if diff := cmp.Diff(map[string]string{"trust": "secret shop-trust", "config": "configmap shop-config", "secrets": "secret shop-secrets", "state": "emptyDir", "tmp": "emptyDir"}, vols); diff != "" {
		t.Errorf("volumes: %s", diff)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["HOME"] != "/tmp" || env["XDG_CACHE_HOME"] != "/var/lib/ferry/cache" {
		t.Errorf("env %v: HOME and the cache must be writable with a read-only root", env)
	}
	// The "restricted" Pod Security Standard.
	psc, sc := d.Spec.Template.Spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || *psc.RunAsUser != 65532 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		sc == nil || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("security contexts: pod %+v, container %+v", psc, sc)
	}
	if got := d.Spec.Template.Annotations["ferry.dev/digest"]; got != digest {
		t.Errorf("pod template digest annotation = %q", got)
	}
	if diff := cmp.Diff(map[string]string{"app.kubernetes.io/managed-by": "ferry", "app.kubernetes.io/name": "shop"}, d.Spec.Selector.MatchLabels); diff != "" {
		t.Errorf("selector: %s", diff)
	}
	svc := from[corev1.Service](t, objs[3])
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http" || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 {
		t.Errorf("service ports %+v", svc.Spec.Ports)
	}
	if diff := cmp.Diff(d.Spec.Selector.MatchLabels, svc.Spec.Selector); diff != "" {
		t.Errorf("service selector differs from the Deployment's: %s", diff)
	}
	cm := from[corev1.ConfigMap](t, objs[0])
	if diff := cmp.Diff(map[string]string{"greeting": "hello", "color": "blue"}, cm.Data); diff != "" {
		t.Errorf("config map data (only non-secret variables with values): %s", diff)
	}
	sec := from[corev1.Secret](t, objs[1])
	if diff := cmp.Diff(map[string][]byte{"token": []byte("s3cret")}, sec.Data); diff != "" {
		t.Errorf("secret data: %s", diff)
	}
	trust := from[corev1.Secret](t, objs[2])
	if diff := cmp.Diff(map[string][]byte{"cosign.pub": []byte("PEM")}, trust.Data); diff != "" {
		t.Errorf("trust data: %s", diff)
	}
}

// TestAppInvalid: input that cannot be rendered is an ErrInvalid, not a
// broken object.
func TestAppInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(a *targets.DesiredApp, o *render.Options)
		want string
	}{
		{"no namespace", func(a *targets.DesiredApp, o *render.Options) { o.Namespace = "" }, "no namespace"},
		{"no image", func(a *targets.DesiredApp, o *render.Options) { o.Image = "" }, "no ferry-host image"},
		{"no trust keys", func(a *targets.DesiredApp, o *render.Options) { o.TrustKeys = nil }, "no trust keys"},
		{"no digest", func(a *targets.DesiredApp, o *render.Options) { a.Digest = "" }, "no artifact reference"},
		{"bad trust key name", func(a *targets.DesiredApp, o *render.Options) { o.TrustKeys = map[string][]byte{"my key.pub": nil} }, "not a Secret key"},
		{"bad quantity", func(a *targets.DesiredApp, o *render.Options) { o.CPU = "lots" }, "cpu"},
		{"max below min", func(a *targets.DesiredApp, o *render.Options) { o.Autoscaling = &render.Autoscaling{Min: 3, Max: 2} }, "below min"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, o := app(), opts()
			tc.edit(&a, &o)
			_, err := render.App(a, o)
			if !errors.Is(err, render.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}
