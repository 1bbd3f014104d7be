package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/sys"
)

// Guest logging and host calls that end with the request.
//
// A guest's code checks its interrupt only every fuelPerYield loop
// iterations or function entries (see interrupt.go): a guest that spends
// its time inside host calls (fd_write of 64 KiB of one-byte lines to
// stderr, each logged as a record; a poll_oneoff sleep of an hour;
// random_get of its whole memory) would pass that many calls, minutes,
// before it noticed its deadline. So every host call that can take long
// checks the call's context itself, before and while it works, and when it
// has ended, traps the guest at once (a panic with a sys.ExitError, which
// wazero turns into the call's error). And what a guest logs is bounded:
// per call by Options.GuestLogBytes, per app by a token bucket of
// Options.GuestLogRate; what is over is dropped, and one line at the end of
// the call says how much.

// Defaults of the guest logging limits.
const (
	// DefaultGuestLogBytes caps what one call (a request, or a reactor
	// instance's _initialize) may log: 64 KiB, each record counted as its
	// text plus logRecordCost.
	DefaultGuestLogBytes = 64 << 10
	// DefaultGuestLogRate is the rate of guest logging per app, in bytes
	// per second, counted like DefaultGuestLogBytes: 64 KiB/s, with bursts
	// of guestLogBurstSeconds times as much.
	DefaultGuestLogRate = 64 << 10
)

// logRecordCost is what a guest log record costs besides its text: about
// what the host's text handler adds (time, level, app, component, source,
// stream), so that a guest writing one-byte lines cannot make the host's
// log a hundred times larger than the cap.
const logRecordCost = 100

// guestLogBurstSeconds is the size of an app's bucket in seconds of its rate.
const guestLogBurstSeconds = 4

