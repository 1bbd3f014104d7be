//go:build !linux

package device

// freeDisk is 0 off Linux: device mode reports free disk on Linux only.
func freeDisk(string) uint64 { return 0 }
