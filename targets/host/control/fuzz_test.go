package control_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/control"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// FuzzPutRequest sends arbitrary bodies and app names to PUT
// /v1/apps/{name} of a real control server (real runtime and state store;
// no registry, so nothing leaves the machine and no artifact can be
// fetched). The server must never panic or answer 500; it can never
// deploy (no 2xx, nothing listed afterwards); and no secret value of a
// body that decodes as a PutRequest may appear in the response or the
// host's log unless it also appears when the same request is sent with
// its secrets removed (where it is part of the name, ref or digest).
//
//	go test ./targets/host/control -run '^$' -fuzz FuzzPutRequest -fuzztime 60s
func FuzzPutRequest(f *testing.F) {
	good := "127.0.0.1:5000/apps/hello@sha256:" + strings.Repeat("ab", 32)
	for _, s := range []struct{ name, body string }{
		{"hello", `{"ref":"` + good + `"}`},
		{"hello", `{"ref":"127.0.0.1:5000/apps/hello","digest":"sha256:` + strings.Repeat("cd", 32) + `","secrets":{"api_key":"Zm9vYmFyYmF6cXV4"}}`},
		{"hello", `{"ref":"` + good + `","digest":"sha256:` + strings.Repeat("00", 32) + `"}`},
		{"hello", `{"ref":"127.0.0.1:5000/apps/hello:latest"}`},
		{"hello", `{"ref":"` + good + `","extra":1}`},
		{"hello", `{"ref":1}`},
		{"hello", `{"secrets":{"k":"v3ry-s3cret-valu3"}}`},
		{"-bad", `{"ref":"` + good + `"}`},
		{"hello", ``},
		{"hello", `{"ref":"` + good + `"} trailing`},
	} {
		f.Add(s.name, []byte(s.body))
	}
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := f.TempDir()
	rt, err := host.New(host.Options{StateDir: dir, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { rt.Close(f.Context()) })
	st, err := state.Open(dir + "/state")
	if err != nil {
		f.Fatal(err)
	}
	srv, err := control.NewServer(control.Options{Runtime: rt, Store: st, InsecureSkipVerify: true, Token: testToken, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	send := func(t *testing.T, name string, body []byte) (int, string, string) {
		mark := len(logs.String())
		req := httptest.NewRequest(http.MethodPut, "/v1/apps/"+url.PathEscape(name), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String(), logs.String()[mark:]
	}
	worth := regexp.MustCompile(`^[A-Za-z0-9+/=_-]{8,}$`)
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		code, resp, logged := send(t, name, body)
		if code == http.StatusInternalServerError || code < 400 {
			t.Fatalf("PUT %q %q = %d %s", name, body, code, resp)
		}
		if len(srv.List()) != 0 {
			t.Fatalf("PUT %q %q deployed something", name, body)
		}
		var req api.PutRequest
		if json.Unmarshal(body, &req) != nil || len(req.Secrets) == 0 {
			return
		}
		bare := req
		bare.Secrets = nil
		b, _ := json.Marshal(bare)
		_, resp0, logged0 := send(t, name, b)
		for _, v := range req.Secrets {
			if !worth.MatchString(v) {
				continue
			}
			for _, out := range []struct{ what, text, base string }{{"response", resp, resp0}, {"log", logged, logged0}} {
				if strings.Contains(out.text, v) && !strings.Contains(out.base, v) {
					t.Fatalf("the %s shows secret value %q:\n%s", out.what, v, out.text)
				}
			}
		}
	})
}
