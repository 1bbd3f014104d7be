package driver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/kubernetes/driver"
	"github.com/ferry-wasm/ferry/targets/open"
)

// spinSpec writes and loads a spec of one kubernetes target in mode
// spinapp on c, with extra lines in the target block.
func spinSpec(t *testing.T, c *kubetest.Cluster, extra string) *spec.Config {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "web.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	src := fmt.Sprintf(`
app "web" {
  component "main" {
    wasm = "./web.wasm"
  }
}

target "cluster" {
  type               = "kubernetes"
  mode               = "spinapp"
  apps               = ["web"]
  kubeconfig         = %q
  namespace          = "default"
  image_pull_secrets = ["pull-secret"]

  resources {
    cpu    = "0.1" # the server stores what ferry sends: 100m
    memory = "64Mi"
  }
%s
}
`, c.Kubeconfig, extra)
	os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(src), 0o644)
	cfg, diags := spec.Load(dir, spec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	return cfg
}

// pushApp pushes a real ferry artifact of app (its components all the
// echo module of targets/host/testdata) to reg and returns the desired
// app of it.
func pushApp(t *testing.T, rc *registry.Client, reg string, app deploy.App, secrets map[string]string) targets.DesiredApp {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets/host/testdata/echo.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string][]byte{}
	for _, c := range app.Components {
		mods[c.Name] = wasm
	}
	res, err := rc.PushApp(context.Background(), reg+"/apps/"+app.Name, app, mods, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return targets.DesiredApp{Name: app.Name, Ref: res.Ref, Digest: res.Digest.String(), App: res.App, Secrets: secrets, Owner: "git@example.com:acme/spec.git#cluster"}
}

// spinAppJSON is the part of `kubectl get spinapp -o json` the test reads.
type spinAppJSON struct {
	Metadata struct {
		Labels        map[string]string `json:"labels"`
		Annotations   map[string]string `json:"annotations"`
		ManagedFields []managedField    `json:"managedFields"`
	} `json:"metadata"`
	Spec struct {
		Image             string `json:"image"`
		Executor          string `json:"executor"`
		Replicas          *int32 `json:"replicas"`
		EnableAutoscaling bool   `json:"enableAutoscaling"`
		ImagePullSecrets  []struct{ Name string }
		Variables         []struct {
			Name      string `json:"name"`
			Value     string `json:"value"`
			ValueFrom *struct {
				SecretKeyRef struct{ Name, Key string } `json:"secretKeyRef"`
			} `json:"valueFrom"`
		} `json:"variables"`
		Checks struct {
			Readiness, Liveness struct {
				HTTPGet       struct{ Path string } `json:"httpGet"`
				PeriodSeconds int                   `json:"periodSeconds"`
			}
		} `json:"checks"`
		Resources struct{ Requests, Limits map[string]string } `json:"resources"`
	} `json:"spec"`
}

func getSpinApp(t *testing.T, c *kubetest.Cluster, name string) spinAppJSON {
	t.Helper()
	var s spinAppJSON
	if err := json.Unmarshal([]byte(kube(t, c, "get", "spinapp", name, "-o", "json", "--show-managed-fields")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSpinAppE2E drives mode spinapp on a real apiserver with SpinKube's
// real CRDs installed (their schema validates every SpinApp ferry
// applies) and a real registry holding a real ferry artifact: the plan
// errors of a cluster without the CRDs, without the executor, and of a
// reactor component; the Spin image pushed and read back; the SpinApp's
// fields, labels and manager through kubectl; drift made by kubectl found
// by Diff and repaired by Put; autoscaling's HorizontalPodAutoscaler
// pruned when it is turned off; Delete leaving another SpinApp alone.
//
// spin-operator cannot run here, so nothing reconciles a SpinApp (no
// Deployment appears): where the test needs SpinApp status it writes it
// through the status subresource, as the operator would.
func TestSpinAppE2E(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	reg := testenv.Registry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rc, err := registry.New(registry.Options{NoDockerConfig: true, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	hi := "hi"
	app := deploy.App{Name: "web", Components: []deploy.Component{{
		Name: "main", Routes: []string{"/..."}, Env: map[string]string{"MODE": "spin"},
		Variables: map[string]string{"greeting": "{{ greeting }}"},
		Health:    &deploy.Health{Path: "/healthz", Interval: deploy.Duration(5 * time.Second)},
	}}, Variables: map[string]deploy.Variable{"greeting": {Default: &hi}, "token": {Secret: true}}}
	want := pushApp(t, rc, reg, app, map[string]string{"token": secret})

	cfg := spinSpec(t, c, "  replicas = 2\n")
	opened, err := open.Target(cfg.Targets[0], open.Options{Registry: rc, RolloutWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := opened.Target.(*driver.Driver)

	// No CRDs: a plan error that says what to install, from Diff and Put.
	if _, err := d.Diff(ctx, want); !errors.Is(err, driver.ErrSpinKube) || !strings.Contains(err.Error(), "install SpinKube's spin-operator CRDs") {
		t.Fatalf("Diff without the CRDs: %v", err)
	}
	if _, err := d.Put(ctx, want); !errors.Is(err, driver.ErrSpinKube) || !strings.Contains(err.Error(), "does not serve SpinApps") {
		t.Fatalf("Put without the CRDs: %v", err)
	}
	if _, err := d.Observe(ctx); !errors.Is(err, driver.ErrSpinKube) || !strings.Contains(err.Error(), "install SpinKube's spin-operator CRDs") {
		t.Fatalf("Observe without the CRDs: %v", err)
	}
	if _, err := d.ObserveApp(ctx, "web"); !errors.Is(err, driver.ErrSpinKube) {
		t.Fatalf("ObserveApp without the CRDs: %v, want ErrSpinKube", err)
	}
	// ... so ferry plan says so for the target.
	dt0 := plan.Desired{Targets: []plan.DesiredTarget{{Name: "cluster", Type: "kubernetes", Apps: []targets.DesiredApp{want}}}}
	if p0, err := plan.Compute(ctx, dt0, map[string]targets.Target{"cluster": d}, plan.PlanOptions{Source: "git@example.com:acme/spec.git"}); err == nil {
		b, _ := json.Marshal(p0)
		if !strings.Contains(string(b), "spin-operator CRDs") {
			t.Errorf("the plan does not say what to install: %s", b)
		}
	} else if !strings.Contains(err.Error(), "spin-operator CRDs") {
		t.Errorf("plan without the CRDs: %v", err)
	}

	start := time.Now()
	crds := filepath.Join(testenv.RepoRoot(t), "targets/kubernetes/driver/testdata/spinkube")
	kube(t, c, "apply", "--server-side", "-f", filepath.Join(crds, "core.spinkube.dev_spinapps.yaml"), "-f", filepath.Join(crds, "core.spinkube.dev_spinappexecutors.yaml"))
	kube(t, c, "wait", "--for", "condition=established", "--timeout", "60s", "crd/spinapps.core.spinkube.dev", "crd/spinappexecutors.core.spinkube.dev")
	t.Logf("CRDs established in %v", time.Since(start).Round(time.Millisecond))

	// No executor.
	_, err = d.Put(ctx, want)
	if !errors.Is(err, driver.ErrSpinKube) || !strings.Contains(err.Error(), `SpinAppExecutor "containerd-shim-spin" does not exist in namespace default (there is none)`) {
		t.Fatalf("Put without the executor: %v", err)
	}
	exec := filepath.Join(t.TempDir(), "executor.yaml")
	os.WriteFile(exec, []byte(`apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata:
  name: containerd-shim-spin
  namespace: default
spec:
  createDeployment: true
  deploymentConfig:
    runtimeClassName: wasmtime-spin-v2
    installDefaultCACerts: true
`), 0o644)
	kube(t, c, "apply", "-f", exec)

	// A reactor component: named, before anything is applied.
	reactor := want
	reactor.App.Components = slices.Clone(want.App.Components)
	reactor.App.Components[0].Executor = deploy.ExecutorReactor
	for _, f := range []func() error{
		func() error { _, err := d.Diff(ctx, reactor); return err },
		func() error { _, err := d.Put(ctx, reactor); return err },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), `component "main" of app web uses executor "reactor", which Spin cannot run`) {
			t.Fatalf("reactor component: %v", err)
		}
	}
	if out := kube(t, c, "get", "spinapps", "-o", "name"); out != "" {
		t.Fatalf("a SpinApp was applied before the error: %s", out)
	}

	// Plan then apply: nothing reconciles, so Put reports progressing.
	diffs, err := d.Diff(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if f := findDiff(diffs, "SpinApp/default/web"); f == nil || f.Change != "create" {
		t.Fatalf("Diff before Put: %+v", diffs)
	}
	// Planned and applied with sync/plan, as ferry apply does.
	source := "git@example.com:acme/spec.git"
	want.Owner = plan.OwnerOf(source, "cluster")
	dt := plan.Desired{Targets: []plan.DesiredTarget{{Name: "cluster", Type: "kubernetes", Apps: []targets.DesiredApp{want}}}}
	tgts := map[string]targets.Target{"cluster": d}
	p, err := plan.Compute(ctx, dt, tgts, plan.PlanOptions{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Counts(); n.Create != 1 {
		t.Fatalf("plan counts %+v, want one create:\n%+v", n, p.Targets)
	}
	start = time.Now()
	applied, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{Timeout: time.Minute, SecretsFor: plan.SecretsFrom(dt)})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing reconciles the SpinApp, so it stays progressing.
	if r := applied.App("cluster", "web"); r == nil || r.Outcome != plan.OutcomeProgressing || !strings.Contains(r.Detail, "spin-operator") {
		t.Fatalf("apply result %+v", r)
	}
	t.Logf("apply (CRD validation, SSA, image push) in %v", time.Since(start).Round(time.Millisecond))
	// Nothing reconciles: Put reports progressing, waiting for the operator.
	if res, err := d.Put(ctx, want); err != nil || res.Phase != targets.PhaseProgressing || !strings.Contains(res.Message, "spin-operator") {
		t.Fatalf("Put without an operator: %+v %v", res, err)
	}

	// kubectl's view.
	sa := getSpinApp(t, c, "web")
	img, err := registry.ParseReference(sa.Spec.Image)
	if err != nil || img.Repo() != reg+"/apps/web" || img.Digest == "" || img.Digest.String() == want.Digest {
		t.Errorf("image %q is not a Spin app by digest in the artifact's repository", sa.Spec.Image)
	}
	if sa.Spec.Executor != "containerd-shim-spin" || sa.Spec.Replicas == nil || *sa.Spec.Replicas != 2 ||
		sa.Spec.Resources.Limits["cpu"] != "100m" || sa.Spec.Resources.Requests["memory"] != "64Mi" ||
		len(sa.Spec.ImagePullSecrets) != 1 || sa.Spec.Checks.Readiness.HTTPGet.Path != "/healthz" ||
		sa.Spec.Checks.Liveness.HTTPGet.Path != "/healthz" || sa.Spec.Checks.Readiness.PeriodSeconds != 5 {
		t.Errorf("SpinApp spec does not carry the spec's fields: %+v", sa.Spec)
	}
	if len(sa.Spec.Variables) != 2 || sa.Spec.Variables[0].Name != "greeting" || sa.Spec.Variables[0].Value != "hi" ||
		sa.Spec.Variables[1].ValueFrom == nil || sa.Spec.Variables[1].ValueFrom.SecretKeyRef.Name != "web-secrets" || sa.Spec.Variables[1].ValueFrom.SecretKeyRef.Key != "token" {
		t.Errorf("variables %+v", sa.Spec.Variables)
	}
	for k, v := range map[string]string{"app.kubernetes.io/managed-by": "ferry", "app.kubernetes.io/name": "web"} {
		if sa.Metadata.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, sa.Metadata.Labels[k], v)
		}
	}
	if sa.Metadata.Labels["ferry.dev/owner"] == "" || sa.Metadata.Annotations["ferry.dev/owner"] != want.Owner || sa.Metadata.Annotations["ferry.dev/digest"] != want.Digest {
		t.Errorf("owner/digest: labels %v annotations %v", sa.Metadata.Labels, sa.Metadata.Annotations)
	}
	if !slices.ContainsFunc(sa.Metadata.ManagedFields, func(m managedField) bool { return m.Manager == "ferry" && m.Operation == "Apply" }) {
		t.Errorf("managedFields have no Apply of manager ferry: %+v", sa.Metadata.ManagedFields)
	}
	if out := kube(t, c, "get", "secret/web-secrets", "-o", "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}"); out != "ferry" {
		t.Errorf("secret managed-by = %q", out)
	}
	if out := kube(t, c, "get", "spinapp", "web"); strings.Contains(out, secret) {
		t.Errorf("kubectl shows the secret: %s", out)
	}

	// The Spin image, read back from the registry.
	checkSpinImage(t, reg, img, want)

	// The operator's status, written through the status subresource as
	// spin-operator would.
	now := time.Now().UTC().Format(time.RFC3339)
	kube(t, c, "patch", "spinapp", "web", "--subresource=status", "--type=merge", "-p",
		`{"status":{"readyReplicas":2,"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable","message":"Deployment has minimum availability.","lastTransitionTime":"`+now+`"}]}}`)
	if res, err := d.Put(ctx, want); err != nil || res.Phase != targets.PhaseReady {
		t.Fatalf("Put after the status: %+v %v", res, err)
	}
	obs, err := d.Observe(ctx)
	if err != nil || len(obs) != 1 || !obs[0].Managed || !obs[0].Healthy || obs[0].Digest != want.Digest || obs[0].Owner != want.Owner {
		t.Fatalf("Observe: %+v %v", obs, err)
	}
	if h := d.SecretHashes("web", want.Secrets); !equalMaps(h, obs[0].SecretHashes) {
		t.Errorf("observed secret hashes %v, want %v", obs[0].SecretHashes, h)
	}
	checkObserveApp(t, d, obs, "web")
	if diffs, err := d.Diff(ctx, want); err != nil || len(diffs) != 0 {
		t.Fatalf("Diff right after Put: %+v %v", diffs, err)
	}

	// Drift by hand, found and repaired.
	kube(t, c, "patch", "spinapp", "web", "--type=merge", "-p", `{"spec":{"replicas":5}}`)
	diffs, err = d.Diff(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if f := findDiff(diffs, "SpinApp/default/web"); f == nil || f.Change != "update" || !slices.Equal(f.Fields, []string{"spec.replicas"}) {
		t.Fatalf("Diff after kubectl patch: %+v", diffs)
	}
	if _, err := d.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	if sa := getSpinApp(t, c, "web"); *sa.Spec.Replicas != 2 {
		t.Errorf("replicas after repair = %d", *sa.Spec.Replicas)
	}

	// Autoscaling on (another opening of the target), then off: the
	// HorizontalPodAutoscaler is pruned.
	cfgAuto := spinSpec(t, c, "  executor = \"containerd-shim-spin\"\n  autoscaling {\n    max = 4\n  }\n")
	oa, err := open.Target(cfgAuto.Targets[0], open.Options{Registry: rc, RolloutWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oa.Target.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	if sa := getSpinApp(t, c, "web"); !sa.Spec.EnableAutoscaling || sa.Spec.Replicas != nil {
		t.Errorf("autoscaling SpinApp: enableAutoscaling %v replicas %v", sa.Spec.EnableAutoscaling, sa.Spec.Replicas)
	}
	if out := kube(t, c, "get", "hpa", "web", "-o", "jsonpath={.spec.scaleTargetRef.name}"); out != "web" {
		t.Errorf("HPA target %q", out)
	}
	if _, err := d.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	if out := kube(t, c, "get", "hpa", "-o", "name"); out != "" {
		t.Errorf("HPA not pruned: %s", out)
	}

	// Delete removes ferry's objects and leaves another SpinApp alone.
	other := filepath.Join(t.TempDir(), "other.yaml")
	os.WriteFile(other, []byte(`apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: other
  namespace: default
  labels: {app.kubernetes.io/name: web}
