package kubetest_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/ferry-wasm/ferry/internal/kubetest"
)

// TestClusterRunsDeployment starts the whole stack, applies a Deployment of
// two replicas server-side (field manager "ferry") onto the kwok Node and
// waits for 2/2 ready replicas, then applies SpinKube's CRDs server-side
// and waits for them to be Established and served.
func TestClusterRunsDeployment(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{Workloads: true})
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The kubeconfig file names the same server and works on its own.
	if b, err := os.ReadFile(c.Kubeconfig); err != nil || !strings.Contains(string(b), c.Server) {
		t.Fatalf("kubeconfig %s does not name %s: %v\n%s", c.Kubeconfig, c.Server, err, b)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != "v1.37.2" {
		t.Errorf("server version %q, want v1.37.2 (the build's -X ldflags)", v.GitVersion)
	}

	// A Deployment, server-side applied as kubectl --server-side and Flux do.
	labels := map[string]string{"app": "web"}
	dep := appsv1ac.Deployment("web", "default").
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(2).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(labels).
				WithSpec(corev1ac.PodSpec().
					WithNodeSelector(map[string]string{"type": "kwok"}).
					WithContainers(corev1ac.Container().
						WithName("web").
						WithImage("registry.invalid/ferry/web:1")))))
	applyStart := time.Now()
	got, err := cs.AppsV1().Deployments("default").Apply(ctx, dep, metav1.ApplyOptions{FieldManager: "ferry"})
	if err != nil {
		t.Fatalf("apply Deployment: %v", err)
	}
	managed := false
	for _, m := range got.ManagedFields {
		if m.Manager == "ferry" && m.Operation == metav1.ManagedFieldsOperationApply {
			managed = true
		}
	}
	if !managed {
		t.Errorf("Deployment's managedFields have no Apply entry of manager ferry: %+v", got.ManagedFields)
	}
	for {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get Deployment: %v", err)
		}
		if d.Status.ReadyReplicas == 2 && d.Status.AvailableReplicas == 2 && d.Status.ObservedGeneration == d.Generation {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Deployment web not 2/2 ready: status %+v", d.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("Deployment web 2/2 ready %v after apply (%v after Start began)",
		time.Since(applyStart).Round(time.Millisecond), (c.StartedIn + time.Since(applyStart)).Round(time.Millisecond))
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, p := range pods.Items {
		if p.Spec.NodeName != kubetest.NodeName {
			t.Errorf("pod %s on node %q, want %s", p.Name, p.Spec.NodeName, kubetest.NodeName)
		}
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running++
		}
	}
	if running != 2 {
		t.Errorf("%d pods of app=web Running, want 2", running)
	}

	// SpinKube's CRDs, server-side applied, Established and served.
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	files, err := filepath.Glob(filepath.Join("testdata", "spinkube", "*.yaml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("SpinKube CRDs in testdata/spinkube: %v %v, want 2 files", files, err)
	}
	var names []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var obj unstructured.Unstructured
		if err := obj.UnmarshalJSON(js); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := dyn.Resource(crdGVR).Patch(ctx, obj.GetName(), types.ApplyPatchType, js,
			metav1.PatchOptions{FieldManager: "ferry"}); err != nil {
			t.Fatalf("apply %s: %v", filepath.Base(f), err)
		}
		names = append(names, obj.GetName())
	}
	for _, name := range names {
		for {
			crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get CRD %s: %v", name, err)
			}
			if established(crd) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("CRD %s not Established: %v", name, crd.Object["status"])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Discovery catches up with an Established CRD on its own time (CI once
	// saw spinappexecutors served and spinapps not yet), so poll it, as
	// kubectl's discovery refresh does, until the deadline.
	want := []string{"spinapps", "spinapps/status", "spinappexecutors"}
	for {
		served := map[string]bool{}
		rl, err := cs.Discovery().ServerResourcesForGroupVersion("core.spinkube.dev/v1alpha1")
		if err == nil {
			for _, r := range rl.APIResources {
				served[r.Name] = true
			}
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(r string) bool { return served[r] })
		if len(missing) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("core.spinkube.dev/v1alpha1 does not serve %v (serves %v; discovery error: %v)", missing, served, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// established reports whether a CRD's Established condition is True.
func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
