package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
)

// Deadlines without wazero's CloseOnContextDone.
//
// wazero stops a running guest only when the runtime is configured with
// CloseOnContextDone, and then its compiled code leaves native code for Go at
// every loop header to ask whether the module was closed, and every call
// starts a goroutine watching the context. Go guests (whose functions each
// begin with a loop) ran several times slower for it.
//
// Instead, instrument rewrites a module before it is compiled: it adds two
// mutable i32 globals, an interrupt flag (exported as interruptExport) and a
// fuel counter, and at the start of every function and of every loop body a
// check (appendCheck): decrement the fuel, and when it runs out, leave native
// code for Go once (memory.grow 0), trap if the interrupt is set, refill.
// In native code that is a load, a subtraction, a store and a branch. The
// host arms a request by giving its context (callState) a function that sets
// the interrupt when the context ends (deadline, client gone, response over
// its limit); the guest then traps within fuelPerYield checks, where
// wazero's own check would have stopped it. Instances that were interrupted
// are never reused. The globals are appended after every existing one, so no
// code written before the rewrite can read or write them.
//
// Modules the rewriter does not understand (a start section, the GC
// proposal's instructions, an export name clash, no memory or a 64-bit one)
// and platforms without
// wazero's compiler fall back to an engine with CloseOnContextDone.

// interruptExport names the added global.
const interruptExport = "ferry:interrupt"

// errNotInstrumentable means a module is run with wazero's own termination
// checks instead.
var errNotInstrumentable = errors.New("module cannot be instrumented")

// compilerSupported reports whether wazero uses its compiler here (as
// wazero.NewRuntimeConfig decides); elsewhere the interpreter runs guests and
// the instrumented global would be read from Go concurrently with the
// watchdog's write, so the safe engine is used.
func compilerSupported() bool {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		switch runtime.GOOS {
		case "linux", "darwin", "freebsd", "netbsd", "windows":
			return true
		}
	}
	return false
}

// fuelPerYield is how many checks run between two exits to Go (see
// appendCheck).
const fuelPerYield = 4096

// appendCheck appends the check to b. The interrupt global is int, the fuel
// global fuel:
//
//	fuel -= 1
//	if fuel == 0 {
//		call yield   ;; memory.grow 0, which leaves native code for Go;
//		             ;; if intr { unreachable }; fuel = fuelPerYield
//	}
//
// The exit to Go every fuelPerYield checks is what lets the Go scheduler
// preempt a guest that never calls the host: native code cannot be
// preempted, and a garbage collection waiting for it to stop would wait
// forever (and with it, every timer, including the one that interrupts the
// guest). It is also where the interrupt is read, so a guest stops at most
// fuelPerYield checks after its context ends.
func appendCheck(b []byte, fuel, yield uint32) []byte {
	b = append(b, 0x23) // global.get fuel
	b = binary.AppendUvarint(b, uint64(fuel))
	b = append(b, 0x41, 0x01, 0x6B, 0x24) // i32.const 1, i32.sub, global.set fuel
	b = binary.AppendUvarint(b, uint64(fuel))
	b = append(b, 0x23) // global.get fuel
	b = binary.AppendUvarint(b, uint64(fuel))
	b = append(b, 0x45, 0x04, 0x40, 0x10) // i32.eqz, if, call yield
	b = binary.AppendUvarint(b, uint64(yield))
	return append(b, 0x0B) // end
}

// appendSLEB appends v as a signed LEB128 number (an i32.const immediate).
func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// yieldBody is the code of the added function yield (see appendCheck): it
// leaves native code for Go (memory.grow 0), traps if the interrupt intr is
// set, and refills the fuel. Being a function of its own, it reads the
// interrupt from the instance each time (a compiler may keep a global it
// read earlier on the same path in a register).
func yieldBody(intr, fuel uint32) []byte {
	b := []byte{0x00, 0x41, 0x00, 0x40, 0x00, 0x1A, 0x23} // no locals, i32.const 0, memory.grow 0, drop, global.get intr
	b = binary.AppendUvarint(b, uint64(intr))
	b = append(b, 0x04, 0x40, 0x00, 0x0B, 0x41) // if unreachable end, i32.const
	b = appendSLEB(b, fuelPerYield)
	b = append(b, 0x24) // global.set fuel
	b = binary.AppendUvarint(b, uint64(fuel))
	return append(b, 0x0B)
}

// Section ids and their required order.
const (
	secCustom    = 0
	secImport    = 2
	secType      = 1
	secFunction  = 3
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secCode      = 10
	secDataCount = 12
	secTag       = 13
)

func sectionRank(id byte) int {
	switch id {
	case 13:
		return 6 // tag: between memory and global
	case 6, 7, 8, 9:
		return int(id) + 1
	case 12:
		return 11 // data count: before code
	case 10:
		return 12
	case 11:
		return 13
	}
	return int(id) // 1..5
}

