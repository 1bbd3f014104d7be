package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"

	"github.com/ferry-wasm/ferry/internal/wasmbin"
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

// Section ids the rewriter reads or writes.
const (
	secCustom   = wasmbin.SectionCustom
	secType     = wasmbin.SectionType
	secImport   = wasmbin.SectionImport
	secFunction = wasmbin.SectionFunction
	secMemory   = wasmbin.SectionMemory
	secGlobal   = wasmbin.SectionGlobal
	secExport   = wasmbin.SectionExport
	secStart    = wasmbin.SectionStart
	secCode     = wasmbin.SectionCode
)

// sectionRank is the place of section id in the order the binary format
// requires.
func sectionRank(id wasmbin.SectionID) int {
	switch id {
	case wasmbin.SectionTag:
		return 6 // tag: between memory and global
	case wasmbin.SectionGlobal, wasmbin.SectionExport, wasmbin.SectionStart, wasmbin.SectionElement:
		return int(id) + 1
	case wasmbin.SectionDataCount:
		return 11 // data count: before code
	case wasmbin.SectionCode:
		return 12
	case wasmbin.SectionData:
		return 13
	}
	return int(id) // 1..5
}

// instrument returns a copy of the module with the interrupt global and
// checks added (see above).
func instrument(wasm []byte) ([]byte, error) {
	mod, err := wasmbin.Parse(wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotInstrumentable, err)
	}
	secs := mod.Sections

	var importedGlobals, definedGlobals, importedFuncs, definedFuncs, types uint32
	hasGlobal, hasExport, hasMemory, hasTypes, hasFuncs := false, false, false, false, false
	for _, s := range secs {
		switch s.ID {
		case secStart:
			return nil, fmt.Errorf("%w: start section", errNotInstrumentable)
		case secImport:
			ims, err := wasmbin.Imports(s.Payload)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", errNotInstrumentable, err)
			}
			importedFuncs, importedGlobals = 0, 0
			for _, im := range ims {
				switch im.Kind {
				case wasmbin.KindFunction:
					importedFuncs++
				case wasmbin.KindGlobal:
					importedGlobals++
				case wasmbin.KindMemory:
					hasMemory = true
				}
			}
		case secMemory:
			r := wasmbin.NewReader(s.Payload)
			if r.U32() > 0 {
				hasMemory = true
				if flags := r.Byte(); flags&0x04 != 0 {
					return nil, fmt.Errorf("%w: 64-bit memory", errNotInstrumentable)
				}
			}
		case secType:
			n, _, err := wasmbin.Vector(s.Payload)
			types, hasTypes = n, err == nil
		case secFunction:
			n, _, err := wasmbin.Vector(s.Payload)
			definedFuncs, hasFuncs = n, err == nil
		case secGlobal:
			n, _, err := wasmbin.Vector(s.Payload)
			definedGlobals = n
			hasGlobal = true
			if err != nil {
				return nil, fmt.Errorf("%w: global section: %v", errNotInstrumentable, err)
			}
		case secExport:
			hasExport = true
			exports, err := wasmbin.Exports(s.Payload)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", errNotInstrumentable, err)
			}
			for _, e := range exports {
				if e.Name == interruptExport {
					return nil, fmt.Errorf("%w: the module already exports %q", errNotInstrumentable, interruptExport)
				}
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
	emit := func(id wasmbin.SectionID, p []byte) {
		out = append(out, byte(id))
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
		if s.ID != secCustom {
			addMissing(sectionRank(s.ID))
		}
		// grow rewrites a vector section with extra more entries appended.
		grow := func(extra uint64, entries []byte) {
			n, items, _ := wasmbin.Vector(s.Payload)
			p := binary.AppendUvarint(nil, uint64(n)+extra)
			p = append(p, items...)
			emit(s.ID, append(p, entries...))
		}
		switch s.ID {
		case secGlobal:
			grow(2, newGlobal)
		case secExport:
			grow(1, newExport)
		case secType: // + () -> ()
			grow(1, []byte{0x60, 0x00, 0x00})
		case secFunction: // + yield
			grow(1, binary.AppendUvarint(nil, uint64(types)))
		case secCode:
			p, err := instrumentCode(s.Payload, idx+1, yield)
			if err != nil {
				return nil, err
			}
			emit(s.ID, p)
		default:
			emit(s.ID, s.Payload)
		}
	}
	addMissing(1 << 30)
	return out, nil
}

// instrumentCode rewrites the code section: each body gets the check after
// its locals and after every loop's block type, and the yield function is
// appended.
func instrumentCode(p []byte, fuel, yield uint32) ([]byte, error) {
	r := wasmbin.NewReader(p)
	n := r.U32()
	out := binary.AppendUvarint(make([]byte, 0, len(p)+len(p)/8+16), uint64(n)+1)
	var body []byte
	for f := range n {
		size := r.U32()
		code := r.Bytes(int(size))
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: function %d: %v", errNotInstrumentable, f, r.Err())
		}
		var err error
		body, err = instrumentBody(body[:0], code, fuel, yield)
		if err != nil {
			return nil, fmt.Errorf("%w: function %d: %v", errNotInstrumentable, f, err)
		}
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: trailing bytes in the code section", errNotInstrumentable)
	}
	yb := yieldBody(fuel-1, fuel)
	out = binary.AppendUvarint(out, uint64(len(yb)))
	return append(out, yb...), nil
}

func instrumentBody(out, code []byte, fuel, yield uint32) ([]byte, error) {
	r := wasmbin.NewReader(code)
	if r.Locals(); r.Err() != nil {
		return nil, r.Err()
	}
	out = append(out, code[:r.Offset()]...)
	out = appendCheck(out, fuel, yield)
	span := r.Offset() // start of the bytes not copied yet
	for r.Len() > 0 {
		start := r.Offset()
		op := r.Instr()
		if r.Err() != nil {
			return nil, fmt.Errorf("at offset %d: %v", start, r.Err())
		}
		if op == wasmbin.OpLoop {
			out = append(out, code[span:r.Offset()]...)
			out = appendCheck(out, fuel, yield)
			span = r.Offset()
		}
	}
	return append(out, code[span:]...), nil
}
