package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

const errnoFault = 21 // WASI EFAULT

// instantiateWASI instantiates wazero's WASI preview 1 with environ_* and
// args_* replaced by versions that read the per-call environment from the
// call's context: building a wazero ModuleConfig per request with ~25
// variables would cost more than running the guest.
func instantiateWASI(ctx context.Context, rt wazero.Runtime) (api.Module, error) {
	b := rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	i32 := api.ValueTypeI32
	two := []api.ValueType{i32, i32}
	one := []api.ValueType{i32}
	env := func(cs *callState) ([]byte, int) { return cs.env, cs.envN }
	args := func(cs *callState) ([]byte, int) { return cs.args, cs.argsN }
	b.NewFunctionBuilder().WithGoModuleFunction(sizesGet(env), two, one).WithParameterNames("result.environc", "result.environv_len").Export("environ_sizes_get")
	b.NewFunctionBuilder().WithGoModuleFunction(stringsGet(env), two, one).WithParameterNames("environ", "environ_buf").Export("environ_get")
	b.NewFunctionBuilder().WithGoModuleFunction(sizesGet(args), two, one).WithParameterNames("result.argc", "result.argv_len").Export("args_sizes_get")
	b.NewFunctionBuilder().WithGoModuleFunction(stringsGet(args), two, one).WithParameterNames("argv", "argv_buf").Export("args_get")
	return b.Instantiate(ctx)
}

func sizesGet(sel func(*callState) ([]byte, int)) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		var buf []byte
		var n int
		if cs := callFrom(ctx); cs != nil {
			buf, n = sel(cs)
		}
		mem := mod.Memory()
		if mem == nil || !mem.WriteUint32Le(uint32(stack[0]), uint32(n)) || !mem.WriteUint32Le(uint32(stack[1]), uint32(len(buf))) {
			stack[0] = errnoFault
			return
		}
		stack[0] = 0
	}
}

func stringsGet(sel func(*callState) ([]byte, int)) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		var buf []byte
		if cs := callFrom(ctx); cs != nil {
			buf, _ = sel(cs)
		}
		ptrs, data := uint32(stack[0]), uint32(stack[1])
		mem := mod.Memory()
		if mem == nil || !mem.Write(data, buf) {
			stack[0] = errnoFault
			return
		}
		start := 0
		for i, c := range buf {
			if c != 0 {
				continue
			}
			if !mem.WriteUint32Le(ptrs, data+uint32(start)) {
				stack[0] = errnoFault
				return
			}
			ptrs += 4
			start = i + 1
		}
		stack[0] = 0
	}
}

// instantiateFerry instantiates the "ferry" host module (see ABI.md).
func (r *Runtime) instantiateFerry(ctx context.Context, rt wazero.Runtime) (api.Module, error) {
	b := rt.NewHostModuleBuilder(abi.HostModule)
	funcs := map[string]api.GoModuleFunc{
		"log":                hostLog,
		"kv_get":             hostKVGet,
		"kv_set":             hostKVSet,
		"kv_delete":          hostKVDelete,
		"var_get":            hostVarGet,
		"http_request":       hostHTTPRequest,
		"http_response_head": hostHTTPResponseHead,
		"http_body_read":     hostHTTPBodyRead,
		"http_close":         hostHTTPClose,
		"req_head":           hostReqHead,
		"req_body_read":      hostReqBodyRead,
		"resp_start":         hostRespStart,
		"resp_write":         hostRespWrite,
	}
	for _, name := range abi.HostFunctions {
		sig := abi.HostSignatures[name]
		f := funcs[name]
		if f == nil {
			return nil, fmt.Errorf("host function %s not implemented", name)
		}
		params := make([]api.ValueType, sig.Params)
		for i := range params {
			params[i] = api.ValueTypeI32
		}
		results := make([]api.ValueType, sig.Results)
		for i := range results {
			results[i] = api.ValueTypeI32
		}
		b.NewFunctionBuilder().WithGoModuleFunction(checked(f), params, results).Export(name)
	}
	return b.Instantiate(ctx)
}

// checked makes f trap the guest when the call's context has ended, before
// it starts and after it returns (a key-value write syncs to disk, an
// outbound request waits for a server): a guest looping over slow host
// calls stops at its deadline, not fuelPerYield calls later.
func checked(f api.GoModuleFunc) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		cs := callFrom(ctx)
		cs.trapIfEnded()
		f(ctx, mod, stack)
		cs.trapIfEnded()
	}
}

// view returns guest memory [ptr, ptr+n) without copying.
func view(mod api.Module, ptr, n uint64) ([]byte, bool) {
	mem := mod.Memory()
	if mem == nil {
		return nil, false
	}
	return mem.Read(uint32(ptr), uint32(n))
}

