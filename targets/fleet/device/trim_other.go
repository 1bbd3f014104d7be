//go:build !linux

package device

// pageOutExecutable does nothing outside Linux.
func pageOutExecutable() {}
