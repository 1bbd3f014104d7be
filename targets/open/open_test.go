package open_test

import (
	"errors"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
	kdriver "github.com/ferry-wasm/ferry/targets/kubernetes/driver"
	"github.com/ferry-wasm/ferry/targets/open"
)

const secretToken = "s3cret-control-token-value"

const kubeconfigYAML = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: "t"}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`

func kubeT(kubeconfig, trust string) *spec.Target {
	return &spec.Target{Name: "k", Type: spec.TargetKubernetes, Kubernetes: &spec.KubeTarget{
		Kubeconfig: kubeconfig, Namespace: "default", Mode: spec.KubeModeHost, Image: "ghcr.io/ferry-wasm/ferry-host:v1", Replicas: 1, TrustKeys: []string{trust},
	}}
}

func hostT(name, cred string, eps ...string) *spec.Target {
	return &spec.Target{Name: name, Type: spec.TargetHost, Host: &spec.HostTarget{Endpoints: eps, Credential: cred}}
}

// TestTarget: which driver a spec target opens as, and the errors of
// credentials that are missing, not allowed or unreadable (texts as ferry
// has always printed them).
func TestTarget(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(secretToken+"\n"), 0o600)
	t.Setenv("FERRY_OPEN_TEST_TOKEN", secretToken)
	creds := spec.Credentials{
		"prod": {Name: "prod", Endpoints: []string{"https://h*.example.com:8443"}, TokenFile: tokenFile},
		"env":  {Name: "env", Endpoints: []string{"http://127.0.0.1:*"}, TokenEnv: "FERRY_OPEN_TEST_TOKEN"},
		"nope": {Name: "nope", Endpoints: []string{"http://127.0.0.1:*"}, TokenEnv: "FERRY_OPEN_TEST_UNSET"},
		"ca":   {Name: "ca", Endpoints: []string{"https://h1.example.com:8443"}, CAFile: tokenFile},
	}
	kubeconfigFile := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kubeconfigFile, []byte(kubeconfigYAML), 0o600)
	trustFile := filepath.Join(dir, "cosign.pub")
	os.WriteFile(trustFile, []byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"), 0o600)
	tests := []struct {
		name    string
		target  *spec.Target
		creds   spec.Credentials
		want    string // "client", "group" or "" (error)
		err     string
		unsupp  bool
		absentK bool
	}{
		{name: "one endpoint", target: hostT("a", "", "http://127.0.0.1:1"), want: "client"},
		{name: "several endpoints", target: hostT("a", "", "http://127.0.0.1:1", "http://127.0.0.1:2"), want: "group"},
		{name: "credential from a token file", target: hostT("a", "prod", "https://h1.example.com:8443", "https://h2.example.com:8443"), creds: creds, want: "group"},
		{name: "credential from the environment", target: hostT("a", "env", "http://127.0.0.1:1"), creds: creds, want: "client"},
		{name: "no endpoint", target: hostT("a", ""), err: "target a: no endpoint"},
		{name: "no credentials file", target: hostT("a", "prod", "https://h1.example.com:8443"),
			err: `target a: it names credential "prod", but no credentials file defines it (pass --credentials FILE)`},
		{name: "credential not defined", target: hostT("a", "other", "https://h1.example.com:8443"), creds: creds,
			err: `target a: it names credential "other", which the credentials file does not define (it defines ca, env, nope, prod)`},
		{name: "credential not allowed for an endpoint", target: hostT("a", "prod", "https://h1.example.com:8443", "https://evil.example.net"), creds: creds,
			err: `target a: credential "prod" may not be sent to https://evil.example.net: the credentials file allows it only for https://h*.example.com:8443`},
		{name: "token environment variable empty", target: hostT("a", "nope", "http://127.0.0.1:1"), creds: creds,
			err: "target a: credential nope: environment variable FERRY_OPEN_TEST_UNSET (token_env) is empty; set it to the host's control token"},
		{name: "CA file without certificates", target: hostT("a", "ca", "https://h1.example.com:8443"), creds: creds,
			err: "target a: credential ca: ca_file " + tokenFile + ": no PEM certificates"},
		{name: "kubernetes spinapp", target: &spec.Target{Name: "k", Type: spec.TargetKubernetes, Kubernetes: &spec.KubeTarget{
			Kubeconfig: kubeconfigFile, Namespace: "default", Mode: spec.KubeModeSpinApp, Executor: "containerd-shim-spin"}}, want: "kubernetes"},
		{name: "kubernetes host", target: kubeT(kubeconfigFile, trustFile), want: "kubernetes"},
		{name: "kubernetes without a kubeconfig", target: kubeT(filepath.Join(dir, "absent"), trustFile),
			err: "target k: cluster: stat " + filepath.Join(dir, "absent") + ": no such file or directory"},

		{name: "fleet", target: &spec.Target{Name: "f", Type: spec.TargetFleet, Fleet: &spec.FleetTarget{}},
			err: `target f is of type "fleet" and was not planned: fleet targets are rolled out by the agent (ferry agent, ferry up), which serves their devices`, unsupp: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := open.Target(tc.target, open.Options{Credentials: tc.creds})
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				var ue *open.UnsupportedError
				if errors.Is(err, open.ErrUnsupported) != tc.unsupp || errors.As(err, &ue) != tc.unsupp {
					t.Errorf("unsupported = %v, want %v", errors.Is(err, open.ErrUnsupported), tc.unsupp)
				}
				if strings.Contains(err.Error(), secretToken) {
					t.Errorf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch tg := got.Target.(type) {
			case *kdriver.Driver:
				if tc.want != "kubernetes" {
					t.Errorf("opened a kubernetes driver, want a %s", tc.want)
				}
				for _, ok := range []bool{implements[targets.Differ](tg), implements[targets.OwnerRecorder](tg), implements[targets.SecretHasher](tg)} {
					if !ok {
						t.Errorf("%T lacks an optional interface a kubernetes target has", tg)
					}
				}
				return
			case *driver.Client:
				if tc.want != "client" {
					t.Errorf("opened a client, want a %s", tc.want)
				}
			case *driver.Group:
				if tc.want != "group" {
					t.Errorf("opened a group, want a %s", tc.want)
				}
			default:
				t.Fatalf("opened %T", tg)
			}
			for _, ok := range []bool{
				implements[targets.Locker](got.Target), implements[targets.LockInspector](got.Target),
				implements[targets.RollBacker](got.Target), implements[targets.OwnerRecorder](got.Target),
				implements[targets.SecretHasher](got.Target),
			} {
				if !ok {
					t.Errorf("%T lacks an optional interface a host has", got.Target)
				}
			}
			if got.Key != open.Key(tc.target) {
				t.Errorf("Key = %q, open.Key = %q", got.Key, open.Key(tc.target))
			}
			if strings.Contains(got.Key, secretToken) || strings.Contains(got.Key, tokenFile) || strings.Contains(got.Key, "FERRY_OPEN_TEST_TOKEN") {
				t.Errorf("Key %q holds a secret or where one comes from", got.Key)
			}
		})
	}
}

