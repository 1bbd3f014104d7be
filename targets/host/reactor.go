package host

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

// instance is one initialised reactor instance.
type instance struct {
	mod    api.Module
	handle api.Function
	uses   int
	mem    int64
	stack  [1]uint64
	// fire sets the instrumented module's interrupt global (nil under a
	// safe engine).
	fire func()
	// ref is the call the instance serves, for its stdout, stderr, random
	// source and sleep (guestlog.go); set by the goroutine running it.
	ref *callRef
}

// pool keeps idle reactor instances of a component, most recently used first.
// Instances are created on demand, so the pool never holds more than the
// component's concurrency limit.
type pool struct {
	c       *component
	max     int
	maxUses int

	mu     sync.Mutex
	idle   []*instance
	closed bool
	// replacing is set while a goroutine creates the successor of an
	// instance retired after maxUses requests; closeAll waits for it.
	replacing bool
	bg        sync.WaitGroup
}

// newInstance instantiates the module and runs _initialize.
func (p *pool) newInstance(ctx context.Context) (*instance, error) {
	c := p.c
	cs := getCall(c)
	defer putCall(cs)
	for _, kv := range c.env {
		cs.env = append(cs.env, kv...)
		cs.env = append(cs.env, 0)
		cs.envN++
	}
	cs.addArg(c.name)
	// The wait for room in the memory budget ends with the request (if
	// any) the instance is made for; the instance itself does not.
	if err := c.reserveMem(ctx); err != nil {
		return nil, err
	}
	if b, ok := ctx.(budgetCtx); ok {
		ctx = b.Context
	}
	ictx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ictx = context.WithValue(ictx, callKey{}, cs)
	ictx = experimental.WithMemoryAllocator(ictx, memAllocator{})
	cs.initCtx = ictx
	// The instance's streams follow the call it serves: _initialize's now,
	// then each request's.
	ref := &callRef{cs: cs}
	defer func() { ref.cs = nil }()
	cfg := c.cfg.WithStderr(&guestStream{ref: ref, stream: "stderr"}).
		WithStdout(&guestStream{ref: ref, stream: "stdout"}).
		WithRandSource(&guestRand{ref: ref}).WithNanosleep(ref.sleepFn())
	// The instance outlives this context: wazero only watches it during
	// instantiation when CloseOnContextDone is set.
	mod, err := c.eng.rt.InstantiateModule(ictx, c.mod.cm, cfg)
	if err != nil {
		c.releaseMem()
		return nil, err
	}
	inst := &instance{mod: mod, ref: ref}
	if !c.eng.safe {
		g, err := startInstance(ictx, mod, "_initialize")
		if err == nil && ictx.Err() != nil {
			err = ictx.Err()
		}
		if err != nil {
			mod.Close(context.Background())
			c.releaseMem()
			return nil, err
		}
		inst.fire = func() { g.Set(1) }
	}
	fn := mod.ExportedFunction(abi.ReactorHandler)
	if fn == nil {
		mod.Close(context.Background())
		c.releaseMem()
		return nil, fmt.Errorf("%w: %s", ErrMissingExport, abi.ReactorHandler)
	}
	inst.handle = fn
	if m := mod.Memory(); m != nil {
		inst.mem = int64(m.Size())
	}
	c.alive.Add(1)
	c.mem.Add(inst.mem)
	c.m.instances.Inc()
	return inst, nil
}

// get returns an idle instance or a new one.
func (p *pool) get(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return inst, nil
	}
	p.mu.Unlock()
	return p.newInstance(budgetCtx{context.WithoutCancel(ctx), ctx})
}

// put returns a healthy instance to the pool, or discards it when the pool
// is closed, full, or the instance has served its quota.
func (p *pool) put(inst *instance) {
	if m := inst.mod.Memory(); m != nil {
		sz := int64(m.Size())
		p.c.mem.Add(sz - inst.mem)
		inst.mem = sz
	}
	p.mu.Lock()
	retired := inst.uses >= p.maxUses
	if p.closed || len(p.idle) >= p.max || retired {
		replace := retired && !p.closed && !p.replacing
		if replace {
			p.replacing = true
			p.bg.Add(1)
		}
		p.mu.Unlock()
		p.discard(inst)
		if replace {
			go p.replace()
		}
		return
	}
	p.idle = append(p.idle, inst)
	p.mu.Unlock()
}

