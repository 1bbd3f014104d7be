package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/signer"
)

// TestApplyPlanFileSignsSpinImage: `ferry plan -out tfplan` then `ferry
// apply --key K tfplan DIR` on a kubernetes target in mode spinapp (a real
// kube-apiserver with SpinKube's CRDs) makes the Spin image at apply time
// and signs it with the artifacts' key, as a plan-and-apply does: the
// SpinApp's spec.image verifies against the public key. (Before, a saved
// plan's apply pushed the Spin image unsigned.) Nothing reconciles
// SpinApps here, so the test writes the SpinApp's status through the
// status subresource, as spin-operator would.
func TestApplyPlanFileSignsSpinImage(t *testing.T) {
	w := newE2EWorld(t)
	c := kubetest.Start(t, kubetest.Options{})
	kubectl := func(args ...string) (string, error) {
		out, err := exec.Command("kubectl", append([]string{"--kubeconfig", c.Kubeconfig, "-n", "default"}, args...)...).CombinedOutput()
		return string(out), err
	}
	mustKubectl := func(args ...string) string {
		t.Helper()
		out, err := kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	crds := filepath.Join(testenv.RepoRoot(t), "targets/kubernetes/driver/testdata/spinkube")
	mustKubectl("apply", "--server-side", "-f", filepath.Join(crds, "core.spinkube.dev_spinapps.yaml"), "-f", filepath.Join(crds, "core.spinkube.dev_spinappexecutors.yaml"))
	mustKubectl("wait", "--for", "condition=established", "--timeout", "60s", "crd/spinapps.core.spinkube.dev", "crd/spinappexecutors.core.spinkube.dev")
	execPath := filepath.Join(w.work, "executor.yaml")
	if err := os.WriteFile(execPath, []byte("apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinAppExecutor\nmetadata:\n  name: containerd-shim-spin\n  namespace: default\nspec:\n  createDeployment: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl("apply", "-f", execPath)

	if err := os.MkdirAll(w.specDir, 0o755); err != nil {
		t.Fatal(err)
	}
	v1, _ := e2eWasm(t)
	if err := os.WriteFile(filepath.Join(w.specDir, "web.wasm"), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.specDir, "ferry.hcl"), []byte(`
app "web" {
  component "main" {
    wasm = "./web.wasm"
  }
}

target "cluster" {
  type       = "kubernetes"
  mode       = "spinapp"
  apps       = ["web"]
  kubeconfig = "`+c.Kubeconfig+`"
  namespace  = "default"
  replicas   = 1
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tfplan := filepath.Join(w.work, "tfplan")
	if code, out, errs := w.ferry(append(append([]string{"plan", "-out", tfplan}, w.releaseArgs()...), w.specDir)...); code != 0 {
		t.Fatalf("ferry plan -out: exit %d\n%s\n%s", code, out, errs)
	}

	// The operator's part: once the SpinApp exists, say it is available.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := kubectl("get", "spinapp", "web"); err == nil {
				now := time.Now().UTC().Format(time.RFC3339)
				if _, err := kubectl("patch", "spinapp", "web", "--subresource=status", "--type=merge", "-p",
					`{"status":{"readyReplicas":1,"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable","message":"Deployment has minimum availability.","lastTransitionTime":"`+now+`"}]}}`); err == nil {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	args := []string{"apply", "-auto-approve", "--lock-dir", filepath.Join(w.work, "locks"), "--timeout", "2m"}
	args = append(append(args, w.releaseArgs()...), tfplan, w.specDir)
	if code, out, errs := w.ferry(args...); code != 0 {
		t.Fatalf("ferry apply tfplan: exit %d\n%s\n%s", code, out, errs)
	}
	img := strings.TrimSpace(mustKubectl("get", "spinapp", "web", "-o", "jsonpath={.spec.image}"))
	if !strings.Contains(img, "@sha256:") {
		t.Fatalf("SpinApp image %q: want a Spin image by digest", img)
	}
	pol, err := signer.PolicyFromFiles([]string{filepath.Join(w.work, "cosign.pub")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := signer.Verify(context.Background(), img, pol, signer.VerifyOptions{})
	if err != nil || res.Signatures != 1 {
		t.Fatalf("the Spin image %s that apply of a saved plan pushed: %+v, %v; want it signed once with the artifacts' key", img, res, err)
	}
}
