package kubeconfig

import (
	"os"
	"path/filepath"
	"testing"
)

const twoClusters = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
- name: b
  cluster: {server: "https://127.0.0.1:7443"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx-a
  context: {cluster: a, user: u}
- name: ctx-b
  context: {cluster: b, user: u}
current-context: ctx-a
`

func TestLoad(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(twoClusters), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ context, want string }{
		{"", "https://127.0.0.1:6443"},
		{"ctx-b", "https://127.0.0.1:7443"},
	} {
		cfg, err := Load(path, tc.context)
		if err != nil {
			t.Fatalf("context %q: %v", tc.context, err)
		}
		if cfg.Host != tc.want {
			t.Errorf("context %q: host %s, want %s", tc.context, cfg.Host, tc.want)
		}
	}
	if _, err := Load(path, "nope"); err == nil {
		t.Error("an unknown context loaded")
	}
	t.Setenv("KUBECONFIG", path)
	if cfg, err := Load("", "ctx-b"); err != nil || cfg.Host != "https://127.0.0.1:7443" {
		t.Errorf("$KUBECONFIG with a context: %v %v", cfg, err)
	}
}
