// Package hostcall holds the raw imports of ferry-host's "ferry" module for
// the Go guest SDK (see targets/host/ABI.md). On anything but wasip1 every
// call returns CodeUnsupported, so code using the SDK still compiles and
// tests on the build machine.
package hostcall

// Result codes of the ferry host functions (mirrors targets/host/abi).
const (
	CodeOK          int32 = 0
	CodeNotFound    int32 = -1
	CodeDenied      int32 = -2
	CodeIO          int32 = -3
	CodeTooLarge    int32 = -4
	CodeInvalid     int32 = -5
	CodeUnsupported int32 = -6
)

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
			return buf[:n], CodeOK
		}
		buf = make([]byte, n)
	}
	return nil, CodeIO
}
