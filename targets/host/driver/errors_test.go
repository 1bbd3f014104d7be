package driver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestErrorAnswersMapToSentinels checks the client's side of the error
// contract alone (the real server's side is exercised end to end in
// package control): each status and code an answer carries becomes the
// sentinel callers test with errors.Is, inside an *APIError that keeps
// the host's message and code.
func TestErrorAnswersMapToSentinels(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   error
	}{
		{400, api.CodeBadRequest, driver.ErrBadRequest},
		{401, api.CodeUnauthorized, driver.ErrUnauthorized},
		{403, api.CodeVerification, targets.ErrVerification},
		{404, api.CodeNotFound, driver.ErrNotFound},
		{404, api.CodeArtifactNotFound, driver.ErrArtifactNotFound},
		{404, api.CodeLeaseNotFound, driver.ErrLeaseLost},
		{409, api.CodeNoPrevious, driver.ErrNoPrevious},
		{409, api.CodeLocked, driver.ErrLocked},
		{410, api.CodeLeaseLost, driver.ErrLeaseLost},
		{422, api.CodeRejected, targets.ErrUnhealthy},
		{502, api.CodeUnavailable, targets.ErrUnavailable},
		{503, api.CodeUnavailable, targets.ErrUnavailable},
		{500, api.CodeInternal, driver.ErrServer},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: "the host says why", Code: tc.code})
		}))
		c, err := driver.NewClient(srv.URL, "tok", driver.ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.App(context.Background(), "web")
		srv.Close()
		var ae *driver.APIError
		if !errors.Is(err, tc.want) || !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.Code != tc.code || ae.Message != "the host says why" {
			t.Errorf("%d %s: err = %#v, want an *APIError wrapping %v with the host's status, code and message", tc.status, tc.code, err, tc.want)
		}
	}
}

// TestSecretHashesAreTheHosts: a client computes the hashes a host with
// the same token reports (api.SecretHashes under api.SecretHashKey of the
// token), so a plan can tell a changed secret without reading it back.
func TestSecretHashesAreTheHosts(t *testing.T) {
	c, err := driver.NewClient("http://127.0.0.1:1", "tok", driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"api_key": "v"}
	got := c.SecretHashes("web", secrets)
	want := api.SecretHashes(api.SecretHashKey("tok"), "web", secrets)
	if got["api_key"] != want["api_key"] || got["api_key"] == "" {
		t.Fatalf("client hash %q, host hash %q", got["api_key"], want["api_key"])
	}
	other, _ := driver.NewClient("http://127.0.0.1:1", "other-token", driver.ClientOptions{})
	if other.SecretHashes("web", secrets)["api_key"] == got["api_key"] {
		t.Error("another token gives the same hash")
	}
}
