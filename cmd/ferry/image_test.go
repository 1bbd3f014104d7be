package main

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/signer"
)

// TestImagePush: `ferry image push REPO:TAG --key` builds the ferry-host
// image from this checkout, pushes the index under the tag, and signs the
// index digest so that ferry's verifier and the real cosign CLI accept it;
// pushing again gives the same digest; --no-sign pushes an unsigned index.
// (One platform keeps the test quick; builder/hostimage tests all three.)
func TestImagePush(t *testing.T) {
	// The go tool's caches stay where they are when HOME moves.
	goenv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		t.Setenv(k, strings.Split(strings.TrimSpace(string(goenv)), "\n")[i])
	}
	work := t.TempDir()
	t.Chdir(work)
	t.Setenv("FERRY_PASSWORD", "test-password")
	t.Setenv("HOME", work)
	if code, out, errs := ferry(t, "keygen"); code != exitOK {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	reg := testenv.Registry(t)
	src := testenv.RepoRoot(t)
	push := func(args ...string) imagePushResult {
		t.Helper()
		code, out, errs := ferry(t, append([]string{"image", "push", "--source", src, "--platform", "linux/amd64", "-o", "json"}, args...)...)
		if code != exitOK {
			t.Fatalf("ferry image push %v: exit %d\n%s\n%s", args, code, out, errs)
		}
		var res imagePushResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("-o json: %v\n%s", err, out)
		}
		return res
	}

	res := push(reg+"/ferry/host:dev", "--key", "cosign.key")
	if !strings.HasPrefix(res.Ref, reg+"/ferry/host@sha256:") || res.Ref != reg+"/ferry/host@"+res.Digest ||
		res.Tag != reg+"/ferry/host:dev" || len(res.Images) != 1 || res.Images[0].Platform != "linux/amd64" ||
		res.Signature == "" || res.KeyID == "" {
		t.Fatalf("result %+v", res)
	}
	tagged, _ := name.ParseReference(res.Tag)
	idx, err := remote.Index(tagged)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d.String() != res.Digest {
		t.Fatalf("the tag points at %s, want %s", d, res.Digest)
	}
	policy, err := signer.PolicyFromFiles([]string{"cosign.pub"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Verify(context.Background(), res.Ref, policy, signer.VerifyOptions{}); err != nil {
		t.Fatalf("ferry's verifier: %v", err)
	}
	cosign := testenv.NewCosign(t, "v2.6.5", "test-password")
	if out := cosign.Run(work, false, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", res.Ref); !strings.Contains(out, res.Digest) {
		t.Fatalf("cosign verify output lacks the digest:\n%s", out)
	}

	again := push(reg+"/ferry/host-unsigned", "--no-sign")
	if again.Digest != res.Digest || again.Signature != "" || again.Tag != "" {
		t.Fatalf("second push: %+v, want the same digest %s, unsigned, untagged", again, res.Digest)
	}
	if _, err := signer.Verify(context.Background(), again.Ref, policy, signer.VerifyOptions{}); !errors.Is(err, signer.ErrUnsigned) {
		t.Fatalf("--no-sign: verify = %v, want unsigned", err)
	}

	code, out, _ := ferry(t, "image", "push", "--source", src, "--platform", "linux/amd64", "--no-sign", reg+"/ferry/host:text")
	if code != exitOK || !strings.Contains(out, "Pushed "+reg+"/ferry/host@"+res.Digest+"\n") || !strings.Contains(out, "Not signed (--no-sign).") {
		t.Fatalf("text output: %d\n%s", code, out)
	}
}

// TestImagePushUsage: mistakes exit 2 before anything is built.
func TestImagePushUsage(t *testing.T) {
	for _, args := range [][]string{
		{"image", "push"},
		{"image", "push", "127.0.0.1:1/x@sha256:" + strings.Repeat("a", 64), "--no-sign"},
		{"image", "push", "127.0.0.1:1/x", "--no-sign", "--platform", "linux"},
		{"image", "push", "127.0.0.1:1/x", "--no-sign", "-o", "yaml"},
	} {
		if code, out, errs := ferry(t, args...); code != exitUsage {
			t.Errorf("ferry %s = %d, want %d\n%s%s", strings.Join(args, " "), code, exitUsage, out, errs)
		}
	}
}