// replace creates the successor of a retired instance off the request
// path, so that no request waits for a module to be instantiated and
// initialised (a Go guest's runtime takes about 4 ms) every maxUses
// requests. On failure nothing is pooled: the next request that finds no
// idle instance creates one and reports the error.
func (p *pool) replace() {
	defer p.bg.Done()
	inst, err := p.newInstance(context.Background())
	p.mu.Lock()
	p.replacing = false
	if err != nil {
		p.mu.Unlock()
		return
	}
	if p.closed || len(p.idle) >= p.max {
		p.mu.Unlock()
		p.discard(inst)
		return
	}
	p.idle = append(p.idle, inst)
	p.mu.Unlock()
}

func (p *pool) discard(inst *instance) {
	inst.mod.Close(context.Background())
	p.c.releaseMem()
	p.c.alive.Add(-1)
	p.c.mem.Add(-inst.mem)
	p.c.m.instances.Dec()
}

func (p *pool) closeAll() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.bg.Wait() // a successor being created is discarded once ready
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, inst := range idle {
		p.discard(inst)
	}
}

// runReactor calls ferry_handle on a pooled instance. A trap, a timeout or
// a non-zero result discards the instance.
func (c *component) runReactor(ctx context.Context, cs *callState, r *http.Request, m *match) error {
	cs.req, cs.m = r, m
	leave, err := c.enterApp(ctx)
	if err != nil {
		return err
	}
	defer leave()
	inst, err := c.pool.get(ctx)
	if err != nil {
		return fmt.Errorf("instantiating: %w", err)
	}
	inst.uses++
	inst.stack[0] = 0
	inst.ref.cs = cs
	defer func() { inst.ref.cs = nil }()
	interrupted := false
	if inst.fire != nil {
		cs.setInterrupt(inst.fire)
		err = inst.handle.CallWithStack(ctx, inst.stack[:])
		interrupted = cs.clearInterrupt()
	} else {
		sctx, cancel := cs.safeContext()
		err = inst.handle.CallWithStack(sctx, inst.stack[:])
		cancel()
	}
	if err == nil && inst.stack[0] != 0 {
		err = fmt.Errorf("ferry_handle returned %d", int32(uint32(inst.stack[0])))
	}
	if err == nil && interrupted {
		// The interrupt fired as the call returned: the instance may trap
		// at its next check, so it is not reused.
		c.pool.discard(inst)
		return nil
	}
	if err != nil || inst.mod.IsClosed() {
		c.pool.discard(inst)
		if err == nil {
			err = fmt.Errorf("instance closed during the call")
		}
		return err
	}
	c.pool.put(inst)
	return nil
}

// writeReactorHead sets the headers the guest gave to resp_start and returns
// the status and body.
func (c *component) writeReactorHead(w http.ResponseWriter, cs *callState) (int, []byte) {
	if !cs.started {
		return http.StatusOK, cs.out.b
	}
	h := w.Header()
	rest := cs.hdr
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		name := http.CanonicalHeaderKey(string(bytes.TrimSpace(k)))
		if name == "Content-Length" || name == "Transfer-Encoding" || name == "Connection" {
			continue
		}
		h.Add(name, string(bytes.TrimSpace(v)))
	}
	return cs.status, cs.out.b
}

// budgetCtx is the context of an instance created for a request: it does
// not end with the request (the instance outlives it), but its wait for
// room in the memory budget does (Done is the request's).
type budgetCtx struct {
	context.Context
	req context.Context
}

// Done implements context.Context: the request's.
func (b budgetCtx) Done() <-chan struct{} { return b.req.Done() }
