package device

import "time"

// Default bounds of Backoff.
const (
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = 2 * time.Minute
)

// Backoff is an exponential backoff with jitter, bounded. The zero value
// is DefaultBackoffMin to DefaultBackoffMax.
type Backoff struct {
	// Min is the delay before the first retry (before jitter). Zero means
	// DefaultBackoffMin.
	Min time.Duration
	// Max bounds every delay. Zero means DefaultBackoffMax; a Max below
	// Min is raised to Min.
	Max time.Duration
}

// Delay returns how long to wait before retry number attempt (0 for the
// first retry after a failure): Min·2^attempt, capped at Max, of which
// the upper half is scaled by jitter ("equal jitter"). jitter is a random
// number in [0, 1) (clamped); the result is always in [d/2, d] for that
// capped d, so devices that lost the server together do not come back
// together, and none waits longer than Max. A pure function.
func (b Backoff) Delay(attempt int, jitter float64) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = DefaultBackoffMin
	}
	if hi <= 0 {
		hi = DefaultBackoffMax
	}
	if hi < lo {
		hi = lo
	}
	if attempt < 0 {
		attempt = 0
	}
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	if d > hi || d <= 0 {
		d = hi
	}
	switch {
	case jitter < 0:
		jitter = 0
	case jitter >= 1:
		jitter = 1
	}
	half := d / 2
	return half + time.Duration(float64(d-half)*jitter)
}