func implements[I any](v any) bool { _, ok := v.(I); return ok }

// TestKey: the connection identity is stable for equal connections (the
// name does not matter, nor the apps) and moves with the kind, the
// endpoints and the credential's name.
func TestKey(t *testing.T) {
	base := hostT("a", "prod", "https://h1.example.com:8443", "https://h2.example.com:8443")
	same := hostT("b", "prod", "https://h1.example.com:8443", "https://h2.example.com:8443")
	same.Apps = []string{"x"}
	if open.Key(base) != open.Key(same) {
		t.Errorf("Key(%+v) = %q, Key(%+v) = %q; want equal", base, open.Key(base), same, open.Key(same))
	}
	if open.Key(base) != open.Key(base) {
		t.Error("Key is not stable")
	}
	for _, other := range []*spec.Target{
		hostT("a", "prod", "https://h1.example.com:8443"),
		hostT("a", "prod", "https://h1.example.com:8443", "https://h3.example.com:8443"),
		hostT("a", "staging", "https://h1.example.com:8443", "https://h2.example.com:8443"),
		hostT("a", "", "https://h1.example.com:8443", "https://h2.example.com:8443"),
		{Name: "a", Type: spec.TargetKubernetes, Kubernetes: &spec.KubeTarget{}},
	} {
		if open.Key(other) == open.Key(base) {
			t.Errorf("Key(%+v) = Key(base) = %q; want different", other, open.Key(base))
		}
	}
	// A kubernetes target's workload settings shape its driver.
	k1, k2 := kubeT("/k", "/t.pub"), kubeT("/k", "/t.pub")
	if open.Key(k1) != open.Key(k2) {
		t.Errorf("equal kubernetes targets: Key %q and %q", open.Key(k1), open.Key(k2))
	}
	k2.Kubernetes.Replicas = 3
	if open.Key(k1) == open.Key(k2) {
		t.Errorf("Key does not move with replicas: %q", open.Key(k1))
	}
}

// TestFleetTarget opens a fleet target through a real hub: the target is
// the hub's controller for that name, the same one on every open, and a
// changed rollout policy moves the Key.
func TestFleetTarget(t *testing.T) {
	h, err := hub.Open(hub.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ft := &spec.Target{Name: "edge", Type: spec.TargetFleet, Fleet: &spec.FleetTarget{Rollout: spec.DefaultRollout()}}
	a, err := open.Target(ft, open.Options{Fleets: h})
	if err != nil {
		t.Fatal(err)
	}
	b, err := open.Target(ft, open.Options{Fleets: h})
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.Controller("edge")
	if err != nil {
		t.Fatal(err)
	}
	if a.Target != targets.Target(c) || b.Target != a.Target {
		t.Errorf("open gave %T %p and %p, want the hub's controller %p", a.Target, a.Target, b.Target, c)
	}
	changed := *ft
	r := *spec.DefaultRollout()
	r.RateLimit = 7
	changed.Fleet = &spec.FleetTarget{Rollout: &r}
	if open.Key(&changed) == a.Key {
		t.Errorf("Key did not move with the rollout policy: %s", a.Key)
	}
}