// instrument returns a copy of the module with the interrupt global and
// checks added (see above).
func instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, fmt.Errorf("%w: not a core wasm module", errNotInstrumentable)
	}
	type section struct {
		id      byte
		payload []byte
	}
	var secs []section
	for r := (reader{b: wasm, i: 8}); r.i < len(r.b); {
		id := r.byte()
		n := r.u32()
		p := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", errNotInstrumentable, id, r.err)
		}
		secs = append(secs, section{id, p})
	}

	var importedGlobals, definedGlobals, importedFuncs, definedFuncs, types uint32
	hasGlobal, hasExport, hasMemory, hasTypes, hasFuncs := false, false, false, false, false
	for _, s := range secs {
		switch s.id {
		case secStart:
			return nil, fmt.Errorf("%w: start section", errNotInstrumentable)
		case secImport:
			funcs, n, mems, err := countImports(s.payload)
			if err != nil {
				return nil, err
			}
			importedFuncs, importedGlobals = funcs, n
			hasMemory = hasMemory || mems > 0
		case secMemory:
			r := reader{b: s.payload}
			if r.u32() > 0 {
				hasMemory = true
				if flags := r.byte(); flags&0x04 != 0 {
					return nil, fmt.Errorf("%w: 64-bit memory", errNotInstrumentable)
				}
			}
		case secType:
			r := reader{b: s.payload}
			types, hasTypes = r.u32(), r.err == nil
		case secFunction:
			r := reader{b: s.payload}
			definedFuncs, hasFuncs = r.u32(), r.err == nil
		case secGlobal:
			r := reader{b: s.payload}
			definedGlobals = r.u32()
			hasGlobal = true
			if r.err != nil {
				return nil, fmt.Errorf("%w: global section: %v", errNotInstrumentable, r.err)
			}
		case secExport:
			hasExport = true
			if err := checkExportNames(s.payload); err != nil {
				return nil, err
			}
		}
	}
	if !hasMemory {
		return nil, fmt.Errorf("%w: no memory to grow by 0 (the exit to Go)", errNotInstrumentable)
	}
	if !hasTypes || !hasFuncs {
		return nil, fmt.Errorf("%w: no functions", errNotInstrumentable)
	}
	idx := importedGlobals + definedGlobals // interrupt; idx+1 is the fuel
	yield := importedFuncs + definedFuncs   // the added function

	newGlobal := []byte{0x7F, 0x01, 0x41, 0x00, 0x0B} // mut i32 = i32.const 0
	newGlobal = append(newGlobal, 0x7F, 0x01, 0x41)   // mut i32 = i32.const fuelPerYield
	newGlobal = appendSLEB(newGlobal, fuelPerYield)
	newGlobal = append(newGlobal, 0x0B)
	newExport := binary.AppendUvarint(nil, uint64(len(interruptExport)))
	newExport = append(newExport, interruptExport...)
	newExport = append(newExport, 0x03) // global
	newExport = binary.AppendUvarint(newExport, uint64(idx))

	out := make([]byte, 0, len(wasm)+len(wasm)/16+64)
	out = append(out, wasm[:8]...)
	emit := func(id byte, p []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
	}
	// addMissing emits the global and export sections the module lacks,
	// before the first section that must follow them.
	addMissing := func(beforeRank int) {
		if !hasGlobal && beforeRank > sectionRank(secGlobal) {
			emit(secGlobal, append([]byte{2}, newGlobal...))
			hasGlobal = true
		}
		if !hasExport && beforeRank > sectionRank(secExport) {
			emit(secExport, append([]byte{1}, newExport...))
			hasExport = true
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			addMissing(sectionRank(s.id))
		}
		switch s.id {
		case secGlobal:
			r := reader{b: s.payload}
			n := r.u32()
			p := binary.AppendUvarint(nil, uint64(n)+2)
			p = append(p, s.payload[r.i:]...)
			emit(s.id, append(p, newGlobal...))
		case secExport:
			r := reader{b: s.payload}
			n := r.u32()
			p := binary.AppendUvarint(nil, uint64(n)+1)
			p = append(p, s.payload[r.i:]...)
			emit(s.id, append(p, newExport...))
		case secType: // + () -> ()
			r := reader{b: s.payload}
			n := r.u32()
			p := binary.AppendUvarint(nil, uint64(n)+1)
			p = append(p, s.payload[r.i:]...)
			emit(s.id, append(p, 0x60, 0x00, 0x00))
		case secFunction: // + yield
			r := reader{b: s.payload}
			n := r.u32()
			p := binary.AppendUvarint(nil, uint64(n)+1)
			p = append(p, s.payload[r.i:]...)
			emit(s.id, binary.AppendUvarint(p, uint64(types)))
		case secCode:
			p, err := instrumentCode(s.payload, idx+1, yield)
			if err != nil {
				return nil, err
			}
			emit(s.id, p)
		default:
			emit(s.id, s.payload)
		}
	}
	addMissing(1 << 30)
	return out, nil
}

