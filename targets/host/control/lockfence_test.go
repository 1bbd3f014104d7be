package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestMutationWithoutLeaseRefusedWhileLocked: while one client holds the
// host's apply lock, a PUT, DELETE or rollback that carries no lease is
// refused with 409 "locked" and a body naming the holder, and the host
// does not act on it; the holder's own requests (with its lease) go
// through, and once the lock is released a client without a lease works
// again.
func TestMutationWithoutLeaseRefusedWhileLocked(t *testing.T) {
	ctx := context.Background()
	h := newLockHost(t)
	holder := h.client(driver.ClientOptions{})
	held, err := holder.Hold(ctx, "ferry apply, pid 42 on build-1")
	if err != nil {
		t.Fatal(err)
	}
	other := h.client(driver.ClientOptions{})

	for _, rq := range []struct{ method, path, body string }{
		{http.MethodPut, "/v1/apps/intruder", `{"ref":"127.0.0.1:1/x@sha256:` + strings.Repeat("a", 64) + `"}`},
		{http.MethodDelete, "/v1/apps/intruder", ""},
		{http.MethodPost, "/v1/apps/intruder/rollback", ""},
	} {
		req, _ := http.NewRequest(rq.method, h.url+rq.path, strings.NewReader(rq.body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var eb api.ErrorBody
		_ = json.Unmarshal(b, &eb)
		if resp.StatusCode != http.StatusConflict || eb.Code != api.CodeLocked || eb.Lock == nil ||
			eb.Lock.Holder != "ferry apply, pid 42 on build-1" || !strings.Contains(eb.Error, "ferry apply, pid 42 on build-1") {
			t.Errorf("%s %s without a lease while locked = %d %s; want 409 locked naming the holder", rq.method, rq.path, resp.StatusCode, b)
		}
	}
	if err := other.Delete(ctx, "absent-app"); !errors.Is(err, driver.ErrLocked) {
		t.Fatalf("Client.Delete without the lease while locked: %v, want ErrLocked", err)
	}
	// The holder's own change carries its lease and goes through.
	if err := holder.Delete(ctx, "absent-app"); err != nil {
		t.Fatalf("DELETE by the holder: %v", err)
	}
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	// Nobody holds the lock: single-shot clients without a lease work.
	if err := other.Delete(ctx, "absent-app"); err != nil {
		t.Fatalf("DELETE without a lease after unlock: %v", err)
	}
	if h.holder() != "" {
		t.Fatalf("lock still held by %q", h.holder())
	}
}
