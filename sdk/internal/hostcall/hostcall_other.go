//go:build !wasip1

package hostcall

import "github.com/ferry-wasm/ferry/targets/host/abi"

// Log does nothing outside wasip1.
func Log(level int32, msg string) {}

// KVGet is unsupported outside wasip1.
func KVGet(store, key string) ([]byte, int32) { return nil, abi.ErrUnsupported }

// KVSet is unsupported outside wasip1.
func KVSet(store, key string, val []byte) int32 { return abi.ErrUnsupported }

// KVDelete is unsupported outside wasip1.
func KVDelete(store, key string) int32 { return abi.ErrUnsupported }

// VarGet is unsupported outside wasip1.
func VarGet(name string) (string, int32) { return "", abi.ErrUnsupported }

// HTTPRequest is unsupported outside wasip1.
func HTTPRequest(head string, body []byte) int32 { return abi.ErrUnsupported }

// HTTPResponseHead is unsupported outside wasip1.
func HTTPResponseHead(h int32) ([]byte, int32) { return nil, abi.ErrUnsupported }

// HTTPBodyRead is unsupported outside wasip1.
func HTTPBodyRead(h int32, buf []byte) int32 { return abi.ErrUnsupported }

// HTTPClose does nothing outside wasip1.
func HTTPClose(h int32) {}

// ReqHead is unsupported outside wasip1.
func ReqHead(buf []byte) ([]byte, int32) { return nil, abi.ErrUnsupported }

// ReqBodyRead is unsupported outside wasip1.
func ReqBodyRead(buf []byte) int32 { return abi.ErrUnsupported }

// RespStart is unsupported outside wasip1.
func RespStart(status int32, head []byte) int32 { return abi.ErrUnsupported }

// RespWrite is unsupported outside wasip1.
func RespWrite(b []byte) int32 { return abi.ErrUnsupported }