// countImports returns how many functions, globals and memories the import
// section imports.
func countImports(p []byte) (funcs, globals, memories uint32, err error) {
	r := reader{b: p}
	n := r.u32()
	for range n {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // func
			r.u32()
			funcs++
		case 0x01: // table
			r.refType()
			r.limits()
		case 0x02: // memory
			r.limits()
			memories++
		case 0x03: // global
			r.valType()
			r.byte()
			globals++
		case 0x04: // tag
			r.byte()
			r.u32()
		default:
			return 0, 0, 0, fmt.Errorf("%w: import kind %d", errNotInstrumentable, kind)
		}
		if r.err != nil {
			break
		}
	}
	if r.err != nil {
		return 0, 0, 0, fmt.Errorf("%w: import section: %v", errNotInstrumentable, r.err)
	}
	return funcs, globals, memories, nil
}

func checkExportNames(p []byte) error {
	r := reader{b: p}
	n := r.u32()
	for range n {
		if r.name() == interruptExport {
			return fmt.Errorf("%w: the module already exports %q", errNotInstrumentable, interruptExport)
		}
		r.byte()
		r.u32()
		if r.err != nil {
			break
		}
	}
	if r.err != nil {
		return fmt.Errorf("%w: export section: %v", errNotInstrumentable, r.err)
	}
	return nil
}

// instrumentCode rewrites the code section: each body gets the check after
// its locals and after every loop's block type, and the yield function is
// appended.
func instrumentCode(p []byte, fuel, yield uint32) ([]byte, error) {
	r := reader{b: p}
	n := r.u32()
	out := binary.AppendUvarint(make([]byte, 0, len(p)+len(p)/8+16), uint64(n)+1)
	var body []byte
	for f := range n {
		size := r.u32()
		code := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("%w: function %d: %v", errNotInstrumentable, f, r.err)
		}
		var err error
		body, err = instrumentBody(body[:0], code, fuel, yield)
		if err != nil {
			return nil, fmt.Errorf("%w: function %d: %v", errNotInstrumentable, f, err)
		}
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if r.i != len(p) {
		return nil, fmt.Errorf("%w: trailing bytes in the code section", errNotInstrumentable)
	}
	yb := yieldBody(fuel-1, fuel)
	out = binary.AppendUvarint(out, uint64(len(yb)))
	return append(out, yb...), nil
}

func instrumentBody(out, code []byte, fuel, yield uint32) ([]byte, error) {
	r := reader{b: code}
	groups := r.u32()
	for range groups {
		r.u32()
		r.valType()
		if r.err != nil {
			return nil, r.err
		}
	}
	out = append(out, code[:r.i]...)
	out = appendCheck(out, fuel, yield)
	span := r.i // start of the bytes not copied yet
	for r.i < len(r.b) {
		start := r.i
		loop := r.instr()
		if r.err != nil {
			return nil, fmt.Errorf("at offset %d: %v", start, r.err)
		}
		if loop {
			out = append(out, code[span:r.i]...)
			out = appendCheck(out, fuel, yield)
			span = r.i
		}
	}
	return append(out, code[span:]...), nil
}

// reader decodes the parts of the binary format the rewriter needs. The
// first error sticks; later reads return zero values.
type reader struct {
	b   []byte
	i   int
	err error
}

var errShort = errors.New("unexpected end")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.i = len(r.b)
}

