// Command static-site is a WAGI guest that serves the files its component
// declares (files = ["static/"]): ferry-host mounts them read-only at "/",
// so /static/index.html is an ordinary file to os.ReadFile.
//
// WAGI is CGI over WASI preview 1: the request comes in environment
// variables (PATH_INFO, REQUEST_METHOD, ...), the response goes to stdout,
// headers first. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -o static-site.wasm .
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// root is where the declared directory appears to the guest.
const root = "/static"

// types maps file extensions to content types (the mime package would read
// /etc/mime.types on every start, and a fresh instance starts per request).
var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

func main() {
	p := os.Getenv("PATH_INFO")
	if p == "/healthz" {
		respond("200 OK", "text/plain; charset=utf-8", []byte("ok\n"))
		return
	}
	switch os.Getenv("REQUEST_METHOD") {
	case "GET", "HEAD":
	default:
		respond("405 Method Not Allowed", "text/plain; charset=utf-8", []byte("method not allowed\n"))
		return
	}
	// path.Clean of a rooted path never climbs above "/".
	name := path.Join(root, path.Clean("/"+p))
	if strings.HasSuffix(p, "/") || p == "" {
		name = path.Join(name, "index.html")
	}
	body, err := os.ReadFile(name)
	if err != nil {
		if st, serr := os.Stat(name); serr == nil && st.IsDir() {
			body, err = os.ReadFile(path.Join(name, "index.html"))
			name = path.Join(name, "index.html")
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		respond("404 Not Found", "text/plain; charset=utf-8", []byte("not found\n"))
		return
	case err != nil:
		fmt.Fprintf(os.Stderr, "reading %s: %v\n", name, err)
		respond("500 Internal Server Error", "text/plain; charset=utf-8", []byte("cannot read file\n"))
		return
	}
	ct := types[path.Ext(name)]
	if ct == "" {
		ct = "application/octet-stream"
	}
	if os.Getenv("REQUEST_METHOD") == "HEAD" {
		body = nil
	}
	respond("200 OK", ct, body)
}

// respond writes a CGI response: status and content type, a blank line,
// the body.
func respond(status, contentType string, body []byte) {
	fmt.Printf("Status: %s\nContent-Type: %s\n\n", status, contentType)
	os.Stdout.Write(body)
}
