//go:build wasip1

package hostcall

import (
	"unsafe"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

//go:wasmimport ferry log
func log_(level int32, msg unsafe.Pointer, msgLen uint32)

//go:wasmimport ferry kv_get
func kvGet(store unsafe.Pointer, storeLen uint32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport ferry kv_set
func kvSet(store unsafe.Pointer, storeLen uint32, key unsafe.Pointer, keyLen uint32, val unsafe.Pointer, valLen uint32) int32

//go:wasmimport ferry kv_delete
func kvDelete(store unsafe.Pointer, storeLen uint32, key unsafe.Pointer, keyLen uint32) int32

//go:wasmimport ferry var_get
func varGet(name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport ferry http_request
func httpRequest(head unsafe.Pointer, headLen uint32, body unsafe.Pointer, bodyLen uint32) int32

//go:wasmimport ferry http_response_head
func httpResponseHead(h int32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport ferry http_body_read
func httpBodyRead(h int32, buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport ferry http_close
func httpClose(h int32)

//go:wasmimport ferry req_head
func reqHead(buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport ferry req_body_read
func reqBodyRead(buf unsafe.Pointer, bufLen uint32) int32

//go:wasmimport ferry resp_start
func respStart(status int32, head unsafe.Pointer, headLen uint32) int32

//go:wasmimport ferry resp_write
func respWrite(buf unsafe.Pointer, bufLen uint32) int32

func sp(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func bp(b []byte) (unsafe.Pointer, uint32) {
	if len(b) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(&b[0]), uint32(len(b))
}

// Log writes msg to the host's log at level (slog levels).
func Log(level int32, msg string) {
	p, n := sp(msg)
	log_(level, p, n)
}

// KVGet reads key from store.
func KVGet(store, key string) ([]byte, int32) {
	s, sl := sp(store)
	k, kl := sp(key)
	return twoCall(256, func(b []byte) int32 {
		p, n := bp(b)
		return kvGet(s, sl, k, kl, p, n)
	})
}

// KVSet writes key in store.
func KVSet(store, key string, val []byte) int32 {
	s, sl := sp(store)
	k, kl := sp(key)
	v, vl := bp(val)
	return kvSet(s, sl, k, kl, v, vl)
}

// KVDelete deletes key from store.
func KVDelete(store, key string) int32 {
	s, sl := sp(store)
	k, kl := sp(key)
	return kvDelete(s, sl, k, kl)
}

// VarGet reads a variable.
func VarGet(name string) (string, int32) {
	p, n := sp(name)
	b, code := twoCall(128, func(b []byte) int32 {
		bp_, bn := bp(b)
		return varGet(p, n, bp_, bn)
	})
	return string(b), code
}

// HTTPRequest starts an outbound request; it returns a handle or a code.
func HTTPRequest(head string, body []byte) int32 {
	h, hl := sp(head)
	b, bl := bp(body)
	return httpRequest(h, hl, b, bl)
}

// HTTPResponseHead reads the response head of handle h.
func HTTPResponseHead(h int32) ([]byte, int32) {
	return twoCall(1024, func(b []byte) int32 {
		p, n := bp(b)
		return httpResponseHead(h, p, n)
	})
}

// HTTPBodyRead reads response body bytes of handle h into buf (0 = EOF).
func HTTPBodyRead(h int32, buf []byte) int32 {
	p, n := bp(buf)
	return httpBodyRead(h, p, n)
}

// HTTPClose releases handle h.
func HTTPClose(h int32) { httpClose(h) }

// ReqHead reads the incoming request's head.
func ReqHead(buf []byte) ([]byte, int32) {
	if cap(buf) < 512 {
		buf = make([]byte, 2048)
	}
	buf = buf[:cap(buf)]
	for range 3 {
		p, n := bp(buf)
		got := reqHead(p, n)
		if got < 0 {
			return nil, got
		}
		if int(got) <= len(buf) {
			return buf[:got], abi.OK
		}
		buf = make([]byte, got)
	}
	return nil, abi.ErrIO
}

// ReqBodyRead reads request body bytes into buf (0 = EOF).
func ReqBodyRead(buf []byte) int32 {
	p, n := bp(buf)
	return reqBodyRead(p, n)
}

// RespStart sends the status and header lines.
func RespStart(status int32, head []byte) int32 {
	p, n := bp(head)
	return respStart(status, p, n)
}

// RespWrite appends to the response body.
func RespWrite(b []byte) int32 {
	p, n := bp(b)
	return respWrite(p, n)
}
