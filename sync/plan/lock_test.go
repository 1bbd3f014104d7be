//go:build unix

package plan

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
)

const lockHelperEnv = "FERRY_SYNC_LOCK_HELPER_DIR"

// TestLockDirHelperProcess is not a test: run by TestLockDirAcrossProcesses
// as a separate process, it takes target local's lock in the directory
// named by $FERRY_SYNC_LOCK_HELPER_DIR, says "locked" and waits to be
// killed.
func TestLockDirHelperProcess(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		return // only meaningful as the helper process
	}
	if _, err := lockFile(context.Background(), lockFilePath(dir, "local")); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(2 * time.Minute)
	os.Exit(3) // the parent should have killed us
}

// TestLockDirAcrossProcesses: another process holding a target's lock
// makes Apply wait; once that process is killed with SIGKILL, the kernel
// drops the lock and Apply goes ahead.
func TestLockDirAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockDirHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	m := plantest.NewMem()
	tg := plantest.Tmap("local", m)
	p := mustPlan(t, desiredOne("local", plantest.App("hello", "v1")), tg)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Apply(ctx, p, tg, ApplyOptions{LockDir: dir})
	if !errors.Is(err, ErrLock) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply while another process holds the lock = %v, want ErrLock after waiting", err)
	}
	if puts, _, _, _ := m.Counts(); puts != 0 {
		t.Fatal("applied without the lock")
	}

	if err := cmd.Process.Signal(os.Kill); err != nil { // SIGKILL, by PID
		t.Fatal(err)
	}
	cmd.Wait()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if _, err := Apply(ctx2, p, tg, ApplyOptions{LockDir: dir}); err != nil {
		t.Fatalf("Apply after the holder was killed = %v", err)
	}
	if m.Digests()["hello"] != plantest.Dg("v1") {
		t.Error("not applied")
	}
}

func TestLockFilePath(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"local", "/d/target-local.lock"},
		{"edge-eu.1", "/d/target-edge-eu.1.lock"},
		{"../x", "/d/target-h-" + hashName("../x") + ".lock"},
		{".hidden", "/d/target-h-" + hashName(".hidden") + ".lock"},
		{"a/b", "/d/target-h-" + hashName("a/b") + ".lock"},
	}
	for _, tc := range tests {
		if got := lockFilePath("/d", tc.name); got != tc.want {
			t.Errorf("lockFilePath(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func hashName(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

var _ targets.Locker = (*plantest.LockingMem)(nil)
