package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

// Waiting for the apply lock polls with a backoff from lockPollMin doubling
// to lockPollMax, each wait jittered to between half and all of it.
const (
	lockPollMin = 100 * time.Millisecond
	lockPollMax = 2 * time.Second
	// releaseTimeout bounds the DELETE of Unlock.
	releaseTimeout = 5 * time.Second
)

// LockStatus reads the host's apply lock (GET /v1/lock).
func (c *Client) LockStatus(ctx context.Context) (api.LockStatus, error) {
	var st api.LockStatus
	err := c.do(ctx, http.MethodGet, "/v1/lock", nil, &st)
	return st, err
}

// AcquireLock asks once for the host's apply lock for holder, with a lease
// of ttl (zero means the host's default, api.DefaultLockTTL). When another
// holder has it the error wraps ErrLocked and is an *APIError whose Lock
// names that holder. It does not renew: see Hold and Lock for that.
func (c *Client) AcquireLock(ctx context.Context, holder string, ttl time.Duration) (api.Lease, error) {
	var l api.Lease
	err := c.do(ctx, http.MethodPost, "/v1/lock", api.LockRequest{Holder: holder, TTL: ttlString(ttl)}, &l)
	return l, err
}

// RenewLock extends lease id by ttl (zero means the lease's own TTL). An
// error wrapping ErrLeaseLost means the lease is gone.
func (c *Client) RenewLock(ctx context.Context, id string, ttl time.Duration) (api.Lease, error) {
	var l api.Lease
	err := c.do(ctx, http.MethodPut, "/v1/lock/"+url.PathEscape(id), api.LockRequest{TTL: ttlString(ttl)}, &l)
	return l, err
}

// ReleaseLock ends lease id. Releasing a lease that is already gone is not
// an error. With an id read from api.LockStatus it is a force-unlock.
func (c *Client) ReleaseLock(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/lock/"+url.PathEscape(id), nil, nil)
}

func ttlString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// HeldLock is the host's apply lock held by a Client (see Client.Hold): a
// lease the client renews in the background every third of its TTL until
// Unlock. Its methods are safe for concurrent use.
//
// The lease is lost when a renewal finds it gone (it expired and another
// holder took it, someone force-unlocked it, or the host restarted) or
// when no renewal has succeeded for a whole TTL by the client's clock (the
// host was unreachable, so the client can no longer tell). Then Lost is
// closed, Err says why (wrapping ErrLeaseLost), the client's Logger gets an
// error record, and renewal stops. Losing the lease does not stop what its
// holder is doing: a caller that must not go on without the lock selects
// on Lost. While the lock is held, the Client's PUT, DELETE and rollback
// requests carry the lease (api.LeaseHeader), and the host refuses them once
// the lease is lost (ErrLeaseLost): a holder that lost the lock cannot go
// on changing the host.
type HeldLock struct {
	c      *Client
	lease  api.Lease
	ttl    time.Duration
	cancel context.CancelFunc
	done   chan struct{}
	lost   chan struct{}

	mu       sync.Mutex
	err      error
	unlocked bool
	unlockE  error
}

// Lease returns the lease as the host granted it (Expires is not updated
// by renewals).
func (h *HeldLock) Lease() api.Lease { return h.lease }

// Lost is closed when the lease is lost (never after a plain Unlock).
func (h *HeldLock) Lost() <-chan struct{} { return h.lost }

// Err returns why the lease was lost, wrapping ErrLeaseLost; nil while it
// is held or after a plain Unlock.
func (h *HeldLock) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Unlock stops renewing and releases the lease on the host, trying for at
// most 5 seconds (if that fails the lease lapses after its TTL). It returns
// Err when the lease had been lost, else the release's error. Calling it
// again returns the same result.
func (h *HeldLock) Unlock() error {
	h.mu.Lock()
	if h.unlocked {
		defer h.mu.Unlock()
		return h.unlockE
	}
	h.unlocked = true
	h.mu.Unlock()

	h.cancel()
	<-h.done
	h.c.leaseMu.Lock()
	if h.c.lease == h.lease.ID {
		h.c.lease = ""
	}
	h.c.leaseMu.Unlock()
	var err error
	if err = h.Err(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		err = h.c.ReleaseLock(ctx, h.lease.ID)
		cancel()
		if err != nil {
			err = fmt.Errorf("releasing the apply lock of %s (it lapses by itself after %s): %w", h.c.base, h.ttl, err)
		}
	}
	h.mu.Lock()
	h.unlockE = err
	h.mu.Unlock()
	return err
}

