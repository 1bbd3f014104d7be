package render_test

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/targets/kubernetes/render"
)

const spinImage = "registry.example.com/shop@sha256:2222222222222222222222222222222222222222222222222222222222222222"

func TestSpinApp(t *testing.T) {
	want := app()
	want.App.Components = []deploy.Component{{Name: "web", Health: &deploy.Health{Path: "/ready"}}}
	objs, err := render.SpinApp(want, render.Options{Namespace: "apps", Replicas: 3, CPU: "0.5", Memory: "128Mi", ImagePullSecrets: []string{"pull"}}, spinImage)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].ID() != "Secret/apps/shop-secrets" || objs[1].ID() != "SpinApp/apps/shop" {
		t.Fatalf("objects %v", objs)
	}
	sa := objs[1].U
	get := func(path ...string) any {
		v, _, _ := unstructured.NestedFieldNoCopy(sa.Object, path...)
		return v
	}
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"apiVersion"}, "core.spinkube.dev/v1alpha1"},
		{[]string{"spec", "image"}, spinImage},
		{[]string{"spec", "executor"}, "containerd-shim-spin"},
		{[]string{"spec", "replicas"}, int64(3)},
		{[]string{"spec", "resources", "limits", "cpu"}, "500m"},
		{[]string{"spec", "resources", "requests", "memory"}, "128Mi"},
		{[]string{"spec", "checks", "readiness", "httpGet", "path"}, "/ready"},
		{[]string{"spec", "checks", "liveness", "httpGet", "path"}, "/ready"},
		{[]string{"metadata", "annotations", "ferry.dev/digest"}, digest},
		{[]string{"metadata", "labels", "app.kubernetes.io/managed-by"}, "ferry"},
	} {
		if got := get(c.path...); got != c.want {
			t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
		}
	}
	vars, _ := get("spec", "variables").([]any)
	// color and greeting inline (sorted), token from the Secret; unset
	// has no value and is not bound.
	if len(vars) != 3 {
		t.Fatalf("variables %v", vars)
	}
	if tok := vars[2].(map[string]any); tok["name"] != "token" || tok["value"] != nil ||
		tok["valueFrom"].(map[string]any)["secretKeyRef"].(map[string]any)["name"] != "shop-secrets" {
		t.Errorf("secret variable %v", tok)
	}
	b, _ := sa.MarshalJSON()
	if strings.Contains(string(b), "s3cret") {
		t.Error("the SpinApp holds the secret value")
	}

	// Autoscaling: no replicas, enableAutoscaling, an HPA on the
	// operator's Deployment.
	objs, err = render.SpinApp(want, render.Options{Namespace: "apps", Executor: "wasmtime", Autoscaling: &render.Autoscaling{Max: 4, CPUPercent: 70}}, spinImage)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 || objs[2].ID() != "HorizontalPodAutoscaler/apps/shop" {
		t.Fatalf("objects %v", objs)
	}
	spec := objs[1].U.Object["spec"].(map[string]any)
	if spec["enableAutoscaling"] != true || spec["replicas"] != nil || spec["executor"] != "wasmtime" {
		t.Errorf("autoscaling spec %v", spec)
	}
}

func TestSpinAppInvalid(t *testing.T) {
	reactor := app()
	reactor.App.Components = []deploy.Component{{Name: "web"}, {Name: "api", Executor: deploy.ExecutorReactor}}
	files := app()
	files.App.Components = []deploy.Component{{Name: "site", Files: []string{"static/"}}}
	for _, c := range []struct {
		name string
		err  string
		run  func() error
	}{
		{"reactor", `component "api" of app shop uses executor "reactor", which Spin cannot run`, func() error {
			_, err := render.SpinApp(reactor, render.Options{Namespace: "apps"}, spinImage)
			return err
		}},
		{"files", `component "site" of app shop declares files`, func() error {
			_, err := render.SpinApp(files, render.Options{Namespace: "apps"}, spinImage)
			return err
		}},
		{"no image", "app shop has no Spin image", func() error {
			_, err := render.SpinApp(app(), render.Options{Namespace: "apps"}, "")
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			if !errors.Is(err, render.ErrInvalid) || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
}
