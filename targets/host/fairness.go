package host

import (
	"context"
	"errors"
)

// Per-app execution limit (Options.MaxAppExecutions).
//
// A guest in a loop holds a core until its deadline: wazero's native code
// yields to the Go scheduler only every few thousand checks, and nothing
// preempts it earlier. Eight such guests on a two-core host left a tiny
// neighbour app's requests waiting 0.1-0.47 s behind them. Capping how many
// of one app's guests run at once (say GOMAXPROCS-1) leaves the other cores
// to the other apps: the app's further requests wait for a slot until their
// deadline, then answer 503. See RATIONALE.md for why this and not a global
// executor queue.

// errAppBusy means an app's executions were at their cap until the
// request's deadline. Retrying later can help.
var errAppBusy = errors.New("app at its limit of concurrent guest executions")

// appSlots returns the execution semaphore of app (nil: no limit), shared
// by its components and versions.
func (r *Runtime) appSlots(app string) chan struct{} {
	if r.opts.MaxAppExecutions <= 0 {
		return nil
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	s := r.execSlots[app]
	if s == nil {
		s = make(chan struct{}, r.opts.MaxAppExecutions)
		r.execSlots[app] = s
	}
	return s
}

// enterApp takes one of the app's execution slots, waiting until ctx ends,
// then a CPU slot (sched.go); the returned function gives them back.
func (c *component) enterApp(ctx context.Context) (func(), error) {
	s := c.execSlots
	if s == nil {
		return c.enterCPU(ctx)
	}
	select {
	case s <- struct{}{}:
	default:
		select {
		case s <- struct{}{}:
		case <-ctx.Done():
			return nil, errAppBusy
		}
	}
	leave, err := c.enterCPU(ctx)
	if err != nil {
		<-s
		return nil, err
	}
	return func() { leave(); <-s }, nil
}