// renew runs until ctx ends (Unlock) or the lease is lost. granted is the
// client's time just before the request that granted the lease was sent.
func (h *HeldLock) renew(ctx context.Context, granted time.Time) {
	defer close(h.done)
	every := h.ttl / 3
	lastOK := granted
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		sent := time.Now()
		_, err := h.c.RenewLock(rctx, h.lease.ID, 0)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			lastOK = sent
			t.Reset(every)
		case errors.Is(err, ErrLeaseLost):
			h.lose(ctx, err)
			return
		case time.Since(lastOK) >= h.ttl:
			h.lose(ctx, fmt.Errorf("%w: no renewal succeeded for %s, the lease's TTL: %w", ErrLeaseLost, h.ttl, err))
			return
		default:
			h.c.log.LogAttrs(ctx, slog.LevelWarn, "apply lock renewal failed; retrying",
				slog.String("host", h.c.base), slog.String("holder", h.lease.Holder), slog.String("error", err.Error()))
			t.Reset(max(every/4, lockPollMin))
		}
	}
}

func (h *HeldLock) lose(ctx context.Context, err error) {
	err = fmt.Errorf("apply lock of %s held by %q: %w", h.c.base, h.lease.Holder, err)
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
	close(h.lost)
	h.c.log.LogAttrs(ctx, slog.LevelError, "apply lock lost", slog.String("host", h.c.base),
		slog.String("holder", h.lease.Holder), slog.String("error", err.Error()))
}

// Hold blocks until the client holds the host's apply lock for holder, or
// ctx ends, and then renews the lease in the background (see HeldLock).
// The lease's TTL is ClientOptions.LockTTL. While another holder has the
// lock it polls, backing off from 100 ms to 2 s with jitter. When ctx ends
// first the error wraps ErrLocked and ctx.Err() and names the holder that
// kept the lock. Any other failure (unreachable host, refused token) ends
// the wait at once; a host without /v1/lock gives ErrLockUnsupported.
// ctx bounds only the wait: the lease lives until Unlock. (If ctx ends
// while the host is granting, the lease may be granted unseen; it lapses
// after its TTL.)
func (c *Client) Hold(ctx context.Context, holder string) (*HeldLock, error) {
	delay := lockPollMin
	var last *api.Lease // the holder that refused us last
	gaveUp := func() error {
		return fmt.Errorf("%w: gave up waiting for the apply lock of %s: held by %q since %s, lease expires %s (lease %s): %w",
			ErrLocked, c.base, last.Holder, last.Acquired.Format(time.RFC3339), last.Expires.Format(time.RFC3339), last.ID, ctx.Err())
	}
	for {
		sent := time.Now()
		lease, err := c.AcquireLock(ctx, holder, c.lockTTL)
		if err == nil {
			return c.held(lease, sent), nil
		}
		var ae *APIError
		switch {
		case errors.Is(err, ErrLocked) && errors.As(err, &ae) && ae.Lock != nil:
			if last == nil || last.ID != ae.Lock.ID {
				c.log.LogAttrs(ctx, slog.LevelWarn, "waiting for the apply lock", slog.String("host", c.base),
					slog.String("holder", ae.Lock.Holder), slog.Time("since", ae.Lock.Acquired),
					slog.Time("expires", ae.Lock.Expires), slog.String("lease", ae.Lock.ID))
			}
			last = ae.Lock
		case errors.As(err, &ae) && ae.Code == "" && (ae.StatusCode == http.StatusNotFound || ae.StatusCode == http.StatusMethodNotAllowed):
			return nil, fmt.Errorf("%w: %s: %w", ErrLockUnsupported, c.base, err)
		case ctx.Err() != nil && last != nil:
			return nil, gaveUp()
		default:
			return nil, err
		}
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, gaveUp()
		case <-t.C:
		}
		delay = min(delay*2, lockPollMax)
	}
}

// held starts renewing lease.
func (c *Client) held(lease api.Lease, sent time.Time) *HeldLock {
	ttl, err := time.ParseDuration(lease.TTL)
	if err != nil || ttl <= 0 {
		ttl = c.lockTTL
		if ttl == 0 {
			ttl = api.DefaultLockTTL
		}
	}
	c.leaseMu.Lock()
	c.lease = lease.ID
	c.leaseMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	h := &HeldLock{c: c, lease: lease, ttl: ttl, cancel: cancel, done: make(chan struct{}), lost: make(chan struct{})}
	go h.renew(ctx, sent)
	return h
}