func ret(stack []uint64, v int32) { stack[0] = uint64(uint32(v)) }

// putOut copies data into the guest buffer when it fits and returns the
// full length (the two-call convention of ABI.md).
func putOut(mod api.Module, stack []uint64, ptr, n uint64, data []byte) {
	if len(data) > int(^uint32(0)>>1) {
		ret(stack, abi.ErrTooLarge)
		return
	}
	if uint64(len(data)) <= uint64(uint32(n)) {
		if mem := mod.Memory(); mem == nil || !mem.Write(uint32(ptr), data) {
			ret(stack, abi.ErrInvalid)
			return
		}
	}
	ret(stack, int32(len(data)))
}

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil {
		return
	}
	msg, ok := view(mod, stack[1], stack[2])
	if !ok {
		return
	}
	cs.logRecord(slog.Level(int32(uint32(stack[0]))), msg, "")
}

func hostVarGet(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	name, ok := view(mod, stack[0], stack[1])
	if cs == nil || !ok {
		ret(stack, abi.ErrInvalid)
		return
	}
	v, found := cs.comp.vars[string(name)]
	if !found {
		ret(stack, abi.ErrNotFound)
		return
	}
	putOut(mod, stack, stack[2], stack[3], []byte(v))
}

// kvArgs reads the store and key of a kv_* call and checks the store is
// declared by the component.
func kvArgs(ctx context.Context, mod api.Module, stack []uint64) (*callState, kvStore, string, int32) {
	cs := callFrom(ctx)
	store, ok1 := view(mod, stack[0], stack[1])
	key, ok2 := view(mod, stack[2], stack[3])
	if cs == nil || !ok1 || !ok2 {
		return nil, nil, "", abi.ErrInvalid
	}
	s := cs.comp.stores[string(store)]
	if s == nil {
		return nil, nil, "", abi.ErrDenied
	}
	if len(key) > maxKeyBytes {
		return nil, nil, "", abi.ErrTooLarge
	}
	return cs, s, string(key), 0
}

func hostKVGet(ctx context.Context, mod api.Module, stack []uint64) {
	cs, s, key, code := kvArgs(ctx, mod, stack)
	if code != 0 {
		ret(stack, code)
		return
	}
	v, found, err := s.Get(key)
	switch {
	case err != nil:
		cs.comp.log.LogAttrs(ctx, slog.LevelError, "key-value get failed", slog.String("error", err.Error()))
		ret(stack, abi.ErrIO)
	case !found:
		ret(stack, abi.ErrNotFound)
	default:
		putOut(mod, stack, stack[4], stack[5], v)
	}
}

func hostKVSet(ctx context.Context, mod api.Module, stack []uint64) {
	cs, s, key, code := kvArgs(ctx, mod, stack)
	if code != 0 {
		ret(stack, code)
		return
	}
	if uint32(stack[5]) > maxValueBytes {
		ret(stack, abi.ErrTooLarge)
		return
	}
	val, ok := view(mod, stack[4], stack[5])
	if !ok {
		ret(stack, abi.ErrInvalid)
		return
	}
	if err := s.Set(key, bytes.Clone(val)); err != nil {
		cs.comp.log.LogAttrs(ctx, slog.LevelError, "key-value set failed", slog.String("error", err.Error()))
		ret(stack, abi.ErrIO)
		return
	}
	ret(stack, abi.OK)
}

func hostKVDelete(ctx context.Context, mod api.Module, stack []uint64) {
	cs, s, key, code := kvArgs(ctx, mod, stack)
	if code != 0 {
		ret(stack, code)
		return
	}
	if err := s.Delete(key); err != nil {
		cs.comp.log.LogAttrs(ctx, slog.LevelError, "key-value delete failed", slog.String("error", err.Error()))
		ret(stack, abi.ErrIO)
		return
	}
	ret(stack, abi.OK)
}

func hostHTTPRequest(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	head, ok1 := view(mod, stack[0], stack[1])
	body, ok2 := view(mod, stack[2], stack[3])
	if cs == nil || !ok1 || !ok2 {
		ret(stack, abi.ErrInvalid)
		return
	}
	if len(cs.outbound) >= maxOutboundPerCall {
		ret(stack, abi.ErrTooLarge)
		return
	}
	resp, code := cs.comp.outboundDo(cs.outboundContext(ctx), string(head), bytes.Clone(body))
	if code != 0 {
		ret(stack, code)
		return
	}
	cs.outbound = append(cs.outbound, resp)
	ret(stack, int32(len(cs.outbound)-1))
}