func (r *reader) byte() byte {
	if r.i >= len(r.b) {
		r.fail(errShort)
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.i {
		r.fail(errShort)
		return nil
	}
	p := r.b[r.i : r.i+n]
	r.i += n
	return p
}

// leb skips a LEB128 number of at most max bytes and returns its low 64
// bits (meaningful for unsigned numbers).
func (r *reader) leb(max int) uint64 {
	var v uint64
	for k := 0; k < max; k++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if k < 10 {
			v |= uint64(c&0x7F) << (7 * k)
		}
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail(errors.New("LEB128 number too long"))
	return 0
}

func (r *reader) u32() uint32 { return uint32(r.leb(5)) }

func (r *reader) name() string {
	n := r.u32()
	return string(r.bytes(int(n)))
}

// heapType skips a heap type (an abstract one-byte type or an s33 index).
func (r *reader) heapType() { r.leb(5) }

func (r *reader) refType() {
	switch r.byte() {
	case 0x63, 0x64: // (ref null ht), (ref ht)
		r.heapType()
	}
}

func (r *reader) valType() {
	switch r.byte() {
	case 0x63, 0x64:
		r.heapType()
	}
}

func (r *reader) limits() {
	flags := r.byte()
	r.leb(10)
	if flags&1 != 0 {
		r.leb(10)
	}
}

func (r *reader) blockType() {
	if r.i >= len(r.b) {
		r.fail(errShort)
		return
	}
	switch c := r.b[r.i]; c {
	case 0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F:
		r.i++
	case 0x63, 0x64:
		r.i++
		r.heapType()
	default:
		r.leb(5) // s33 type index
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.leb(10)
}

// Immediate kinds of the one-byte opcodes, for instr.
const (
	immBad uint8 = iota
	immNone
	immLoop
	immBlock
	immU32
	immU32x2
	immBrTable
	immSelectT
	immTryTable
	immMemarg
	immI32
	immI64
	immF32
	immF64
	immHeapType
	immFC
	immFD
	immFE
)

var opImm = func() (t [256]uint8) {
	set := func(k uint8, ops ...int) {
		for _, op := range ops {
			t[op] = k
		}
	}
	set(immNone, 0x00, 0x01, 0x05, 0x0A, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4)
	for op := 0x45; op <= 0xC4; op++ {
		t[op] = immNone // numeric instructions
	}
	set(immLoop, 0x03)
	set(immBlock, 0x02, 0x04, 0x06) // block, if, try
	set(immU32,
		0x07, 0x08, 0x09, 0x18, // catch, throw, rethrow, delegate
		0x0C, 0x0D, 0x10, 0x12, // br, br_if, call, return_call
		0x14, 0x15, // call_ref, return_call_ref
		0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, // local.*, global.*, table.get/set
		0x3F, 0x40, // memory.size, memory.grow
		0xD2, 0xD5, 0xD6) // ref.func, br_on_null, br_on_non_null
	set(immU32x2, 0x11, 0x13) // call_indirect, return_call_indirect
	set(immBrTable, 0x0E)
	set(immSelectT, 0x1C)
	set(immTryTable, 0x1F)
	for op := 0x28; op <= 0x3E; op++ {
		t[op] = immMemarg // loads and stores
	}
	set(immI32, 0x41)
	set(immI64, 0x42)
	set(immF32, 0x43)
	set(immF64, 0x44)
	set(immHeapType, 0xD0) // ref.null
	set(immFC, 0xFC)
	set(immFD, 0xFD)
	set(immFE, 0xFE)
	return t
}()

// instr skips one instruction and reports whether it was a loop.
func (r *reader) instr() (loop bool) {
	if r.i >= len(r.b) {
		r.fail(errShort)
		return false
	}
	op := r.b[r.i]
	r.i++
	switch opImm[op] {
	case immNone:
	case immU32:
		// The common case (local.get and friends) without a call.
		if r.i < len(r.b) && r.b[r.i] < 0x80 {
			r.i++
		} else {
			r.u32()
		}
	case immLoop:
		r.blockType()
		return true
	case immBlock:
		r.blockType()
	case immU32x2:
		r.u32()
		r.u32()
	case immBrTable:
		n := r.u32()
		for k := uint32(0); k <= n && r.err == nil; k++ {
			r.u32()
		}
	case immSelectT:
		n := r.u32()
		for k := uint32(0); k < n && r.err == nil; k++ {
			r.valType()
		}
	case immTryTable:
		r.blockType()
		n := r.u32()
		for k := uint32(0); k < n && r.err == nil; k++ {
			switch r.byte() {
			case 0x00, 0x01:
				r.u32()
				r.u32()
			case 0x02, 0x03:
				r.u32()
			default:
				r.fail(errors.New("unknown catch kind"))
			}
		}
	case immMemarg:
		r.memarg()
	case immI32:
		r.leb(5)
	case immI64:
		r.leb(10)
	case immF32:
		r.bytes(4)
	case immF64:
		r.bytes(8)
	case immHeapType:
		r.heapType()
	case immFC:
		switch sub := r.u32(); {
		case sub <= 7:
		case sub == 8, sub == 10, sub == 12, sub == 14:
			r.u32()
			r.u32()
		case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
			r.u32()
		default:
			r.fail(fmt.Errorf("unknown instruction 0xFC %d", sub))
		}
	case immFD:
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93:
			r.memarg()
		case sub == 12, sub == 13:
			r.bytes(16)
		case sub >= 21 && sub <= 34:
			r.byte()
		case sub >= 84 && sub <= 91:
			r.memarg()
			r.byte()
		}
	case immFE:
		if sub := r.u32(); sub == 0x03 {
			r.byte()
		} else {
			r.memarg()
		}
	default:
		r.fail(fmt.Errorf("unknown opcode 0x%02X", op))
	}
	return false
}