// Lock implements targets.Locker (the apply lock that sync/plan takes): it is Hold
// with an unlock that calls HeldLock.Unlock and logs its error to
// ClientOptions.Logger. A lost lease is logged when it is found (see
// HeldLock); use Hold to react to it. A host without /v1/lock (an older
// ferry-host) is not locked: Lock logs a warning and returns a no-op
// unlock.
func (c *Client) Lock(ctx context.Context, holder string) (unlock func(), err error) {
	h, err := c.Hold(ctx, holder)
	if errors.Is(err, ErrLockUnsupported) {
		c.log.LogAttrs(ctx, slog.LevelWarn, "host has no apply lock (older ferry-host); applying without it", slog.String("host", c.base))
		return func() {}, nil
	}
	if err != nil {
		return nil, err
	}
	return func() {
		if err := h.Unlock(); err != nil && !errors.Is(err, ErrLeaseLost) {
			c.log.LogAttrs(context.Background(), slog.LevelWarn, "apply lock not released", slog.String("host", c.base), slog.String("error", err.Error()))
		}
	}, nil
}

// Lock implements targets.Locker for the group: it takes the apply lock of
// every host, one at a time in the order of their sorted endpoints, so
// that two groups sharing hosts cannot deadlock. If one fails (or ctx
// ends) it releases those it took and returns the error. The unlock
// releases all of them.
func (g *Group) Lock(ctx context.Context, holder string) (unlock func(), err error) {
	// One lock per host: a second client of the same endpoint would wait
	// for the first forever.
	order := g.byEndpoint()
	var unlocks []func()
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, c := range order {
		u, err := c.Lock(ctx, holder)
		if err != nil {
			release()
			return nil, fmt.Errorf("host %s: %w", c.Endpoint(), err)
		}
		unlocks = append(unlocks, u)
	}
	return release, nil
}

// Locks implements targets.LockInspector: the host's apply lock, if held,
// with the endpoint as LockInfo.Where.
func (c *Client) Locks(ctx context.Context) ([]targets.LockInfo, error) {
	st, err := c.LockStatus(ctx)
	if err != nil {
		return nil, err
	}
	if !st.Held || st.Lease == nil {
		return nil, nil
	}
	return []targets.LockInfo{lockInfo(c.base, *st.Lease)}, nil
}

func lockInfo(where string, l api.Lease) targets.LockInfo {
	return targets.LockInfo{ID: l.ID, Holder: l.Holder, Where: where, Acquired: l.Acquired, Expires: l.Expires}
}

// Locks implements targets.LockInspector for the group: the apply lock of
// each host that holds one, in the order of the sorted endpoints. A host
// that cannot be asked is an error naming it, returned with the locks of
// the others.
func (g *Group) Locks(ctx context.Context) ([]targets.LockInfo, error) {
	var out []targets.LockInfo
	var errs []error
	for _, c := range g.byEndpoint() {
		ls, err := c.Locks(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", c.Endpoint(), err))
			continue
		}
		out = append(out, ls...)
	}
	return out, errors.Join(errs...)
}

// ReleaseLock implements targets.LockInspector for the group: it releases
// lock id on every host that holds it (asking each first, so that no other
// host sees a DELETE of a lease it never granted).
func (g *Group) ReleaseLock(ctx context.Context, id string) error {
	var errs []error
	for _, c := range g.byEndpoint() {
		ls, err := c.Locks(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", c.Endpoint(), err))
			continue
		}
		for _, l := range ls {
			if strings.EqualFold(l.ID, id) {
				if err := c.ReleaseLock(ctx, l.ID); err != nil {
					errs = append(errs, fmt.Errorf("host %s: %w", c.Endpoint(), err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// byEndpoint returns the group's clients sorted by endpoint, one per
// endpoint.
func (g *Group) byEndpoint() []*Client {
	order := slices.Clone(g.clients)
	slices.SortStableFunc(order, func(a, b *Client) int { return strings.Compare(a.Endpoint(), b.Endpoint()) })
	return slices.CompactFunc(order, func(a, b *Client) bool { return a.Endpoint() == b.Endpoint() })
}
