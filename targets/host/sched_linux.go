package host

import (
	"runtime"
	"sync"
	"syscall"
)

// Thread priority of long-running guests (Linux).
//
// A guest that has run for demoteAfter gets its own OS thread
// (runtime.LockOSThread) at nice demoteNice until its execution ends, so
// that the kernel runs the threads serving other requests first. The Go
// scheduler alone cannot do that: it knows no priorities, and a goroutine
// woken by a spinning guest's hand-over runs on that guest's thread, which
// the kernel has already charged for a full core. Setting the nice value
// back needs CAP_SYS_NICE; without it (tried once) nothing is demoted.

const demoteNice = 19

var (
	canDemoteOnce sync.Once
	canDemoteOK   bool
)

// canDemote reports whether this process may raise a thread's nice value
// and lower it again.
func canDemote() bool {
	canDemoteOnce.Do(func() {
		done := make(chan bool)
		go func() {
			runtime.LockOSThread() // the thread ends with this goroutine
			tid := syscall.Gettid()
			prev, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
			if err != nil {
				done <- false
				return
			}
			nice := 20 - prev // the raw syscall returns 20-nice
			ok := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice+1) == nil &&
				syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice) == nil
			done <- ok
		}()
		canDemoteOK = <-done
	})
	return canDemoteOK
}

// demote locks the calling goroutine to its thread and lowers the thread's
// priority; it reports whether it did.
func demote() bool {
	runtime.LockOSThread()
	if syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), demoteNice) != nil {
		runtime.UnlockOSThread()
		return false
	}
	return true
}

// undemote restores the thread of a goroutine that demote locked. If the
// priority cannot be restored the goroutine stays locked, so that the
// thread ends with it rather than serving others at low priority.
func undemote() {
	if syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 0) == nil {
		runtime.UnlockOSThread()
	}
}
