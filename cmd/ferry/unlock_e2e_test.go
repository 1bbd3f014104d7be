package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestForceUnlock: a ferry-host's apply lock held by an apply that is gone
// (here: taken by hand with a 10-minute lease) makes `ferry apply
// -lock-timeout` fail naming the holder and the lock id, changing nothing;
// `ferry force-unlock -force ID` releases it and the next apply goes
// through.
func TestForceUnlock(t *testing.T) {
	w := newE2EWorld(t)
	v1, _ := e2eWasm(t)
	w.writeSpec(e2eSpec([]string{"locked"}, func(string) []byte { return v1 }))
	lease, err := w.client.AcquireLock(context.Background(), "a stuck apply on build-7", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	code, out, errs := w.apply("-lock-timeout", "1s")
	if code != 1 || !strings.Contains(errs, "a stuck apply on build-7") || !strings.Contains(errs, lease.ID) {
		t.Fatalf("apply under a held lock: exit %d, want 1 naming the holder and lease %s\n%s\n%s", code, lease.ID, out, errs)
	}
	if got := w.digests(); len(got) != 0 {
		t.Fatalf("apply changed the host without the lock: %v", got)
	}

	if code, out, errs := w.ferry("force-unlock", "-force", "0123456789abcdef0123456789abcdef", w.specDir); code != 1 || !strings.Contains(errs, "no host") {
		t.Fatalf("force-unlock of an unknown id: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := w.ferry("force-unlock", "-force", lease.ID, w.specDir); code != 0 || !strings.Contains(out, "a stuck apply on build-7") || !strings.Contains(out, "Lock released.") {
		t.Fatalf("force-unlock: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := w.apply("-lock-timeout", "10s"); code != 0 || !strings.Contains(out, "1 applied") {
		t.Fatalf("apply after force-unlock: exit %d\n%s\n%s", code, out, errs)
	}
}
