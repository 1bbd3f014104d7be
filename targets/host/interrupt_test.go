package host

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ferry-wasm/ferry/deploy"
)

// instrumentedModule instruments wasm, compiles it on a plain wazero runtime
// with WASI and instantiates it without running anything.
func instrumentedModule(t *testing.T, wasm []byte) (api.Module, api.MutableGlobal) {
	t.Helper()
	out, err := instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	cm, err := rt.CompileModule(ctx, out)
	if err != nil {
		t.Fatalf("instrumented module does not compile: %v", err)
	}
	if _, ok := cm.ExportedFunctions()[interruptExport]; ok {
		t.Fatalf("%s exported as a function", interruptExport)
	}
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	g, ok := mod.ExportedGlobal(interruptExport).(api.MutableGlobal)
	if !ok {
		t.Fatalf("no mutable global %s", interruptExport)
	}
	if g.Get() != 0 {
		t.Fatalf("interrupt global starts at %d", g.Get())
	}
	return mod, g
}

func TestInstrumentFixtures(t *testing.T) {
	for _, name := range []string{"hello", "echo", "big", "loop", "membomb", "recurse", "trap", "raw", "stderr", "noexport"} {
		t.Run(name, func(t *testing.T) {
			mod, _ := instrumentedModule(t, fixture(t, name))
			if fn := mod.ExportedFunction("_start"); fn == nil && name != "noexport" {
				t.Error("_start lost")
			}
		})
	}
}

func TestInstrumentDecoder(t *testing.T) {
	// instr.wasm imports a global, so the env module must offer one.
	wasm := fixture(t, "instr")
	out, err := instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	defer rt.Close(ctx)
	env, err := rt.CompileModule(ctx, envGlobalModule)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.InstantiateModule(ctx, env, wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig())
	if err != nil {
		t.Fatalf("instrumented instr.wasm: %v", err)
	}
	res, err := mod.ExportedFunction("count").Call(ctx, 1000)
	if err != nil || res[0] != 1000 {
		t.Fatalf("count(1000) = %v, %v", res, err)
	}
	g := mod.ExportedGlobal(interruptExport).(api.MutableGlobal)
	g.Set(1) // noticed within fuelPerYield checks
	if _, err := mod.ExportedFunction("count").Call(ctx, 10*fuelPerYield); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("count with the interrupt set: %v, want a trap", err)
	}
}

// envGlobalModule is (module (global (export "g") i32 (i32.const 1))).
var envGlobalModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x06, 0x06, 0x01, 0x7f, 0x00, 0x41, 0x01, 0x0b, // global section
	0x07, 0x05, 0x01, 0x01, 'g', 0x03, 0x00, // export section
}

func TestInstrumentInterruptsLoop(t *testing.T) {
	mod, g := instrumentedModule(t, fixture(t, "loop"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { g.Set(1) })
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := mod.ExportedFunction("_start").Call(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("loop ended with %v, want a trap", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the interrupt did not stop the loop")
	}
}

func TestInstrumentRefused(t *testing.T) {
	clash := append([]byte("\x00asm\x01\x00\x00\x00"),
		0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b, // global section
		0x07, byte(1+1+len(interruptExport)+2), 0x01, byte(len(interruptExport)))
	clash = append(clash, interruptExport...)
	clash = append(clash, 0x03, 0x00)
	tests := []struct {
		name string
		wasm []byte
	}{
		{"start section", fixture(t, "start")},
		{"export clash", clash},
		{"not wasm", []byte("hello")},
		{"truncated", fixture(t, "hello")[:40]},
		{"component", []byte("\x00asm\x0d\x00\x01\x00")},
		{"gc instruction", gcModule},
		{"no memory", []byte("\x00asm\x01\x00\x00\x00")},
		{"no functions", []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01")},
		{"64-bit memory", []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x04\x01")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := instrument(tt.wasm); !errors.Is(err, errNotInstrumentable) {
				t.Errorf("instrument: %v, want errNotInstrumentable", err)
			}
		})
	}
}

// gcModule has one function whose body uses a 0xFB (GC proposal)
// instruction, which the decoder does not know.
var gcModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
	0x03, 0x02, 0x01, 0x00, // function 0: type 0
	0x0a, 0x06, 0x01, 0x04, 0x00, 0xfb, 0x00, 0x0b, // code: no locals, 0xFB 0x00, end
}

