package driver_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/open"
)

// TestPodRunsAsKubeletWould closes the loop kwok leaves open (kwok marks
// pods Ready without running them): it applies an app in mode host to a
// real apiserver, reads back the Deployment's pod template, the ConfigMap
// and both Secrets the pod mounts, lays the volumes out as the kubelet
// would (each key a file under its mount path, emptyDirs empty) and runs
// the container's own command line — the real ferry-host binary, with the
// container's environment and nothing else — rooted in a temp directory.
// The pod pulls the signed artifact from a real registry, verifies it with
// the trust Secret, answers the readiness probe's path on the probe's port
// once ready, and serves the app with the ConfigMap's and the Secret's
// values. A second apply with a new secret value shows in the running pod
// after the kubelet refreshes the mounted Secret, without a restart. The
// pod of an artifact signed by an untrusted key never becomes ready: its
// readiness probe answers 503 "signature: ..." and its app port serves
// nothing.
func TestPodRunsAsKubeletWould(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	reg := testenv.Registry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// A signed varecho app: it answers "{{ greeting }}/{{ api_key }}".
	privPEM, pubPEM, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signer.LoadPrivateKey(privPEM, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	hello := "hello"
	app := deploy.App{Name: "web",
		Variables: map[string]deploy.Variable{"greeting": {Default: &hello}, "api_key": {Secret: true}},
		Components: []deploy.Component{{
			Name: "main", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
			Variables: map[string]string{"key": "{{ greeting }}/{{ api_key }}"},
		}}}
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "single", "testdata", "varecho.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rc.PushApp(ctx, reg+"/apps/web", app, map[string][]byte{"main": wasm}, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Sign(ctx, res.Ref, priv, signer.SignOptions{}); err != nil {
		t.Fatal(err)
	}

	// The spec: the trust block names the key the pod must verify with.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pubPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "web.wasm"), wasm, 0o644)
	os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(fmt.Sprintf(`
app "web" {
  component "main" {
    wasm = "./web.wasm"
  }
}

trust {
  keys = ["./cosign.pub"]
}

target "cluster" {
  type       = "kubernetes"
  apps       = ["web"]
  kubeconfig = %q
  namespace  = "default"
  image      = "ferry-host:test"
}
`, c.Kubeconfig)), 0o644)
	cfg, diags := spec.Load(dir, spec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	// No controller-manager: the Deployment never rolls out, so Put
	// reports it progressing after a second.
	d := openTarget(t, cfg, open.Options{RolloutWait: time.Second})
	want := targets.DesiredApp{Name: "web", Ref: res.Ref, Digest: res.Digest.String(), App: app, Secrets: map[string]string{"api_key": "k1"}}
	if _, err := d.Put(ctx, want); err != nil {
		t.Fatal(err)
	}

	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ferry-host")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", bin, "./cmd/ferry-host")
	build.Dir = testenv.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// runPod runs the pod of Deployment name as the kubelet would and
	// returns its listeners, its probes' paths, the process and the
	// function that lays its volumes out again (a kubelet refresh).
	runPod := func(name string) (appURL, healthURL, ready, live string, proc *testenv.Process, layout func()) {
		t.Helper()
		dep, err := cs.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod := dep.Spec.Template.Spec
		if len(pod.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(pod.Containers))
		}
		ctr := pod.Containers[0]
		root := t.TempDir()
		mount := map[string]string{} // volume name → mount path
		for _, m := range ctr.VolumeMounts {
			mount[m.Name] = m.MountPath
		}
		// layout writes every volume as the kubelet would.
		layout = func() {
			t.Helper()
			for _, v := range pod.Volumes {
				path := filepath.Join(root, mount[v.Name])
				files := map[string][]byte{}
				switch {
				case v.ConfigMap != nil:
					cm, err := cs.CoreV1().ConfigMaps("default").Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
					if err != nil {
						t.Fatalf("volume %s: %v", v.Name, err)
					}
					for k, s := range cm.Data {
						files[k] = []byte(s)
					}
				case v.Secret != nil:
					sec, err := cs.CoreV1().Secrets("default").Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
					if err != nil {
						t.Fatalf("volume %s: %v", v.Name, err)
					}
					files = sec.Data
				case v.EmptyDir != nil:
				default:
					t.Fatalf("volume %s of a kind this test does not lay out: %+v", v.Name, v.VolumeSource)
				}
				if err := os.MkdirAll(path, 0o755); err != nil {
					t.Fatal(err)
				}
				for k, b := range files {
					tmp := filepath.Join(path, "."+k+".tmp")
					os.WriteFile(tmp, b, 0o644)
					if err := os.Rename(tmp, filepath.Join(path, k)); err != nil { // atomic, as the kubelet's symlink swap
						t.Fatal(err)
					}
				}
			}
		}
		layout()

		// The container's command line, with every mount path under root and
		// the two listeners on free loopback ports (the probe's port is
		// checked against the flag instead).
		var readiness *corev1.HTTPGetAction
		if ctr.ReadinessProbe != nil {
			readiness = ctr.ReadinessProbe.HTTPGet
		}
		if readiness == nil {
			t.Fatal("the container has no HTTP readiness probe")
		}
		args := append([]string(nil), ctr.Args...)
		for i := range args {
			for _, mp := range mount {
				if args[i] == mp || strings.HasPrefix(args[i], mp+"/") {
					args[i] = filepath.Join(root, args[i])
					break
				}
			}
			if i > 0 && args[i-1] == "--health-listen" {
				if args[i] != fmt.Sprintf(":%d", readiness.Port.IntValue()) {
					t.Errorf("--health-listen %s, but the readiness probe asks port %s", args[i], readiness.Port.String())
				}
				args[i] = "127.0.0.1:0"
			}
			if i > 0 && args[i-1] == "--listen" {
				args[i] = "127.0.0.1:0"
			}
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{}
		for _, e := range ctr.Env {
			v := e.Value
			if strings.HasPrefix(v, "/") {
				v = filepath.Join(root, v) // HOME, XDG_CACHE_HOME: paths in the container
			}
			cmd.Env = append(cmd.Env, e.Name+"="+v)
		}
		proc, m := testenv.StartProcess(t, cmd, regexp.MustCompile(`serving \S+ on (http://\S+), health on (http://\S+)`), 30*time.Second)
		return m[1], m[2], readiness.Path, ctr.LivenessProbe.HTTPGet.Path, proc, layout
	}
	appURL, healthURL, readyPath, livePath, proc, layout := runPod("web")

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode, strings.TrimSpace(string(b[:n]))
	}
	waitFor := func(what, url string, proc *testenv.Process, ok func(int, string) bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			code, body := get(url)
			if ok(code, body) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last answer %d %q\n%s", what, code, body, proc.Stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("readiness probe", healthURL+readyPath, proc, func(code int, _ string) bool { return code == http.StatusOK })
	if code, _ := get(healthURL + livePath); code != http.StatusOK {
		t.Errorf("liveness probe %s: %d", livePath, code)
	}
	waitFor("the app with the ConfigMap's and the Secret's values", appURL+"/", proc, func(code int, body string) bool {
		return code == http.StatusOK && body == "hello/k1"
	})

	// A rotated secret: applied, then the kubelet refreshes the mount.
	want.Secrets = map[string]string{"api_key": "k2"}
	if _, err := d.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	layout()
	waitFor("the rotated secret", appURL+"/", proc, func(code int, body string) bool { return code == http.StatusOK && body == "hello/k2" })
	if strings.Contains(proc.Stderr.String(), "k2") || strings.Contains(proc.Stderr.String(), "k1") {
		t.Errorf("the pod logged a secret value:\n%s", proc.Stderr.String())
	}

	// An artifact signed by a key the spec does not trust: its pod never
	// becomes Ready, its readiness probe says why, and it serves nothing.
	otherPEM, _, err := signer.GenerateKeyPair([]byte("pw3"))
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, err := signer.LoadPrivateKey(otherPEM, []byte("pw3"))
	if err != nil {
		t.Fatal(err)
	}
	bad := app
	bad.Name = "bad"
	resBad, err := rc.PushApp(ctx, reg+"/apps/bad", bad, map[string][]byte{"main": wasm}, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Sign(ctx, resBad.Ref, otherPriv, signer.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, targets.DesiredApp{Name: "bad", Ref: resBad.Ref, Digest: resBad.Digest.String(), App: bad, Secrets: map[string]string{"api_key": "k1"}}); err != nil {
		t.Fatal(err)
	}
	badApp, badHealth, badReady, _, badProc, _ := runPod("bad")
	waitFor("the untrusted pod's readiness probe saying why", badHealth+badReady, badProc, func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.HasPrefix(body, "signature: ")
	})
	time.Sleep(2 * time.Second) // it keeps retrying; it must never turn ready
	if code, body := get(badHealth + badReady); code == http.StatusOK {
		t.Errorf("the untrusted pod became ready: %q", body)
	}
	if code, body := get(badApp + "/"); code == http.StatusOK {
		t.Errorf("the untrusted pod served the app: %d %q", code, body)
	}
}
