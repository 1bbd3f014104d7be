package driver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/kubernetes/driver"
	"github.com/ferry-wasm/ferry/targets/open"
)

// TestUntrustedArtifactSaysWhy: kwok fakes readiness, so a pod that
// refuses an untrusted artifact would look Ready there; the driver checks
// the signature itself against the same trust keys the pods get. Three
// apps, pushed to a real registry: "good" signed with the trusted key by
// the real cosign CLI, "bad" signed by cosign with another key, "bare"
// not signed. The plan reports, per app, why the target will refuse bad
// and bare, and nothing about good; the apply deploys good and fails bad
// and bare with "signature: ... not signed by a trusted key", applying
// none of their objects.
func TestUntrustedArtifactSaysWhy(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	reg := testenv.Registry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	cosign := testenv.NewCosign(t, "v2.6.5", "")
	trusted, other := t.TempDir(), t.TempDir()
	cosign.Run(trusted, false, "generate-key-pair")
	cosign.Run(other, false, "generate-key-pair")

	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "single", "testdata", "varecho.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]targets.DesiredApp{}
	for name, keyDir := range map[string]string{"good": trusted, "bad": other, "bare": ""} {
		app := deploy.App{Name: name, Components: []deploy.Component{{Name: "main", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."}}}}
		res, err := rc.PushApp(ctx, reg+"/apps/"+name, app, map[string][]byte{"main": wasm}, registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if keyDir != "" {
			cosign.Run(keyDir, false, "sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", "--yes", res.Ref)
		}
		want[name] = targets.DesiredApp{Name: name, Ref: res.Ref, Digest: res.Digest.String(), App: app}
	}

	dir := t.TempDir()
	pub, err := os.ReadFile(filepath.Join(trusted, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "team.pub"), pub, 0o644)
	os.WriteFile(filepath.Join(dir, "web.wasm"), wasm, 0o644)
	os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(fmt.Sprintf(`
app "good" {
  component "main" {
    wasm = "./web.wasm"
  }
}

trust {
  keys = ["./team.pub"]
}

target "cluster" {
  type       = "kubernetes"
  apps       = ["good"]
  kubeconfig = %q
  namespace  = "default"
  image      = "ferry-host:test"
}
`, c.Kubeconfig)), 0o644)
	cfg, diags := spec.Load(dir, spec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	d := openTarget(t, cfg, open.Options{RolloutWait: time.Second, Verify: &signer.RegistryOptions{}})

	// Check alone: the typed error, and its words.
	if err := d.Check(ctx, want["good"]); err != nil {
		t.Fatalf("Check of the trusted artifact: %v", err)
	}
	for name, why := range map[string]string{"bad": "none made by the policy's 1 key(s) [team.pub]", "bare": "has no signatures"} {
		err := d.Check(ctx, want[name])
		var ue *driver.UntrustedError
		if !errors.As(err, &ue) || !errors.Is(err, driver.ErrUntrusted) || !errors.Is(err, signer.ErrNoMatchingKey) && !errors.Is(err, signer.ErrUnsigned) {
			t.Fatalf("Check of %s: %v (%T), want an *UntrustedError", name, err, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "signature: "+want[name].Ref+" is not signed by a trusted key [team.pub]") || !strings.Contains(msg, why) {
			t.Errorf("Check of %s says %q; want it to start with signature: REF is not signed by a trusted key and say %q", name, msg, why)
		}
	}

	desiredState := plan.Desired{Targets: []plan.DesiredTarget{{Name: "cluster", Type: "kubernetes",
		Apps: []targets.DesiredApp{want["good"], want["bad"], want["bare"]}}}}
	tgts := map[string]targets.Target{"cluster": d}
	p, err := plan.Compute(ctx, desiredState, tgts, plan.PlanOptions{Source: "verify"})
	if err != nil {
		t.Fatal(err)
	}
	tp := p.Targets[0]
	if tp.Errored {
		t.Fatalf("the target errored: %v", tp.Diagnostics.Err())
	}
	said := map[string]string{}
	for _, dg := range tp.Diagnostics {
		if dg.App != "" {
			said[dg.App] += dg.String()
		}
	}
	if said["good"] != "" {
		t.Errorf("plan says about the trusted app: %s", said["good"])
	}
	for _, name := range []string{"bad", "bare"} {
		if !strings.Contains(said[name], "The target will refuse this version") || !strings.Contains(said[name], "signature: "+want[name].Ref+" is not signed by a trusted key") {
			t.Errorf("plan about %s: %q", name, said[name])
		}
	}
	t.Logf("plan: %s", said["bad"])

	res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{Timeout: time.Minute})
	if res == nil {
		t.Fatal(err)
	}
	t.Logf("apply: %v", err)
	if r := res.App("cluster", "good"); r == nil || (r.Outcome != plan.OutcomeApplied && r.Outcome != plan.OutcomeProgressing) {
		t.Errorf("apply of good: %+v", r)
	}
	cs := kubernetes.NewForConfigOrDie(c.Config)
	for _, name := range []string{"bad", "bare"} {
		r := res.App("cluster", name)
		if r == nil || r.Outcome != plan.OutcomeFailed || !strings.Contains(r.Error, "signature: "+want[name].Ref+" is not signed by a trusted key [team.pub]") {
			t.Errorf("apply of %s: %+v", name, r)
		}
		for kind, get := range map[string]func() error{
			"Deployment": func() error {
				_, err := cs.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
				return err
			},
			"ConfigMap": func() error {
				_, err := cs.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
				return err
			},
			"Service": func() error {
				_, err := cs.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
				return err
			},
		} {
			if err := get(); !apierrors.IsNotFound(err) {
				t.Errorf("%s %s after the refused apply: %v, want not found", kind, name, err)
			}
		}
	}
	if _, err := cs.AppsV1().Deployments("default").Get(ctx, "good", metav1.GetOptions{}); err != nil {
		t.Errorf("Deployment good: %v", err)
	}
}

// TestRolloutTimeoutSaysWhy: a rollout that does not finish within the
// app's timeout fails with what its pods report — the kubelet's Ready
// condition message and the container's state — not only the
// Deployment's counts. No controller-manager runs here, so the pod is
// written as a kubelet would report it: created, then its status through
// the status subresource.
func TestRolloutTimeoutSaysWhy(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	cfg := writeSpec(t, c, "kwok", "")
	d := openTarget(t, cfg, open.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "default",
		Labels: map[string]string{"app.kubernetes.io/name": "web", "app.kubernetes.io/managed-by": "ferry"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "host", Image: "ferry-host:test"}}}}
	// No controller-manager: the namespace's default ServiceAccount too.
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady",
			Message: "containers with unready status: [host]"}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "host", Image: "ferry-host:test", ImageID: "x",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container"}}}}}
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = d.Put(pctx, desired("web", digestA))
	if !errors.Is(err, targets.ErrUnhealthy) {
		t.Fatalf("Put: %v, want unhealthy", err)
	}
	for _, want := range []string{"pod web-abc", "Ready ContainersNotReady: containers with unready status: [host]", "container host waiting: CrashLoopBackOff back-off 10s restarting failed container"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the timeout does not say %q: %v", want, err)
		}
	}
	t.Logf("Put: %v", err)
}