// TestInstrumentedRuntime: deployed modules run instrumented where the
// compiler is supported, and a module that cannot be instrumented still runs
// (on wazero's own checks).
func TestInstrumentedRuntime(t *testing.T) {
	e := newEnv(t, Options{})
	h := fixture(t, "hello")
	e.deploy(t, app("hello", "", h, "/hello"), h)
	s := fixture(t, "start")
	e.deploy(t, app("start", "", s, "/start"), s)
	g := goGuest(t, "targets/host/testdata/goguest")
	e.deploy(t, app("go", deploy.ExecutorReactor, g, "/go/..."), g)
	if code, body := e.get(t, "/hello"); code != 200 || body != "hello\n" {
		t.Errorf("hello: %d %q", code, body)
	}
	tb := e.rt.table.Load()
	var m match
	if !tb.any.lookup("/hello", &m) {
		t.Fatal("no route")
	}
	if got, want := m.t.comp.eng.safe, !compilerSupported(); got != want {
		t.Errorf("hello runs on a safe engine: %v, want %v", got, want)
	}
	if !tb.any.lookup("/start", &m) || !m.t.comp.eng.safe {
		t.Error("start.wasm does not run on a safe engine")
	}
	if !tb.any.lookup("/go/x", &m) || m.t.comp.eng.safe != !compilerSupported() {
		t.Error("the Go guest is not instrumented")
	}
}

// TestClientGoneStopsGuest: a client that gives up stops its guest long
// before the guest's deadline.
func TestClientGoneStopsGuest(t *testing.T) {
	e := newEnv(t, Options{})
	g := goGuest(t, "targets/host/testdata/goguest")
	a := app("spin", deploy.ExecutorReactor, g, "/...")
	a.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(time.Minute)}
	e.deploy(t, a, g)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/spin", nil)
	if _, err := e.srv.Client().Do(req); err == nil {
		t.Fatal("the spinning guest answered")
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(e.logs.String(), "client went away") {
		if time.Now().After(deadline) {
			t.Fatal("the guest was not stopped when its client went away")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := e.get(t, "/"); code != 200 || body != "goguest" {
		t.Errorf("next request: %d %q", code, body)
	}
}

func TestCallStateContext(t *testing.T) {
	cs := getCall(nil)
	defer putCall(cs)
	for round := range 3 { // the pooled callState is reused
		parent, cancelParent := context.WithCancel(context.Background())
		timeout := time.Hour
		if round == 1 {
			timeout = 20 * time.Millisecond
		}
		cs.begin(parent, timeout)
		var fired atomic.Int32
		cs.setInterrupt(func() { fired.Add(1) })
		if cs.Err() != nil || cs.Value(callKey{}) != cs {
			t.Fatalf("round %d: fresh context: err %v", round, cs.Err())
		}
		switch round {
		case 0:
			cancelParent()
		case 2:
			cs.cancelFn()
		}
		select {
		case <-cs.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: not done", round)
		}
		want := []error{context.Canceled, context.DeadlineExceeded, context.Canceled}[round]
		if !errors.Is(cs.Err(), want) {
			t.Errorf("round %d: err %v, want %v", round, cs.Err(), want)
		}
		if !cs.clearInterrupt() || fired.Load() != 1 {
			t.Errorf("round %d: interrupt fired %d times", round, fired.Load())
		}
		cs.finish()
		cancelParent()
		cs.reset()
	}
}

// TestSpinningGuestDoesNotBlockGC: native code cannot be preempted, so a
// guest that never calls the host must still leave it now and then, or a
// garbage collection (which stops every goroutine) waits for it forever,
// and with it the timer that would interrupt it.
func TestSpinningGuestDoesNotBlockGC(t *testing.T) {
	e := newEnv(t, Options{})
	g := goGuest(t, "targets/host/testdata/goguest")
	a := app("spin", deploy.ExecutorReactor, g, "/...")
	a.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(3 * time.Second)}
	e.deploy(t, a, g)
	w := fixture(t, "loop")
	l := app("loop", deploy.ExecutorWAGI, w, "/loop")
	l.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(3 * time.Second)}
	e.deploy(t, l, w)
	codes := make(chan int, 2)
	for _, path := range []string{"/spin", "/loop"} {
		go func() {
			code, _ := e.get(t, path)
			codes <- code
		}()
	}
	time.Sleep(300 * time.Millisecond) // both guests spinning
	gcDone := make(chan struct{})
	go func() {
		runtime.GC()
		close(gcDone)
	}()
	select {
	case <-gcDone:
	case <-time.After(30 * time.Second):
		t.Fatal("a garbage collection waited for the spinning guests")
	}
	for range 2 {
		if code := <-codes; code != http.StatusGatewayTimeout {
			t.Errorf("spinning guest: status %d, want 504", code)
		}
	}
}

func TestAppendSLEB(t *testing.T) {
	for _, tt := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0x00}}, {1, []byte{0x01}}, {63, []byte{0x3F}}, {64, []byte{0xC0, 0x00}},
		{-1, []byte{0x7F}}, {-64, []byte{0x40}}, {-65, []byte{0xBF, 0x7F}},
		{4096, []byte{0x80, 0x20}},
	} {
		if got := appendSLEB(nil, tt.v); string(got) != string(tt.want) {
			t.Errorf("appendSLEB(%d) = % x, want % x", tt.v, got, tt.want)
		}
	}
}
