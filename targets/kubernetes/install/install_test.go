package install_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/targets/kubernetes/install"
	"github.com/ferry-wasm/ferry/targets/kubernetes/leader"
	"github.com/ferry-wasm/ferry/targets/kubernetes/statestore"
)

func opts() install.Options {
	return install.Options{Image: "registry.example/ferry@sha256:" + strings.Repeat("a", 64),
		Repo: "https://git.example/acme/apps.git", TargetNamespaces: []string{"apps"}}
}

func TestOptionsErrors(t *testing.T) {
	for name, o := range map[string]install.Options{
		"no image":     {Repo: "x"},
		"no repo":      {Image: "x"},
		"bad ns":       {Image: "x", Repo: "x", Namespace: "Bad_NS"},
		"bad target":   {Image: "x", Repo: "x", TargetNamespaces: []string{"-x"}},
		"neg replicas": {Image: "x", Repo: "x", Replicas: -1},
	} {
		if _, err := install.Objects(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestYAMLIsStable: the same options render the same bytes (a manifest
// can be diffed and committed).
func TestYAMLIsStable(t *testing.T) {
	a, _ := install.Objects(opts())
	b, _ := install.Objects(opts())
	ya, err := install.YAML(a)
	if err != nil {
		t.Fatal(err)
	}
	yb, _ := install.YAML(b)
	if string(ya) != string(yb) {
		t.Fatal("two renders differ")
	}
	for _, want := range []string{"kind: Deployment", "--leader-elect", "--state-configmap", "name: ferry-agent-state", "kind: ClusterRole", "namespace: apps", "managed-by: ferry"} {
		if !strings.Contains(string(ya), want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
	if strings.Contains(string(ya), "creationTimestamp") {
		t.Error("manifest carries creationTimestamp")
	}
}

// TestInstallRBAC applies the install to a real apiserver (and again, as
// a no-op: server-side apply is idempotent), checks it with the real
// kubectl, then acts with the ServiceAccount's own token: it can hold the
// leader Lease and server-side apply app objects in its target namespace,
// and nothing elsewhere.
func TestInstallRBAC(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(c.Config)
	for _, ns := range []string{"apps", "other"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := install.Objects(opts())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		done, err := install.Apply(ctx, c.Config, objs, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(done) != len(objs) {
			t.Fatalf("applied %d of %d", len(done), len(objs))
		}
	}

	// The real kubectl sees the agent's Deployment, managed by ferry.
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is not installed (apt-get install kubernetes-client)")
	}
	out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "-n", install.DefaultNS, "get", "deployment", install.Name,
		"--show-managed-fields", "-o", "yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl: %v\n%s", err, out)
	}
	for _, want := range []string{"manager: ferry", "operation: Apply", "app.kubernetes.io/managed-by: ferry"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl get deployment: no %q in\n%s", want, out)
		}
	}

	// A token for the agent's ServiceAccount, as its pod would have.
	tr, err := admin.CoreV1().ServiceAccounts(install.DefaultNS).CreateToken(ctx, install.Name,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa := rest.AnonymousClientConfig(c.Config)
	sa.BearerToken = tr.Status.Token
	cs := kubernetes.NewForConfigOrDie(sa)

	// Leader election with the agent's own rights.
	lctx, cancel := context.WithCancel(ctx)
	led := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- leader.Run(lctx, leader.Config{Client: cs, Namespace: install.DefaultNS, Name: install.Name, Identity: "pod-0",
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond},
			func(ctx context.Context) { close(led); <-ctx.Done() })
	}()
	select {
	case <-led:
	case err := <-errc:
		t.Fatalf("leader election with the agent's ServiceAccount: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the agent's ServiceAccount did not get the Lease within 30s")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	// The agent's durable state: its own ConfigMap, through the store the
	// agent uses, read and written with the ServiceAccount's rights;
	// another ConfigMap of its namespace can be neither read nor created.
	st, err := statestore.New(cs, install.DefaultNS, install.StateConfigMap, statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := st.Load(ctx); err != nil || b != nil {
		t.Fatalf("the installed state ConfigMap loads %q, %v; want empty", b, err)
	}
	for _, v := range []string{"state one", "state two"} {
		if err := st.Save(ctx, []byte(v)); err != nil {
			t.Fatalf("save the state with the agent's ServiceAccount: %v", err)
		}
	}
	if b, err := st.Load(ctx); err != nil || string(b) != "state two" {
		t.Fatalf("state read back: %q, %v", b, err)
	}
	// Re-applying the install (a no-op, or an upgrade) keeps the state.
	if _, err := install.Apply(ctx, c.Config, objs, false); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Load(ctx); err != nil || string(b) != "state two" {
		t.Fatalf("state after re-applying the install: %q, %v", b, err)
	}
	other, err := statestore.New(cs, install.DefaultNS, "someone-else", statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Load(ctx); !apierrors.IsForbidden(errors.Unwrap(err)) {
		t.Errorf("reading another ConfigMap of %s: %v, want forbidden", install.DefaultNS, err)
	}
	if err := other.Save(ctx, []byte("x")); !apierrors.IsForbidden(errors.Unwrap(err)) {
		t.Errorf("creating a ConfigMap in %s: %v, want forbidden", install.DefaultNS, err)
	}

	// App objects: allowed in the target namespace, forbidden elsewhere.
	dep := func(ns string) error {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "shop"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "host", Image: "ferry-host"}}}}}}
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{FieldManager: install.FieldManager})
		return err
	}
	if err := dep("apps"); err != nil {
		t.Fatalf("Deployment in the target namespace: %v", err)
	}
	if _, err := cs.CoreV1().Secrets("apps").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("secrets in the target namespace: %v", err)
	}
	for what, err := range map[string]error{
		"Deployment in another namespace": dep("other"),
		"Secrets in another namespace":    second(cs.CoreV1().Secrets("other").List(ctx, metav1.ListOptions{})),
		"Secrets cluster-wide":            second(cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})),
		"Nodes":                           second(cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})),
		"ClusterRoles":                    second(cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s with the agent's ServiceAccount: %v, want forbidden", what, err)
		}
	}
	_ = os.WriteFile(filepath.Join(c.Dir, "kubectl.yaml"), out, 0o644)
}

func second[T any](_ T, err error) error { return err }
