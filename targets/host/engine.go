package host

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

// engine is one wazero runtime; there is one per distinct memory limit,
// because wazero sets the limit per runtime. They share one compilation
// cache, so a module compiled under one limit is not recompiled under
// another.
type engine struct {
	rt    wazero.Runtime
	pages uint32
	// safe engines use wazero's CloseOnContextDone; the others run
	// instrumented modules (see interrupt.go).
	safe bool
	// offered are the function definitions of the host modules, by
	// module then name, to check imports at deploy.
	offered map[string]map[string]api.FunctionDefinition
}

// engKey identifies an engine.
type engKey struct {
	pages uint32
	safe  bool
}

// modKey identifies a compiled module.
type modKey struct {
	engKey
	digest string
}

// moduleEntry is a compiled module shared by every component using the same
// digest under the same memory limit. refs counts those components.
type moduleEntry struct {
	key   modKey
	ready chan struct{}
	cm    wazero.CompiledModule
	err   error
	refs  int
}

// engineFor returns the engine for a memory limit and termination mode,
// creating it on first use.
func (r *Runtime) engineFor(ctx context.Context, pages uint32, safe bool) (*engine, error) {
	r.engMu.Lock()
	defer r.engMu.Unlock()
	k := engKey{pages: pages, safe: safe}
	if e := r.engines[k]; e != nil {
		return e, nil
	}
	// NewRuntimeConfig picks the compiler where wazero supports it and the
	// interpreter elsewhere (32-bit ARM), where NewRuntimeConfigCompiler
	// would panic.
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(r.cache).
		WithCloseOnContextDone(safe).
		WithMemoryLimitPages(pages).
		WithDebugInfoEnabled(false)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	e := &engine{rt: rt, pages: pages, safe: safe, offered: map[string]map[string]api.FunctionDefinition{}}
	wasi, err := instantiateWASI(ctx, rt)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiating WASI: %w", err)
	}
	ferry, err := r.instantiateFerry(ctx, rt)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiating ferry host module: %w", err)
	}
	for _, m := range []api.Module{wasi, ferry} {
		defs := map[string]api.FunctionDefinition{}
		for name, d := range m.ExportedFunctionDefinitions() {
			defs[name] = d
		}
		e.offered[m.Name()] = defs
	}
	r.engines[k] = e
	return e, nil
}

// compile returns the compiled module for digest under e, compiling it only
// when no component holds it yet. The caller must release it. Under an engine
// that is not safe the module is instrumented first; errNotInstrumentable
// means it must use a safe engine.
func (r *Runtime) compile(ctx context.Context, e *engine, digest string, wasm []byte) (*moduleEntry, error) {
	key := modKey{engKey: engKey{pages: e.pages, safe: e.safe}, digest: digest}
	r.modMu.Lock()
	if m := r.modules[key]; m != nil {
		m.refs++
		r.modMu.Unlock()
		<-m.ready
		if m.err != nil {
			r.release(m)
			return nil, m.err
		}
		r.metrics.compileHits.Inc()
		return m, nil
	}
	m := &moduleEntry{key: key, ready: make(chan struct{}), refs: 1}
	r.modules[key] = m
	r.modMu.Unlock()

	var err error
	if !e.safe {
		wasm, err = instrument(wasm)
	}
	var cm wazero.CompiledModule
	if err == nil {
		r.metrics.compiles.Inc()
		cctx := r.compileContext(ctx, len(wasm))
		if !e.safe {
			cctx = r.schedCompileContext(cctx, wasm)
		}
		cm, err = e.rt.CompileModule(cctx, wasm)
		if err != nil && !e.safe {
			// Let the safe engine compile the original and report.
			err = fmt.Errorf("%w: %w", errNotInstrumentable, err)
		}
	}
	if errors.Is(err, errNotInstrumentable) {
		m.err = err
	} else if err != nil {
		m.err = fmt.Errorf("%w: %w", ErrMalformedModule, err)
	} else if err := checkImports(e, cm); err != nil {
		cm.Close(ctx)
		m.err = err
	} else {
		m.cm = cm
	}
	close(m.ready)
	if m.err != nil {
		r.release(m)
		return nil, m.err
	}
	return m, nil
}

// parallelCompileMin is the module size from which functions are compiled
// by several goroutines: below it, starting them costs more than it saves
// (a WAT app is a few hundred bytes, a Go app several megabytes).
const parallelCompileMin = 256 << 10

// compileContext asks wazero to compile a module of size bytes with
// CompileWorkers goroutines when it is large enough to gain from them. A Go
// guest's compile, the longest step of a deploy, takes about half as long
// on two cores.
func (r *Runtime) compileContext(ctx context.Context, size int) context.Context {
	if size < parallelCompileMin {
		return ctx
	}
	n := r.opts.CompileWorkers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if n <= 1 {
		return ctx
	}
	return experimental.WithCompilationWorkers(ctx, n)
}

// release drops one reference to m and closes it after the last.
func (r *Runtime) release(m *moduleEntry) {
	r.modMu.Lock()
	m.refs--
	last := m.refs == 0
	if last {
		delete(r.modules, m.key)
	}
	r.modMu.Unlock()
	if last && m.cm != nil {
		m.cm.Close(context.Background())
	}
}

// checkImports refuses a module importing anything the host does not offer,
// naming the first such import.
func checkImports(e *engine, cm wazero.CompiledModule) error {
	for _, d := range cm.ImportedFunctions() {
		mod, name, _ := d.Import()
		defs := e.offered[mod]
		off, ok := defs[name]
		if !ok || !abi.Offered(mod, name) {
			return fmt.Errorf("%w: function %s.%s", ErrImportNotOffered, mod, name)
		}
		if !slices.Equal(off.ParamTypes(), d.ParamTypes()) || !slices.Equal(off.ResultTypes(), d.ResultTypes()) {
			return fmt.Errorf("%w: function %s.%s has type %s, the host offers %s",
				ErrImportNotOffered, mod, name, sigString(d), sigString(off))
		}
	}
	for _, d := range cm.ImportedMemories() {
		mod, name, _ := d.Import()
		return fmt.Errorf("%w: memory %s.%s (the module must define its own memory)", ErrImportNotOffered, mod, name)
	}
	return nil
}

func sigString(d api.FunctionDefinition) string {
	s := "("
	for i, t := range d.ParamTypes() {
		if i > 0 {
			s += ","
		}
		s += api.ValueTypeName(t)
	}
	s += ")->("
	for i, t := range d.ResultTypes() {
		if i > 0 {
			s += ","
		}
		s += api.ValueTypeName(t)
	}
	return s + ")"
}
