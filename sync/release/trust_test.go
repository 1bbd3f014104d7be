package release_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/hosttest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
)

// trustKey is a key pair made by the signer package, its public half
// written to a file.
type trustKey struct {
	priv   *signer.PrivateKey
	pub    []byte
	policy signer.Policy
}

func newTrustKey(t testing.TB, dir, name string) trustKey {
	t.Helper()
	pw := []byte("pw-" + name)
	priv, pub, err := signer.GenerateKeyPair(pw)
	if err != nil {
		t.Fatal(err)
	}
	k, err := signer.LoadPrivateKey(priv, pw)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".pub")
	if err := os.WriteFile(path, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := signer.PolicyFromFiles([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	return trustKey{priv: k, pub: pub, policy: p}
}

// trustSpec is a spec trusting trusted.pub, with the apps good, bad and
// unsigned (the hello-wat guest, each on its own host name) on one host
// target.
func trustSpec(t testing.TB, trusted []byte) map[string]string {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	src := `trust {
  keys = ["./keys/trusted.pub"]
}
`
	for _, a := range []string{"good", "bad", "unsigned"} {
		src += `
app "` + a + `" {
  hosts = ["` + a + `.test"]
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/..."]
  }
}
`
	}
	src += `
target "local" {
  type     = "host"
  apps     = ["good", "bad", "unsigned"]
  endpoint = "http://127.0.0.1:1"
}
`
	return map[string]string{"ferry.hcl": src, "hello.wasm": string(wasm), "keys/trusted.pub": string(trusted)}
}

// TestReleaseTrustPolicy: with a trust block, the release verifies every
// pushed artifact against it before anything is planned. An app signed
// only by a key the policy does not list, or not signed at all, fails with
// a TrustError naming the policy and is left out of the desired state; the
// app a trusted key signed goes on, and plan and apply (against a real
// host that itself trusts both keys, so the spec's policy is what refuses)
// deploy only it.
func TestReleaseTrustPolicy(t *testing.T) {
	keys := t.TempDir()
	trusted, other := newTrustKey(t, keys, "trusted"), newTrustKey(t, keys, "other")
	dir := t.TempDir()
	writeTree(t, dir, trustSpec(t, trusted.pub), nil)
	reg := testenv.Registry(t)
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := release.ReleaseOptions{
		Builder: builder.New(builder.Options{CacheDir: t.TempDir()}), Registry: rc, Repository: reg + "/trust",
	}
	doRelease := func(key *signer.PrivateKey, apps ...string) (*release.Release, error) {
		o := opts
		o.Key, o.Apps = key, apps
		return release.BuildRelease(context.Background(), dir, "c1", o)
	}
	// CI signs good with the trusted key; someone signs bad with another.
	if rel, err := doRelease(trusted.priv, "good"); err != nil || rel.Apps["good"].TrustedBy == "" {
		t.Fatalf("release of good signed by the trusted key: %v (%+v)", err, rel.Apps["good"])
	}
	_, err = doRelease(other.priv, "bad")
	var te *release.TrustError
	if !errors.As(err, &te) || !errors.Is(err, release.ErrUntrusted) || !errors.Is(err, signer.ErrNoMatchingKey) {
		t.Fatalf("release of bad signed by another key: %v; want a TrustError with ErrNoMatchingKey", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "app bad") || !strings.Contains(msg, "trust block at ferry.hcl:1") ||
		!strings.Contains(msg, "keys keys/trusted.pub ("+signer.KeyID(trusted.policy.Keys[0].Public)+")") || !strings.Contains(msg, reg+"/trust/bad@sha256:") {
		t.Errorf("error does not name the app, the policy and the artifact: %s", msg)
	}

	// The release the agent, plan and apply make (no key of their own):
	// good verifies by CI's signature, bad and unsigned are refused.
	rel, err := doRelease(nil)
	if !errors.Is(err, release.ErrUntrusted) {
		t.Fatalf("release: %v; want ErrUntrusted", err)
	}
	if a := rel.Apps["good"]; a.Err != nil || !strings.HasSuffix(a.TrustedBy, "trusted.pub") {
		t.Errorf("good: err %v, trusted by %q", a.Err, a.TrustedBy)
	}
	if a := rel.Apps["bad"]; !errors.Is(a.Err, signer.ErrNoMatchingKey) {
		t.Errorf("bad: %v; want ErrNoMatchingKey", a.Err)
	}
	if a := rel.Apps["unsigned"]; !errors.Is(a.Err, release.ErrUntrusted) || !errors.Is(a.Err, signer.ErrUnsigned) {
		t.Errorf("unsigned: %v; want ErrUntrusted and ErrUnsigned", a.Err)
	}
	d := rel.Desired()
	if len(d.Targets) != 1 || len(d.Targets[0].Apps) != 1 || d.Targets[0].Apps[0].Name != "good" || !slices.Equal(d.Targets[0].Keep, []string{"bad", "unsigned"}) {
		t.Fatalf("desired = %+v; want good only, bad and unsigned kept", d.Targets)
	}

	// Plan and apply on a host that would accept both keys.
	both := signer.Policy{Keys: append(slices.Clone(trusted.policy.Keys), other.policy.Keys...)}
	h := hosttest.Start(t, both, "tok")
	tgts := map[string]targets.Target{"local": h.Client}
	pl, err := plan.Compute(context.Background(), d, tgts, plan.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, ch := range pl.Targets[0].Changes {
		planned = append(planned, ch.App)
	}
	if !slices.Equal(planned, []string{"good"}) {
		t.Errorf("plan changes %v; want [good]", planned)
	}
	if _, err := plan.Apply(context.Background(), pl, tgts, plan.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for app, want := range map[string]int{"good": 200, "bad": 404, "unsigned": 404} {
		if code, body := hostGet(t, h.Apps.URL, app+".test"); code != want {
			t.Errorf("GET %s.test = %d %q; want %d", app, code, body, want)
		}
	}
}

// TestLocalReleaserTrustPolicy: ferry up's releaser shares the gate.
func TestLocalReleaserTrustPolicy(t *testing.T) {
	keys := t.TempDir()
	trusted, other := newTrustKey(t, keys, "trusted"), newTrustKey(t, keys, "other")
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "shop"), trustSpec(t, trusted.pub), nil)
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	in, err := release.LocalReleaser(release.ReleaseOptions{
		Builder: builder.New(builder.Options{CacheDir: t.TempDir()}), Registry: rc,
		Repository: testenv.Registry(t) + "/up", Key: other.priv,
	}, "local").Release(context.Background(), root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"good", "bad", "unsigned"} {
		if !errors.Is(in.AppErrors[a], release.ErrUntrusted) {
			t.Errorf("app %s: %v; want ErrUntrusted", a, in.AppErrors[a])
		}
	}
	if len(in.Desired.Targets) != 1 || len(in.Desired.Targets[0].Apps) != 0 {
		t.Errorf("desired = %+v; want no app", in.Desired.Targets)
	}
}

// TestAgentTrustPolicy: an agent round with the real release pipeline (a
// git repository served by git http-backend, the in-process registry, a
// real host) deploys the app a trusted key signed, and fails only for the
// app signed by an untrusted key, with the policy named in status and
// history; the host, which trusts both keys, never gets it.
func TestAgentTrustPolicy(t *testing.T) {
	keys := t.TempDir()
	trusted, other := newTrustKey(t, keys, "trusted"), newTrustKey(t, keys, "other")
	srv := gittest.NewServer(t, gittest.Options{})
	work := srv.Clone(t)
	files := trustSpec(t, trusted.pub)
	files["ferry.hcl"] = strings.Replace(files["ferry.hcl"], `["good", "bad", "unsigned"]`, `["good", "bad"]`, 1)
	for p, c := range files {
		work.Write(p, c)
	}
	work.Commit("first")
	work.Push()

	reg := testenv.Registry(t)
	dir := t.TempDir()
	rc, err := registry.New(registry.Options{CacheDir: filepath.Join(dir, "oci"), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	ropts := release.ReleaseOptions{
		Builder: builder.New(builder.Options{CacheDir: filepath.Join(dir, "build")}), Registry: rc, Repository: reg + "/agent",
	}
	// Sign what the commit will build, each app by its own key, as CI
	// pipelines would; the agent itself signs nothing.
	specDir := filepath.Join(dir, "spec")
	writeTree(t, specDir, files, nil)
	for app, k := range map[string]*signer.PrivateKey{"good": trusted.priv, "bad": other.priv} {
		o := ropts
		o.Key, o.Apps = k, []string{app}
		release.BuildRelease(context.Background(), specDir, "", o) //nolint:errcheck // bad is refused here too; only the signature matters
	}

	h := hosttest.Start(t, signer.Policy{Keys: append(slices.Clone(trusted.policy.Keys), other.policy.Keys...)}, "tok")
	a, err := agent.NewAgent(agent.Options{
		Repo: srv.URL(), Interval: time.Hour, MaxBackoff: time.Second, DataDir: filepath.Join(dir, "agent"),
		Releaser: release.SpecReleaser(ropts),
		Targets: func(context.Context, *spec.Config) (map[string]targets.Target, error) {
			return map[string]targets.Target{"local": h.Client}, nil
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		a.Close()
	})
	deadline := time.Now().Add(2 * time.Minute)
	var st agent.Status
	for {
		st = a.Status()
		if st.LastRound != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no round finished; status %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	apps := map[string]agent.AppStatus{}
	for _, as := range st.Apps {
		apps[as.Name] = as
	}
	policy := "refused by the spec's trust policy (trust block at ferry.hcl:1: keys keys/trusted.pub (" + signer.KeyID(trusted.policy.Keys[0].Public) + "))"
	if !strings.Contains(apps["bad"].Error, policy) || !strings.Contains(apps["bad"].Error, "/agent/bad@sha256:") {
		t.Errorf("bad's status = %+v; want its error to name the policy %q and the artifact", apps["bad"], policy)
	}
	if g := apps["good"]; g.Error != "" || len(g.Targets) != 1 || !g.Targets[0].Healthy {
		t.Errorf("good's status = %+v; want deployed and healthy", g)
	}
	if !slices.ContainsFunc(st.Errors, func(e string) bool { return strings.Contains(e, "app bad: "+policy) }) {
		t.Errorf("status errors %q do not name app bad and the policy", st.Errors)
	}
	recs, err := a.History("bad", 10)
	if err != nil || len(recs) == 0 || !strings.Contains(recs[0].Error, policy) {
		t.Errorf("history of bad = %+v, %v; want the refusal", recs, err)
	}
	if code, _ := hostGet(t, h.Apps.URL, "good.test"); code != 200 {
		t.Errorf("good.test = %d; want 200", code)
	}
	if code, _ := hostGet(t, h.Apps.URL, "bad.test"); code != 404 {
		t.Errorf("bad.test = %d; want 404 (refused before the host)", code)
	}
}

// hostGet sends GET / with the Host header host to a host's app listener.
func hostGet(t testing.TB, base, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
