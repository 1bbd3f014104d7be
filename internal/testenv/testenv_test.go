package testenv

import (
	"net/http"
	"testing"
)

func TestRegistryAnswersV2(t *testing.T) {
	addr := Registry(t)
	resp, err := http.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %d, want 200", resp.StatusCode)
	}
}

// TestFreeAddrNeverRepeats is the regression test for a CI failure in which
// one kubetest cluster got the same port for etcd's client and peer URLs
// (the kernel hands a just-closed port out again) and etcd died with
// "address already in use". 2,000 addresses from a range of about 28,000
// ephemeral ports repeat dozens of times unless FreeAddr remembers them.
func TestFreeAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		a := FreeAddr(t)
		if seen[a] {
			t.Fatalf("FreeAddr returned %s twice in one process", a)
		}
		seen[a] = true
	}
}
