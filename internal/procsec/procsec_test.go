package procsec

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestHideFromSameUser: after HideFromSameUser the process is not
// dumpable, and a child of the same uid that is not root cannot read its
// environment.
func TestHideFromSameUser(t *testing.T) {
	if os.Getenv("PROCSEC_CHILD") == "1" {
		return
	}
	// Run in a child so the test binary itself stays dumpable; as root,
	// the child runs as nobody, as a non-root agent would.
	bin := os.Args[0]
	cmd := exec.Command(bin, "-test.run=^TestHideFromSameUserChild$", "-test.v")
	if os.Geteuid() == 0 {
		a, err := BuildAccount("")
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "procsec-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.Chmod(dir, 0o755)
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(dir, "procsec.test")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(bin, "-test.run=^TestHideFromSameUserChild$", "-test.v")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.UID, Gid: a.GID, Groups: []uint32{}}}
	}
	cmd.Env = append(os.Environ(), "PROCSEC_CHILD=1", "PROCSEC_SECRET=procsec-canary-value")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("child did not pass:\n%s", out)
	}
}

// TestHideFromSameUserChild runs only as TestHideFromSameUser's child.
func TestHideFromSameUserChild(t *testing.T) {
	if os.Getenv("PROCSEC_CHILD") != "1" {
		t.Skip("run by TestHideFromSameUser")
	}
	if d, err := Dumpable(); err != nil || !d {
		t.Fatalf("before: dumpable %v, %v; want true", d, err)
	}
	if err := HideFromSameUser(); err != nil {
		t.Fatal(err)
	}
	if d, err := Dumpable(); err != nil || d {
		t.Fatalf("after: dumpable %v, %v; want false", d, err)
	}
	if os.Geteuid() == 0 {
		t.Fatal("the child runs as root; root reads /proc of anyone")
	}
	out, _ := exec.Command("sh", "-c", "cat /proc/$PPID/environ").CombinedOutput()
	if strings.Contains(string(out), "procsec-canary-value") {
		t.Fatal("a same-uid child read the environment of a non-dumpable parent")
	}
}

func TestBuildAccount(t *testing.T) {
	if a, err := BuildAccount("self"); a != nil || err != nil {
		t.Fatalf("self: %+v %v", a, err)
	}
	a, err := BuildAccount("")
	if os.Geteuid() == 0 {
		if err != nil || a == nil || a.Name != DefaultBuildUser || a.UID == 0 {
			t.Fatalf("default as root: %+v %v, want %s", a, err, DefaultBuildUser)
		}
		if b, err := BuildAccount("1234:5678"); err != nil || b.UID != 1234 || b.GID != 5678 {
			t.Fatalf("1234:5678: %+v %v", b, err)
		}
		if b, err := BuildAccount("root"); b != nil || err != nil {
			t.Fatalf("root is the agent's own user, want nil: %+v %v", b, err)
		}
	} else if a != nil || err != nil {
		t.Fatalf("default as non-root: %+v %v, want nil", a, err)
	}
	if _, err := BuildAccount("no-such-user-xyz"); err == nil {
		t.Fatal("unknown user accepted")
	}
	if _, err := BuildAccount("1:x"); err == nil {
		t.Fatal("1:x accepted")
	}
}
