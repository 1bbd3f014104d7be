package driver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/kubernetes/driver"
	"github.com/ferry-wasm/ferry/targets/open"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	secret  = "s3cret-value-never-shown"
)

// kube runs the real kubectl against c and returns its output.
func kube(t *testing.T, c *kubetest.Cluster, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is not installed")
	}
	out, err := exec.Command(bin, append([]string{"--kubeconfig", c.Kubeconfig, "-n", "default"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// writeSpec writes a spec of one app and one kubernetes target on c, with
// every workload field, and loads it.
func writeSpec(t *testing.T, c *kubetest.Cluster, nodeType, extra string) *spec.Config {
	t.Helper()
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	os.WriteFile(filepath.Join(dir, "cosign.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "web.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	src := fmt.Sprintf(`
app "web" {
  component "main" {
    wasm = "./web.wasm"
  }
}

trust {
  keys = ["./cosign.pub"]
}

target "cluster" {
  type               = "kubernetes"
  apps               = ["web"]
  kubeconfig         = %q
  namespace          = "default"
  image              = "ghcr.io/ferry-wasm/ferry-host:test"
  node_selector      = { type = %q }
  image_pull_secrets = ["pull-secret"]

  resources {
    cpu    = "0.1" # the server stores it as 100m
    memory = "64Mi"
  }

  toleration {
    key      = "kwok.x-k8s.io/node"
    operator = "Exists"
    effect   = "NoSchedule"
  }
%s
}
`, c.Kubeconfig, nodeType, extra)
	os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(src), 0o644)
	cfg, diags := spec.Load(dir, spec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	return cfg
}

func openTarget(t *testing.T, cfg *spec.Config, o open.Options) *driver.Driver {
	t.Helper()
	opened, err := open.Target(cfg.Targets[0], o)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := opened.Target.(*driver.Driver)
	if !ok {
		t.Fatalf("opened %T, want *driver.Driver", opened.Target)
	}
	return d
}

func desired(name, digest string) targets.DesiredApp {
	hi := "hi"
	return targets.DesiredApp{
		Name: name, Ref: "127.0.0.1:5000/" + name + "@" + digest, Digest: digest,
		App: deploy.App{Name: name, Components: []deploy.Component{{Name: "main"}}, Variables: map[string]deploy.Variable{
			"greeting": {Default: &hi}, "token": {Secret: true},
		}},
		Secrets: map[string]string{"token": secret},
	}
}

type managedField struct {
	Manager   string `json:"manager"`
	Operation string `json:"operation"`
}

// deployJSON is the part of `kubectl get deploy -o json` the test reads.
type deployJSON struct {
	Metadata struct {
		Labels        map[string]string `json:"labels"`
		Annotations   map[string]string `json:"annotations"`
		ManagedFields []managedField    `json:"managedFields"`
	} `json:"metadata"`
	Spec struct {
		Replicas *int32 `json:"replicas"`
		Template struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				NodeSelector     map[string]string `json:"nodeSelector"`
				ImagePullSecrets []struct{ Name string }
				Tolerations      []struct{ Key, Operator, Effect string }
				Containers       []struct {
					Name      string
					Image     string
					Args      []string
					Resources struct{ Requests, Limits map[string]string }
				}
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
	Status struct {
		ReadyReplicas int32 `json:"readyReplicas"`
	} `json:"status"`
}

func getDeploy(t *testing.T, c *kubetest.Cluster, name string) deployJSON {
	t.Helper()
	var d deployJSON
	if err := json.Unmarshal([]byte(kube(t, c, "get", "deployment", name, "-o", "json", "--show-managed-fields")), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func findDiff(diffs []targets.ObjectDiff, object string) *targets.ObjectDiff {
	for i := range diffs {
		if diffs[i].Object == object {
			return &diffs[i]
		}
	}
	return nil
}

// TestE2E drives the kubernetes target end to end on a real apiserver with
// kube-controller-manager, kube-scheduler and kwok: a spec target opened by
// package open, planned and applied with sync/plan, checked with the real
// kubectl, drift made by kubectl found by Diff and repaired by Put, a
// conflict with another manager's object, pruning, and a Delete that
// leaves objects that are not ferry's alone.
func TestE2E(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{Workloads: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The pods must pass the "restricted" Pod Security Standard, which
	// the apiserver's admission enforces on the namespace.
	kube(t, c, "label", "namespace", "default", "pod-security.kubernetes.io/enforce=restricted")
	cfg := writeSpec(t, c, "kwok", "  replicas = 2\n")
	d := openTarget(t, cfg, open.Options{})

	// Plan and apply with sync/plan, as ferry apply does.
	want := desired("web", digestA)
	source := "git@example.com:acme/spec.git"
	dt := plan.Desired{Targets: []plan.DesiredTarget{{Name: "cluster", Type: "kubernetes", Apps: []targets.DesiredApp{want}}}}
	tgts := map[string]targets.Target{"cluster": d}
	p, err := plan.Compute(ctx, dt, tgts, plan.PlanOptions{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Counts(); n.Create != 1 {
		t.Fatalf("plan counts %+v, want one create:\n%+v", n, p.Targets)
	}
	start := time.Now()
	res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{Timeout: 2 * time.Minute, SecretsFor: plan.SecretsFrom(dt)})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.App("cluster", "web"); r == nil || r.Outcome != plan.OutcomeApplied {
		t.Fatalf("apply result %+v", r)
	}
	t.Logf("apply: Deployment ready in %v", time.Since(start).Round(time.Millisecond))

	// kubectl's view: ferry's labels, manager, every workload field.
	dep := getDeploy(t, c, "web")
	owner := plan.OwnerOf(source, "cluster")
	for k, v := range map[string]string{"app.kubernetes.io/managed-by": "ferry", "app.kubernetes.io/name": "web"} {
		if dep.Metadata.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, dep.Metadata.Labels[k], v)
		}
	}
	if dep.Metadata.Labels["ferry.dev/owner"] == "" || dep.Metadata.Annotations["ferry.dev/owner"] != owner {
		t.Errorf("owner label %q annotation %q, want annotation %q", dep.Metadata.Labels["ferry.dev/owner"], dep.Metadata.Annotations["ferry.dev/owner"], owner)
	}
	if !slices.ContainsFunc(dep.Metadata.ManagedFields, func(m managedField) bool {
		return m.Manager == "ferry" && m.Operation == "Apply"
	}) {
		t.Errorf("managedFields have no Apply of manager ferry: %+v", dep.Metadata.ManagedFields)
	}
	if dep.Status.ReadyReplicas != 2 || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d, ready %d; want 2/2", *dep.Spec.Replicas, dep.Status.ReadyReplicas)
	}
	if got := dep.Spec.Template.Metadata.Annotations["ferry.dev/digest"]; got != digestA {
		t.Errorf("digest annotation %q", got)
	}
	ps := dep.Spec.Template.Spec
	ctr := ps.Containers[0]
	if ctr.Image != "ghcr.io/ferry-wasm/ferry-host:test" || ctr.Args[0] != "app" || ctr.Args[2] != want.Ref ||
		ctr.Resources.Requests["cpu"] != "100m" || ctr.Resources.Limits["memory"] != "64Mi" ||
		ps.NodeSelector["type"] != "kwok" || len(ps.ImagePullSecrets) != 1 || ps.ImagePullSecrets[0].Name != "pull-secret" ||
		len(ps.Tolerations) != 1 || ps.Tolerations[0].Key != "kwok.x-k8s.io/node" {
		t.Errorf("pod template does not carry the spec's fields: %+v", ps)
	}
	for _, obj := range []string{"service/web", "configmap/web-config", "secret/web-secrets", "secret/web-trust"} {
		if out := kube(t, c, "get", obj, "-o", "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}"); out != "ferry" {
			t.Errorf("%s managed-by = %q", obj, out)
		}
	}
	if out := kube(t, c, "get", "configmap/web-config", "-o", "jsonpath={.data.greeting}"); out != "hi" {
		t.Errorf("config map greeting = %q", out)
	}
	pub, err := os.ReadFile(cfg.Trust.Keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if out := kube(t, c, "get", "secret/web-trust", "-o", "jsonpath={.data.cosign\\.pub}"); out != base64.StdEncoding.EncodeToString(pub) {
		t.Errorf("trust Secret holds %q, want the spec's key", out)
	}

	// Observe: managed, ready, digest, owner, secret hashes.
	obs, err := d.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 1 || !obs[0].Managed || obs[0].Phase != targets.PhaseReady || obs[0].Digest != digestA || obs[0].Owner != owner || obs[0].Ref != want.Ref {
		t.Fatalf("observed %+v", obs)
	}
	if hs := d.SecretHashes("web", want.Secrets); obs[0].SecretHashes["token"] == "" || obs[0].SecretHashes["token"] != hs["token"] {
		t.Errorf("secret hashes %v, want %v", obs[0].SecretHashes, hs)
	}
	if b, _ := json.Marshal(obs); strings.Contains(string(b), secret) {
		t.Error("Observe shows a secret value")
	}
	checkObserveApp(t, d, obs, "web")

	// The server's defaults (strategy, revisionHistoryLimit, probes'
	// timeouts, terminationGracePeriodSeconds, ...) and its normal form of
	// quantities (0.1 CPU stored as 100m) are no drift.
	if out := kube(t, c, "get", "deployment/web", "-o", "jsonpath={.spec.template.spec.terminationGracePeriodSeconds}/{.spec.strategy.type}/{.spec.template.spec.containers[0].readinessProbe.timeoutSeconds}"); out != "30/RollingUpdate/1" {
		t.Errorf("defaults = %q, want 30/RollingUpdate/1 (set by the server, not by ferry)", out)
	}
	want.Owner = owner
	noSecrets := want
	noSecrets.Secrets = nil
	if diffs, err := d.Diff(ctx, noSecrets); err != nil || len(diffs) != 0 {
		t.Fatalf("Diff right after apply = %+v, %v; want none", diffs, err)
	}
	p, err = plan.Compute(ctx, dt, tgts, plan.PlanOptions{Source: source})
	if err != nil || p.HasChanges() {
		t.Fatalf("second plan has changes (%v): %+v", err, p.Targets)
	}

	// Drift by hand: kubectl scale and kubectl set env on a field ferry
	// sets. Diff names the object and the field; the plan updates; Put
	// repairs it.
	kube(t, c, "scale", "deployment/web", "--replicas=4")
	kube(t, c, "set", "env", "deployment/web", "GOMEMLIMIT=1")
	diffs, err := d.Diff(ctx, noSecrets)
	if err != nil {
		t.Fatal(err)
	}
	dd := findDiff(diffs, "Deployment/default/web")
	if len(diffs) != 1 || dd == nil || dd.Change != "update" || !slices.Contains(dd.Fields, "spec.replicas") ||
		!slices.ContainsFunc(dd.Fields, func(f string) bool { return strings.Contains(f, "env[name=GOMEMLIMIT]") }) {
		t.Fatalf("Diff after kubectl scale/set env = %+v", diffs)
	}
	t.Logf("drift: %+v", diffs)
	// The env edit rolls the pods; while that rollout runs the plan
	// waits for it (the app is progressing towards its digest), and
	// once it is done the drift is planned.
	kube(t, c, "rollout", "status", "deployment/web", "--timeout=60s")
	p, err = plan.Compute(ctx, dt, tgts, plan.PlanOptions{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Counts(); n.Update != 1 {
		t.Fatalf("plan after drift: counts %+v, want one update: %+v", n, p.Targets)
	}
	if _, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{Timeout: 2 * time.Minute, SecretsFor: plan.SecretsFrom(dt)}); err != nil {
		t.Fatal(err)
	}
	if diffs, err := d.Diff(ctx, noSecrets); err != nil || len(diffs) != 0 {
		t.Fatalf("Diff after the repair = %+v, %v; want none", diffs, err)
	}
	dep = getDeploy(t, c, "web")
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas after the repair = %d, want 2", *dep.Spec.Replicas)
	}

	// A secret value changed: the plan sees it by hash only.
	dt2 := dt
	dt2.Targets = []plan.DesiredTarget{{Name: "cluster", Type: "kubernetes", Apps: []targets.DesiredApp{desired("web", digestA)}}}
	dt2.Targets[0].Apps[0].Secrets = map[string]string{"token": "another-value"}
	if p, err = plan.Compute(ctx, dt2, tgts, plan.PlanOptions{Source: source}); err != nil || p.Counts().Update != 1 {
		t.Fatalf("plan after a secret change: %v %+v", err, p.Targets)
	}

	// An object someone else made, with a field ferry sets: an error
	// naming the manager and the field, unless ForceConflicts.
	kube(t, c, "create", "configmap", "rival-config", "--from-literal=greeting=theirs")
	_, err = d.Put(ctx, desired("rival", digestA))
	var ce *driver.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, driver.ErrConflict) || len(ce.Conflicts) == 0 ||
		ce.Conflicts[0].Manager != "kubectl-create" || ce.Conflicts[0].Field != ".data.greeting" {
		t.Fatalf("Put over another manager's ConfigMap: %v (%+v)", err, ce)
	}
	t.Logf("conflict: %v", err)
	if out := kube(t, c, "get", "configmap/rival-config", "-o", "jsonpath={.data.greeting}"); out != "theirs" {
		t.Errorf("the conflicting apply changed the ConfigMap: %q", out)
	}
	forced := openTarget(t, cfg, open.Options{ForceConflicts: true})
	if r, err := forced.Put(ctx, desired("rival", digestA)); err != nil || r.Phase != targets.PhaseReady {
		t.Fatalf("forced Put: %+v, %v", r, err)
	}
	if out := kube(t, c, "get", "configmap/rival-config", "-o", "jsonpath={.data.greeting}"); out != "hi" {
		t.Errorf("forced Put left greeting %q", out)
	}

	// Autoscaling adds an HPA (and leaves replicas to it); removing it
	// from the spec prunes the HPA.
	auto := openTarget(t, writeSpec(t, c, "kwok", "  autoscaling {\n    min = 2\n    max = 5\n    cpu_percent = 60\n  }\n"), open.Options{})
	if _, err := auto.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	if out := kube(t, c, "get", "hpa/web", "-o", "jsonpath={.spec.minReplicas}/{.spec.maxReplicas}/{.metadata.labels.app\\.kubernetes\\.io/managed-by}"); out != "2/5/ferry" {
		t.Errorf("HPA = %q", out)
	}
	// ferry let go of spec.replicas without the Deployment dropping to
	// the default of one replica.
	if dep := getDeploy(t, c, "web"); dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas after autoscaling was turned on = %v, want 2 (kept for the autoscaler)", dep.Spec.Replicas)
	}
	if diffs, err := d.Diff(ctx, noSecrets); err != nil || findDiff(diffs, "HorizontalPodAutoscaler/default/web") == nil ||
		findDiff(diffs, "HorizontalPodAutoscaler/default/web").Change != "delete" {
		t.Errorf("Diff without autoscaling = %+v, %v; want the HPA deleted", diffs, err)
	}
	if _, err := d.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	if out := kube(t, c, "get", "hpa", "-o", "name"); strings.Contains(out, "web") {
		t.Errorf("HPA not pruned: %q", out)
	}

	// A rollout that cannot finish (no node matches the selector) is
	// progressing, not drift: Put reports it once RolloutWait ends, the
	// plan waits for it, and without RolloutWait the deploy timeout is an
	// error.
	nowhere := writeSpec(t, c, "nowhere", "")
	slow := openTarget(t, nowhere, open.Options{RolloutWait: 2 * time.Second})
	slowApp := desired("slow", digestA)
	slowApp.Owner = owner
	r, err := slow.Put(ctx, slowApp)
	if err != nil || r.Phase != targets.PhaseProgressing || !strings.Contains(r.Message, "replicas") {
		t.Fatalf("Put of an unschedulable app = %+v, %v; want progressing", r, err)
	}
	t.Logf("progressing: %s", r.Message)
	obs, err = slow.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(obs, func(o targets.ObservedApp) bool { return o.Name == "slow" }); i < 0 || obs[i].Phase != targets.PhaseProgressing {
		t.Errorf("Observe: slow %+v, want progressing", obs)
	}
	slowDiff := slowApp
	slowDiff.Secrets = nil
	if diffs, err := slow.Diff(ctx, slowDiff); err != nil || len(diffs) != 0 {
		t.Errorf("Diff of a progressing app = %+v, %v; want none", diffs, err)
	}
	sdt := plan.Desired{Targets: []plan.DesiredTarget{{Name: "cluster", Type: "kubernetes", Apps: []targets.DesiredApp{want, slowApp}}}}
	p, err = plan.Compute(ctx, sdt, map[string]targets.Target{"cluster": slow}, plan.PlanOptions{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range p.Targets[0].Changes {
		if ch.App == "slow" && ch.Action != plan.ActionWait {
			t.Errorf("plan for a progressing app: %s %v %+v; want wait", ch.Action, ch.Reasons, ch.Objects)
		}
	}
	tctx, tcancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = openTarget(t, nowhere, open.Options{}).Put(tctx, desired("slow", digestA))
	tcancel()
	if !errors.Is(err, targets.ErrUnhealthy) {
		t.Errorf("Put past its deadline = %v, want ErrUnhealthy", err)
	}
	if err := slow.Delete(ctx, "slow"); err != nil {
		t.Fatal(err)
	}

	// Delete removes exactly ferry's objects of the app: a Deployment and
	// a ConfigMap with the same name prefix that are not ferry's stay,
	// and Observe reports the foreign Deployment as unmanaged.
	kube(t, c, "create", "deployment", "web-legacy", "--image=registry.invalid/legacy:1")
	kube(t, c, "create", "configmap", "web-config-old", "--from-literal=a=b")
	obs, err = d.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var legacy *targets.ObservedApp
	for i := range obs {
		if obs[i].Name == "web-legacy" {
			legacy = &obs[i]
		}
	}
	if legacy == nil || legacy.Managed {
		t.Errorf("Observe: web-legacy %+v, want unmanaged", legacy)
	}
	checkObserveApp(t, d, obs, "web-legacy")
	if err := d.Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	out := kube(t, c, "get", "deployments,services,configmaps,secrets,hpa", "-o", "name")
	for _, gone := range []string{"deployment.apps/web\n", "service/web\n", "configmap/web-config\n", "secret/web-secrets\n", "secret/web-trust\n"} {
		if strings.Contains(out+"\n", gone) {
			t.Errorf("Delete left %s", strings.TrimSpace(gone))
		}
	}
	for _, kept := range []string{"deployment.apps/web-legacy", "configmap/web-config-old", "deployment.apps/rival", "configmap/rival-config"} {
		if !strings.Contains(out, kept) {
			t.Errorf("Delete removed %s, which is not web's:\n%s", kept, out)
		}
	}
	if err := d.Delete(ctx, "web"); err != nil {
		t.Errorf("deleting an absent app: %v", err)
	}

	// Several apps of one target applied at once (the driver is used
	// concurrently), then removed from the spec: the plan deletes exactly
	// those, and the apps of no owner (rival) are left alone.
	var many []targets.DesiredApp
	for _, n := range []string{"a1", "a2", "a3"} {
		many = append(many, desired(n, digestA))
	}
	mdt := plan.Desired{Targets: []plan.DesiredTarget{{Name: "cluster", Type: "kubernetes", Apps: many}}}
	if p, err = plan.Compute(ctx, mdt, tgts, plan.PlanOptions{Source: source}); err != nil || p.Counts().Create != 3 || p.Counts().Delete != 0 {
		t.Fatalf("plan of three apps: %v %+v", err, p.Counts())
	}
	if res, err = plan.Apply(ctx, p, tgts, plan.ApplyOptions{AppParallelism: 3, Timeout: 2 * time.Minute, SecretsFor: plan.SecretsFrom(mdt)}); err != nil || res.Count(plan.OutcomeApplied) != 3 {
		t.Fatalf("apply of three apps: %v", err)
	}
	empty := plan.Desired{Targets: []plan.DesiredTarget{{Name: "cluster", Type: "kubernetes", Apps: []targets.DesiredApp{}}}}
	if p, err = plan.Compute(ctx, empty, tgts, plan.PlanOptions{Source: source}); err != nil || p.Counts().Delete != 3 {
		t.Fatalf("plan without the apps: %v %+v", err, p.Targets)
	}
	if res, err = plan.Apply(ctx, p, tgts, plan.ApplyOptions{AppParallelism: 3}); err != nil || res.Count(plan.OutcomeApplied) != 3 {
		t.Fatalf("apply of the deletes: %v", err)
	}
	out = kube(t, c, "get", "deployments", "-o", "name")
	if strings.Contains(out, "/a1") || strings.Contains(out, "/a2") || strings.Contains(out, "/a3") || !strings.Contains(out, "deployment.apps/rival") {
		t.Errorf("after the deletes:\n%s", out)
	}
}

// checkObserveApp: d.ObserveApp(name) reports what the listing obs does
// for name, and nil for a name nothing runs under.
func checkObserveApp(t *testing.T, d *driver.Driver, obs []targets.ObservedApp, name string) {
	t.Helper()
	ctx := context.Background()
	var want *targets.ObservedApp
	for i := range obs {
		if obs[i].Name == name {
			want = &obs[i]
		}
	}
	if want == nil {
		t.Fatalf("Observe lists no %s", name)
	}
	got, err := d.ObserveApp(ctx, name)
	if err != nil || got == nil || !reflect.DeepEqual(*got, *want) {
		t.Errorf("ObserveApp(%s) = %+v, %v; Observe lists %+v", name, got, err, *want)
	}
	if got, err := d.ObserveApp(ctx, "no-such-app"); got != nil || err != nil {
		t.Errorf("ObserveApp of an app that does not exist = %+v, %v; want nil, nil", got, err)
	}
}