spec:
  image: ghcr.io/example/other:1
  executor: containerd-shim-spin
  replicas: 1
`), 0o644)
	kube(t, c, "apply", "-f", other)
	if err := d.Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if out := kube(t, c, "get", "spinapps,secrets", "-o", "name"); strings.TrimSpace(out) != "spinapp.core.spinkube.dev/other" {
		t.Errorf("after Delete: %q", out)
	}

	// A SpinApp of the same name that someone else made is not taken
	// over: the deploy fails naming the other manager and field.
	taken := want
	taken.Name = "other"
	_, err = d.Put(ctx, taken)
	var ce *driver.ConflictError
	if !errors.As(err, &ce) || ce.Object != "SpinApp/default/other" || !strings.Contains(err.Error(), ".spec.image") {
		t.Fatalf("Put over another manager's SpinApp: %v", err)
	}
	if out := kube(t, c, "get", "spinapp", "other", "-o", "jsonpath={.spec.image}"); out != "ghcr.io/example/other:1" {
		t.Errorf("the other SpinApp's image is now %q", out)
	}
}

// checkSpinImage reads the Spin image's manifest and config from the
// registry over its HTTP API and checks Spin's layout.
func checkSpinImage(t *testing.T, reg string, img registry.Reference, want targets.DesiredApp) {
	t.Helper()
	get := func(path, accept string) []byte {
		req, _ := http.NewRequest(http.MethodGet, "http://"+reg+"/v2/apps/web/"+path, nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return b
	}
	var man struct {
		MediaType string `json:"mediaType"`
		Config    struct{ MediaType, Digest string }
		Layers    []struct {
			MediaType, Digest string
			Size              int64
		}
	}
	if err := json.Unmarshal(get("manifests/"+img.Digest.String(), "application/vnd.oci.image.manifest.v1+json"), &man); err != nil {
		t.Fatal(err)
	}
	if man.MediaType != "application/vnd.oci.image.manifest.v1+json" || man.Config.MediaType != "application/vnd.fermyon.spin.application.v1+config" ||
		len(man.Layers) != 1 || man.Layers[0].MediaType != "application/vnd.wasm.content.layer.v1+wasm" ||
		man.Layers[0].Digest != want.App.Components[0].Digest || man.Layers[0].Size == 0 {
		t.Fatalf("Spin manifest %+v", man)
	}
	var lk struct {
		Version    int `json:"spin_lock_version"`
		Components []struct {
			ID     string
			Source struct {
				ContentType string            `json:"content_type"`
				Content     map[string]string `json:"content"`
			}
			Config map[string]string
		}
		Triggers []struct {
			TriggerType   string         `json:"trigger_type"`
			TriggerConfig map[string]any `json:"trigger_config"`
		}
		Variables map[string]struct {
			Default *string
			Secret  bool
		}
	}
	cfg := get("blobs/"+man.Config.Digest, "*/*")
	if err := json.Unmarshal(cfg, &lk); err != nil {
		t.Fatal(err)
	}
	if lk.Version != 1 || len(lk.Components) != 1 || lk.Components[0].ID != "main" || lk.Components[0].Source.Content["digest"] != man.Layers[0].Digest ||
		lk.Components[0].Config["greeting"] != "{{ greeting }}" || len(lk.Triggers) != 1 || lk.Triggers[0].TriggerType != "http" ||
		lk.Triggers[0].TriggerConfig["route"] != "/..." || lk.Triggers[0].TriggerConfig["component"] != "main" ||
		!lk.Variables["token"].Secret || lk.Variables["greeting"].Default == nil {
		t.Fatalf("locked app %s", cfg)
	}
	if strings.Contains(string(cfg), secret) {
		t.Fatal("the locked app holds the secret")
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
