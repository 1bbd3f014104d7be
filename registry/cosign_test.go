package registry_test

import (
	"context"
	"slices"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
)

// TestSignaturesTravelWithCopy signs an app with the real cosign CLI (v2:
// "sha256-<hex>.sig" tag; v3: bundle referrer), checks that Inspect lists
// both, copies the app to another registry and verifies the copy there
// with cosign.
func TestSignaturesTravelWithCopy(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	v2 := testenv.NewCosign(t, "v2.6.5", "")
	v3 := testenv.NewCosign(t, "v3.1.3", "")
	v2.Run(home, false, "generate-key-pair")
	v3.Run(home, false, "signing-config", "create", "--out", "sc.json")

	src, dst := startServer(t).Addr(), startExternalRegistry(t)
	c := newClient(t, registry.Options{})
	app, modules := testApp("v1")
	res, err := c.PushApp(ctx, src+"/apps/hello:v1", app, modules, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// cosign v2: the "sha256-<hex>.sig" tag. Copied and verified alone,
	// because cosign v2 refuses to verify once a v3 bundle sits beside it.
	v2.Run(home, false, "sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", "--yes", res.Ref)
	sigTag := registry.SignatureTag(res.Digest)
	cp, err := c.Copy(ctx, src+"/apps/hello:v1", dst+"/mirror-v2/hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cp.SignatureTags, []string{sigTag}) || len(cp.Referrers) != 0 {
		t.Errorf("copy took signatures %v and referrers %v, want only %s", cp.SignatureTags, cp.Referrers, sigTag)
	}
	v2.Run(home, false, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", "--allow-http-registry", dst+"/mirror-v2/hello@"+res.Digest.String())

	// cosign v3: a bundle referrer (subject = the app).
	v3.Run(home, false, "sign", "--key", "cosign.key", "--signing-config", "sc.json", "--allow-http-registry", "--yes", res.Ref)
	in, err := c.Inspect(ctx, src+"/apps/hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Signatures) != 1 || in.Signatures[0].Tag != sigTag || in.Signatures[0].Kind != "signature" {
		t.Errorf("Inspect signatures = %+v, want %s", in.Signatures, sigTag)
	}
	if len(in.Referrers) != 1 {
		t.Errorf("Inspect referrers = %+v, want the cosign v3 bundle", in.Referrers)
	}
	cp, err = c.Copy(ctx, src+"/apps/hello:v1", dst+"/mirror/hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cp.SignatureTags, []string{sigTag}) || len(cp.Referrers) != 1 {
		t.Errorf("copy took signatures %v and referrers %v", cp.SignatureTags, cp.Referrers)
	}
	copied := dst + "/mirror/hello@" + res.Digest.String()
	in2, err := c.Inspect(ctx, copied)
	if err != nil {
		t.Fatal(err)
	}
	if len(in2.Signatures) != 1 || len(in2.Referrers) != 1 {
		t.Errorf("copy has signatures %+v, referrers %+v", in2.Signatures, in2.Referrers)
	}
	out := v3.Run(home, false, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", "--allow-http-registry", copied)
	t.Logf("cosign v3 verify of the copy:\n%s", out)
}
