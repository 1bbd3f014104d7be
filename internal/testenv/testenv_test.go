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
