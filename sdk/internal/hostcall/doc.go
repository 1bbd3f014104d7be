// Package hostcall holds the raw imports of ferry-host's "ferry" module for
// the Go guest SDK (see targets/host/ABI.md). On anything but wasip1 every
// call returns abi.ErrUnsupported, so code using the SDK still compiles and
// tests on the build machine.
//
// Result codes are targets/host/abi's constants (abi.OK, abi.ErrNotFound,
// ...), the very ones the host returns: abi imports nothing, so it
// compiles for wasip1, and guest and host cannot disagree on a code.
package hostcall

import "github.com/ferry-wasm/ferry/targets/host/abi"

// twoCall runs f with a buffer, growing it once when the host reports a
// larger size (the two-call convention of ABI.md).
func twoCall(size int, f func(buf []byte) int32) ([]byte, int32) {
	buf := make([]byte, size)
	for range 3 {
		n := f(buf)
		if n < 0 {
			return nil, n
		}
		if int(n) <= len(buf) {
			return buf[:n], abi.OK
		}
		buf = make([]byte, n)
	}
	return nil, abi.ErrIO
}
