// Command goguest is the reactor test guest of targets/host: one handler per
// capability and per kind of failure, selected by path.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/sdk"
	"github.com/ferry-wasm/ferry/sdk/kv"
)

var keep [][]byte

func init() {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Query", r.URL.RawQuery)
		w.Header().Set("X-Pattern", r.Pattern)
		w.Header().Set("X-Ua", r.Header.Get("User-Agent"))
		w.WriteHeader(http.StatusCreated)
		w.Write(b)
	})
	mux.HandleFunc("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user=%s", r.PathValue("id"))
	})
	mux.HandleFunc("/var/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, err := sdk.Variable(r.PathValue("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		// The value itself is answered to the client, never logged.
		sdk.Logger().Info("variable read", "name", r.PathValue("name"))
		fmt.Fprint(w, v)
	})
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		resp, err := sdk.HTTPClient().Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "%d %s", resp.StatusCode, b)
	})
	mux.HandleFunc("/kv/{store}/{key}", func(w http.ResponseWriter, r *http.Request) {
		s := kv.Open(r.PathValue("store"))
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			if err := s.Set(r.PathValue("key"), b); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
		case http.MethodDelete:
			if err := s.Delete(r.PathValue("key")); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
		default:
			v, err := s.Get(r.PathValue("key"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			w.Write(v)
		}
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		sdk.Logger().Warn("guest says hi", "n", 42)
		fmt.Fprintln(os.Stderr, "stderr line from the reactor")
		fmt.Fprint(w, "logged")
	})
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		os.Exit(3)
	})
	mux.HandleFunc("/spin", func(w http.ResponseWriter, r *http.Request) {
		for {
		}
	})
	mux.HandleFunc("/grow", func(w http.ResponseWriter, r *http.Request) {
		for {
			keep = append(keep, make([]byte, 1<<20))
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 1<<16))
		for i := 0; i < 1600; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		// n bytes in 1000-byte writes, a flush halfway, a header set after
		// the head was sent (which must not show), and no Content-Type (so
		// it is sniffed from the first write).
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("X-Before", "yes")
		chunk := []byte(strings.Repeat("s", 1000))
		for i := 0; i < n; i += len(chunk) {
			if i >= n/2 && i < n/2+len(chunk) {
				w.(http.Flusher).Flush()
				w.Header().Set("X-After", "yes")
			}
			if _, err := w.Write(chunk[:min(len(chunk), n-i)]); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusEarlyHints) // informational: not passed on
		w.WriteHeader(http.StatusTeapot)
		w.Header().Set("X-Late", "yes")
		w.WriteHeader(http.StatusInternalServerError) // superfluous: ignored
		io.WriteString(w, "teapot")
	})
	mux.HandleFunc("/file/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile("/" + r.PathValue("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		if ms, err := strconv.Atoi(r.URL.Query().Get("sleep_ms")); err == nil {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		fmt.Fprint(w, os.Getenv("VERSION"))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("HEALTHY") == "no" {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "goguest")
	})
	sdk.Handle(mux)
}

func main() {}
