package statestore_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferry-wasm/ferry/internal/kubetest"
	"github.com/ferry-wasm/ferry/targets/kubernetes/statestore"
)

func TestParseRef(t *testing.T) {
	for in, want := range map[string]string{"ns/cm": "ns cm", "cm": "def cm"} {
		ns, n, err := statestore.ParseRef(in, "def")
		if err != nil || ns+" "+n != want {
			t.Errorf("ParseRef(%q) = %q %q %v, want %q", in, ns, n, err, want)
		}
	}
	for _, in := range []string{"", "ns/", "/cm", "a/b/c"} {
		if _, _, err := statestore.ParseRef(in, "def"); err == nil {
			t.Errorf("ParseRef(%q): no error", in)
		}
	}
}

// TestConfigMapStore against a real apiserver: nothing saved loads as
// nil; Save creates the ConfigMap, then updates it keeping what else it
// holds (labels and data the install put there); a second writer between
// a Load and a Save is a conflict that Save resolves by writing again; a
// state over MaxBytes is refused; and what is saved is what a fresh store
// (a new leader) loads.
func TestConfigMapStore(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ferry-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a, err := statestore.New(cs, "ferry-system", "ferry-agent-state", statestore.Options{MaxBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := a.Load(ctx); err != nil || b != nil {
		t.Fatalf("Load of nothing = %q, %v", b, err)
	}
	if err := a.Save(ctx, []byte("one")); err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("ferry-system").Get(ctx, "ferry-agent-state", metav1.GetOptions{})
	if err != nil || string(cm.BinaryData[statestore.Key]) != "one" || cm.Labels["app.kubernetes.io/managed-by"] != "ferry" {
		t.Fatalf("created ConfigMap: %+v %v", cm, err)
	}
	// Someone else (the install, a deposed leader) changes the object.
	cm.Labels["extra"] = "kept"
	cm.Data = map[string]string{"README": "the agent's state"}
	cm.BinaryData[statestore.Key] = []byte("other writer")
	if _, err := cs.CoreV1().ConfigMaps("ferry-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, []byte("two")); err != nil {
		t.Fatalf("Save after another writer: %v", err)
	}
	cm, _ = cs.CoreV1().ConfigMaps("ferry-system").Get(ctx, "ferry-agent-state", metav1.GetOptions{})
	if string(cm.BinaryData[statestore.Key]) != "two" || cm.Labels["extra"] != "kept" || cm.Data["README"] == "" {
		t.Fatalf("after the conflict: labels %v data %v state %q", cm.Labels, cm.Data, cm.BinaryData[statestore.Key])
	}
	found := false
	for _, mf := range cm.ManagedFields {
		found = found || (mf.Manager == statestore.FieldManager && mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), statestore.Key))
	}
	if !found {
		t.Errorf("the state is not owned by field manager %s: %+v", statestore.FieldManager, cm.ManagedFields)
	}
	if err := a.Save(ctx, bytes.Repeat([]byte("x"), 1001)); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("Save over MaxBytes: %v", err)
	}
	b, err := statestore.New(cs, "ferry-system", "ferry-agent-state", statestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Load(ctx); err != nil || string(got) != "two" {
		t.Fatalf("a fresh store loads %q, %v", got, err)
	}
	if err := b.Save(ctx, []byte("three")); err != nil {
		t.Fatal(err)
	}
	// a's resourceVersion is stale now: it writes anyway, once more.
	if err := a.Save(ctx, []byte("four")); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Load(ctx); string(got) != "four" {
		t.Fatalf("after two writers: %q", got)
	}
}
