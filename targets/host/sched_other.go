//go:build !linux

package host

// Thread priorities are only set on Linux (sched_linux.go).

func canDemote() bool { return false }
func demote() bool    { return false }
func undemote()       {}