func outboundResp(ctx context.Context, h uint64) *http.Response {
	cs := callFrom(ctx)
	if cs == nil || h >= uint64(len(cs.outbound)) {
		return nil
	}
	return cs.outbound[h]
}

func hostHTTPResponseHead(ctx context.Context, mod api.Module, stack []uint64) {
	resp := outboundResp(ctx, uint64(uint32(stack[0])))
	if resp == nil {
		ret(stack, abi.ErrNotFound)
		return
	}
	var sb strings.Builder
	sb.WriteString(strconv.Itoa(resp.StatusCode))
	sb.WriteByte('\n')
	writeHeaderLines(&sb, resp.Header)
	putOut(mod, stack, stack[1], stack[2], []byte(sb.String()))
}

func hostHTTPBodyRead(ctx context.Context, mod api.Module, stack []uint64) {
	resp := outboundResp(ctx, uint64(uint32(stack[0])))
	if resp == nil || resp.Body == nil {
		ret(stack, abi.ErrNotFound)
		return
	}
	buf, ok := view(mod, stack[1], stack[2])
	if !ok {
		ret(stack, abi.ErrInvalid)
		return
	}
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 || len(buf) == 0 {
			ret(stack, int32(n))
			return
		}
		if errors.Is(err, errEOF) {
			ret(stack, 0)
			return
		}
		if err != nil {
			ret(stack, abi.ErrIO)
			return
		}
	}
}

func hostHTTPClose(ctx context.Context, mod api.Module, stack []uint64) {
	if resp := outboundResp(ctx, uint64(uint32(stack[0]))); resp != nil {
		resp.Body.Close()
	}
}

func hostReqHead(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil || cs.req == nil {
		ret(stack, abi.ErrUnsupported)
		return
	}
	if len(cs.head) == 0 {
		cs.head = appendReqHead(cs.head, cs)
	}
	putOut(mod, stack, stack[0], stack[1], cs.head)
}

func hostReqBodyRead(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil || cs.req == nil {
		ret(stack, abi.ErrUnsupported)
		return
	}
	buf, ok := view(mod, stack[0], stack[1])
	if !ok {
		ret(stack, abi.ErrInvalid)
		return
	}
	n, _ := cs.body.Read(buf)
	ret(stack, int32(n))
}

func hostRespStart(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil || cs.req == nil {
		ret(stack, abi.ErrUnsupported)
		return
	}
	status := int32(uint32(stack[0]))
	head, ok := view(mod, stack[1], stack[2])
	if !ok || cs.started || status < 100 || status > 999 {
		ret(stack, abi.ErrInvalid)
		return
	}
	cs.started = true
	cs.status = int(status)
	cs.hdr = append(cs.hdr[:0], head...)
	ret(stack, abi.OK)
}

func hostRespWrite(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil || cs.req == nil {
		ret(stack, abi.ErrUnsupported)
		return
	}
	p, ok := view(mod, stack[0], stack[1])
	if !ok {
		ret(stack, abi.ErrInvalid)
		return
	}
	if !cs.started {
		cs.started, cs.status = true, http.StatusOK
	}
	if _, err := cs.out.Write(p); err != nil {
		ret(stack, abi.ErrTooLarge)
		return
	}
	ret(stack, abi.OK)
}

// appendReqHead serialises the reactor request head (format in ABI.md).
func appendReqHead(b []byte, cs *callState) []byte {
	r := cs.req
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = append(b, r.RequestURI...)
	if r.RequestURI == "" {
		b = append(b, r.URL.RequestURI()...)
	}
	b = append(b, '\n')
	b = append(b, r.Host...)
	b = append(b, '\n')
	b = append(b, r.RemoteAddr...)
	b = append(b, '\n')
	b = append(b, cs.m.t.pattern...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, int64(len(cs.bodyB)), 10)
	b = append(b, '\n')
	for k, vs := range r.Header {
		for _, v := range vs {
			b = append(b, 'H')
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, '\n')
		}
	}
	for i, name := range cs.m.t.params {
		if i < len(cs.m.params) {
			b = append(b, 'P')
			b = append(b, name...)
			b = append(b, '=')
			b = append(b, cs.m.params[i]...)
			b = append(b, '\n')
		}
	}
	if cs.m.rest != "" {
		b = append(b, "P..."...)
		b = append(b, '=')
		b = append(b, cs.m.rest...)
		b = append(b, '\n')
	}
	return b
}

func writeHeaderLines(sb *strings.Builder, h http.Header) {
	for k, vs := range h {
		for _, v := range vs {
			sb.WriteString(k)
			sb.WriteString(": ")
			sb.WriteString(v)
			sb.WriteByte('\n')
		}
	}
}
