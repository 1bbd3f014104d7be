package host

import (
	"testing"

	"github.com/ferry-wasm/ferry/deploy"
)

func TestSmoke(t *testing.T) {
	e := newEnv(t, Options{})
	e.deploy(t, app("hello", deploy.ExecutorWAGI, fixture(t, "hello"), "/hello"), fixture(t, "hello"))
	code, body := e.get(t, "/hello")
	t.Logf("%d %q", code, body)
	g := goGuest(t, "examples/hello-go")
	e.deploy(t, app("go", deploy.ExecutorReactor, g, "/..."), g)
	code, body = e.get(t, "/x?name=ferry")
	t.Logf("%d %q", code, body)
	t.Log(e.logs.String())
}