// logBucket is an app's token bucket of guest log bytes. Safe for
// concurrent use.
type logBucket struct {
	rate, burst float64 // bytes per second, bucket size; rate <= 0: unlimited

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newLogBucket(rate int64) *logBucket {
	b := &logBucket{rate: float64(rate), burst: float64(rate) * guestLogBurstSeconds}
	b.tokens = b.burst
	b.last = time.Now()
	return b
}

// take takes n bytes from the bucket and reports whether they were there.
func (b *logBucket) take(n int) bool {
	if b == nil || b.rate <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// logBucketFor returns the bucket of app, shared by its components and
// versions, creating it on first use.
func (r *Runtime) logBucketFor(app string) *logBucket {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	b := r.logBuckets[app]
	if b == nil {
		b = newLogBucket(r.opts.GuestLogRate)
		r.logBuckets[app] = b
	}
	return b
}

// forgetLogBucket drops the bucket of a deleted app.
func (r *Runtime) forgetLogBucket(app string) {
	r.logMu.Lock()
	delete(r.logBuckets, app)
	delete(r.execSlots, app)
	r.logMu.Unlock()
}

// guestLog is the logging state of one call.
type guestLog struct {
	used         int64 // bytes charged against the per-call cap
	droppedBytes int64
	droppedLines int64
	capped       bool // something was dropped for the per-call cap
	rated        bool // something was dropped for the app's rate
}

// ended reports whether the call's context has ended: the request's
// (deadline, client gone, stopped), or, during a reactor's _initialize,
// initCtx's.
func (cs *callState) ended() bool {
	return cs.endedFlag.Load() || (cs.initCtx != nil && cs.initCtx.Err() != nil)
}

// trapIfEnded stops the guest at once, from inside a host call, when the
// call's context has ended: wazero recovers the panic and returns the exit
// error from the guest call.
func (cs *callState) trapIfEnded() {
	if cs == nil || !cs.ended() {
		return
	}
	err := cs.Err()
	if err == nil && cs.initCtx != nil {
		err = cs.initCtx.Err()
	}
	code := uint32(sys.ExitCodeContextCanceled)
	if err == context.DeadlineExceeded {
		code = sys.ExitCodeDeadlineExceeded
	}
	panic(sys.NewExitError(code))
}

// guestWrite logs guest output (stderr, or a reactor's stdout), one record
// per line, within the call's cap and the app's rate.
func (cs *callState) guestWrite(p []byte, stream string) {
	cs.trapIfEnded()
	for len(p) > 0 {
		if cs.logCap()-cs.glog.used <= logRecordCost {
			cs.drop(p, true)
			return
		}
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			continue
		}
		if !cs.logRecord(slog.LevelInfo, line, stream) {
			cs.drop(p, false) // the bucket is empty: so is it for the rest
			return
		}
	}
}

// logRecord logs one guest record within the limits; it reports false when
// the app's bucket was empty.
func (cs *callState) logRecord(lvl slog.Level, msg []byte, stream string) bool {
	left := cs.logCap() - cs.glog.used - logRecordCost
	if left <= 0 {
		cs.drop(msg, true)
		return true
	}
	keep, cost := textCost(msg, left)
	if keep < len(msg) {
		cs.drop(msg[keep:], true)
		if keep == 0 {
			return true
		}
		msg = msg[:keep]
	}
	cost += logRecordCost
	if !cs.comp.logRate.take(int(cost)) {
		cs.drop(msg, false)
		return false
	}
	cs.glog.used += cost
	attrs := [2]slog.Attr{slog.String("source", "guest")}
	n := 1
	if stream != "" {
		attrs[1] = slog.String("stream", stream)
		n = 2
	}
	cs.comp.log.LogAttrs(context.Background(), lvl, string(msg), attrs[:n]...)
	return true
}

// textCost returns how many bytes of msg fit in budget, and their cost: a
// byte the log handlers escape (a control character, a quote, a
// backslash) counts as escapedCost, so that what the log grows by stays
// within the cap in the text and JSON formats.
func textCost(msg []byte, budget int64) (int, int64) {
	var cost int64
	for i, c := range msg {
		k := int64(1)
		if c < 0x20 || c == '"' || c == '\\' || c == 0x7f {
			k = escapedCost
		}
		if cost+k > budget {
			return i, cost
		}
		cost += k
	}
	return len(msg), cost
}

// escapedCost is the most a log handler writes for one escaped byte
// (JSON's \u001b).
const escapedCost = 6

// drop counts p as dropped output.
func (cs *callState) drop(p []byte, capped bool) {
	if len(p) == 0 {
		return
	}
	cs.glog.droppedBytes += int64(len(p))
	cs.glog.droppedLines += int64(bytes.Count(p, []byte{'\n'}))
	if p[len(p)-1] != '\n' {
		cs.glog.droppedLines++
	}
	if capped {
		cs.glog.capped = true
	} else {
		cs.glog.rated = true
	}
}

// logCap is the per-call cap of guest logging.
func (cs *callState) logCap() int64 { return cs.comp.rt.opts.GuestLogBytes }

// noteDropped logs one line saying how much of the call's guest log was
// dropped, if any. It runs once, at the end of the call.
func (cs *callState) noteDropped() {
	g := &cs.glog
	if g.droppedBytes == 0 || cs.comp == nil {
		return
	}
	var why string
	switch {
	case g.capped && g.rated:
		why = "the per-request cap and the app's rate"
	case g.capped:
		why = "the per-request cap of " + strconv.FormatInt(cs.logCap(), 10) + " bytes"
	default:
		why = "the app's rate of " + strconv.FormatInt(cs.comp.rt.opts.GuestLogRate, 10) + " bytes/s"
	}
	cs.comp.log.LogAttrs(context.Background(), slog.LevelWarn,
		"guest log truncated: dropped "+strconv.FormatInt(g.droppedBytes, 10)+" bytes over "+why,
		slog.Int64("dropped_bytes", g.droppedBytes), slog.Int64("dropped_lines", g.droppedLines))
}

// sleep is the guest's nanosleep (poll_oneoff's clock): it ends early when
// the call's context does, and then traps the guest.
func (cs *callState) sleep(ns int64) {
	cs.trapIfEnded()
	d := time.Duration(ns)
	if !cs.deadline.IsZero() {
		d = min(d, time.Until(cs.deadline)+time.Millisecond)
	}
	if d > 0 {
		done := cs.Done()
		if cs.initCtx != nil {
			done = cs.initCtx.Done()
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-done:
		}
		t.Stop()
	}
	cs.trapIfEnded()
}

// callRef names the call a guest's streams belong to: a WAGI callState's
// own, or the call a reactor instance is serving (set by the goroutine
// that runs it, before each call).
type callRef struct{ cs *callState }

// guestStream is the io.Writer of a guest's stderr (and a reactor's stdout).
type guestStream struct {
	ref    *callRef
	stream string
}

func (w *guestStream) Write(p []byte) (int, error) {
	if cs := w.ref.cs; cs != nil && cs.comp != nil {
		cs.guestWrite(p, w.stream)
	}
	return len(p), nil
}

// guestRand is the guest's random source (random_get): crypto/rand, read in
// chunks, checking the call's context between them.
type guestRand struct{ ref *callRef }

// randChunk is how much random_get reads between two checks.
const randChunk = 64 << 10

func (g *guestRand) Read(p []byte) (int, error) {
	cs := g.ref.cs
	cs.trapIfEnded()
	if len(p) > randChunk {
		p = p[:randChunk]
	}
	return io.ReadFull(rand.Reader, p)
}

// sleepFn returns the nanosleep of ref's calls.
func (ref *callRef) sleepFn() func(int64) {
	return func(ns int64) {
		if cs := ref.cs; cs != nil {
			cs.sleep(ns)
			return
		}
		time.Sleep(time.Duration(ns))
	}
}
