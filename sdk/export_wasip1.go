//go:build wasip1

package sdk

// ferryHandle is the reactor handler export the host calls per request.
//
//go:wasmexport ferry_handle
func ferryHandle() int32 { return serve() }
