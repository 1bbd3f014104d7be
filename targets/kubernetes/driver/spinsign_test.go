package driver_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/kubernetes/driver"
	"github.com/ferry-wasm/ferry/targets/open"
)

// TestSpinImageSigned: in mode spinapp, with open.Options.SpinSign, the
// Spin image a Put pushes is signed with the artifacts' key, so that the
// real cosign CLI (v2.6.5 and v3.1.3) verifies the SpinApp's spec.image
// with the public key, and ferry's signer does too. Without SpinSign the
// image of another app is unsigned, which cosign refuses (the control that
// shows the verification can fail). A second Put of the same image stores
// no second signature.
func TestSpinImageSigned(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	reg := testenv.Registry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rc, err := registry.New(registry.Options{NoDockerConfig: true, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	crds := filepath.Join(testenv.RepoRoot(t), "targets/kubernetes/driver/testdata/spinkube")
	kube(t, c, "apply", "--server-side", "-f", filepath.Join(crds, "core.spinkube.dev_spinapps.yaml"), "-f", filepath.Join(crds, "core.spinkube.dev_spinappexecutors.yaml"))
	kube(t, c, "wait", "--for", "condition=established", "--timeout", "60s", "crd/spinapps.core.spinkube.dev", "crd/spinappexecutors.core.spinkube.dev")
	dir := t.TempDir()
	execPath := filepath.Join(dir, "executor.yaml")
	os.WriteFile(execPath, []byte("apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinAppExecutor\nmetadata:\n  name: containerd-shim-spin\n  namespace: default\nspec:\n  createDeployment: true\n"), 0o644)
	kube(t, c, "apply", "-f", execPath)

	const pw = "spin-sign-pw"
	priv, pub, err := signer.GenerateKeyPair([]byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "ferry.pub")
	os.WriteFile(pubPath, pub, 0o644)
	key, err := signer.LoadPrivateKey(priv, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}

	cfg := spinSpec(t, c, "")
	signed, err := open.Target(cfg.Targets[0], open.Options{Registry: rc, RolloutWait: 300 * time.Millisecond,
		SpinSign: &open.SpinSigning{Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := open.Target(cfg.Targets[0], open.Options{Registry: rc, RolloutWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	app := func(name string) deploy.App {
		return deploy.App{Name: name, Components: []deploy.Component{{Name: "main", Routes: []string{"/..."}}}}
	}
	web := pushApp(t, rc, reg, app("web"), nil)
	other := pushApp(t, rc, reg, app("other"), nil)
	for _, put := range []struct {
		d    *driver.Driver
		want string
	}{{signed.Target.(*driver.Driver), "web"}, {unsigned.Target.(*driver.Driver), "other"}} {
		want := web
		if put.want == "other" {
			want = other
		}
		if _, err := put.d.Put(ctx, want); err != nil {
			t.Fatalf("Put %s: %v", put.want, err)
		}
	}
	webImage, otherImage := getSpinApp(t, c, "web").Spec.Image, getSpinApp(t, c, "other").Spec.Image
	if !strings.Contains(webImage, "@sha256:") || webImage == web.Ref || !strings.Contains(otherImage, "@sha256:") {
		t.Fatalf("SpinApp images %q, %q: want Spin images by digest, not the artifacts", webImage, otherImage)
	}

	for _, v := range []string{"v2.6.5", "v3.1.3"} {
		cs := testenv.NewCosign(t, v, pw)
		out := cs.Run(dir, false, "verify", "--key", pubPath, "--insecure-ignore-tlog", webImage)
		if !strings.Contains(out, "The signatures were verified against the specified public key") {
			t.Errorf("cosign %s verify %s:\n%s", v, webImage, out)
		}
		out = cs.Run(dir, true, "verify", "--key", pubPath, "--insecure-ignore-tlog", otherImage)
		if !strings.Contains(out, "no signatures found") && !strings.Contains(out, "no matching signatures") {
			t.Errorf("cosign %s verify of the unsigned image failed for another reason:\n%s", v, out)
		}
	}
	pol, err := signer.PolicyFromFiles([]string{pubPath})
	if err != nil {
		t.Fatal(err)
	}
	res, err := signer.Verify(ctx, webImage, pol, signer.VerifyOptions{})
	if err != nil || res.Signatures != 1 {
		t.Fatalf("ferry verify of the Spin image: %+v %v", res, err)
	}
	if _, err := signer.Verify(ctx, otherImage, pol, signer.VerifyOptions{}); !errors.Is(err, signer.ErrUnsigned) {
		t.Errorf("ferry verify of the unsigned Spin image: %v, want ErrUnsigned", err)
	}

	// Put again: the same image, still one signature.
	if _, err := signed.Target.(*driver.Driver).Put(ctx, web); err != nil {
		t.Fatal(err)
	}
	if res, err := signer.Verify(ctx, webImage, pol, signer.VerifyOptions{}); err != nil || res.Signatures != 1 {
		t.Errorf("after a second Put: %+v %v, want one signature", res, err)
	}
}
