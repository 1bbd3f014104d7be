package testenv

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// CacheDir returns the directory scripts/testtool.sh caches its builds in:
// $FERRY_TEST_CACHE, else $HOME/.cache/ferry-test.
func CacheDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("FERRY_TEST_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("testenv: no home directory for the test cache: %v", err)
	}
	return filepath.Join(home, ".cache", "ferry-test")
}

// FixedPorts is for the few tests that must use fixed loopback addresses
// because the text they test names them (the README's blocks use
// 127.0.0.1:5000, :8080, :8081 and :8090). It takes an exclusive lock shared
// by every test process on the machine that calls it (a flock on
// CacheDir/fixed-ports.lock), waiting up to within for another such test to
// finish, and then fails the test, naming the address, if any of addrs is
// still taken by something else. The lock is released when the test ends.
func FixedPorts(t testing.TB, within time.Duration, addrs ...string) {
	t.Helper()
	dir := CacheDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "fixed-ports.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the flock
	deadline := time.Now().Add(within)
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK {
			t.Fatalf("testenv: lock %s: %v", f.Name(), err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: another test has held %s (the fixed ports %v) for %v; giving up", f.Name(), addrs, within)
		}
		if !logged {
			t.Logf("testenv: waiting for another test that uses the fixed ports %v (lock %s)", addrs, f.Name())
			logged = true
		}
		time.Sleep(time.Second)
	}
	for _, a := range addrs {
		// A port a previous process just closed may linger briefly.
		var err error
		for range 10 {
			var ln net.Listener
			if ln, err = net.Listen("tcp", a); err == nil {
				ln.Close()
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("testenv: %s is in use by another program (is `make run` or a `ferry up` running?): %v", a, err)
		}
	}
}
