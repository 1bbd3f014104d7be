package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
	hostapi "github.com/ferry-wasm/ferry/targets/host/api"
)

// Applier is what the device needs of the host core (core.Core is one):
// put an app by digest (pull, verify, deploy, probe; a failed put leaves
// the version before serving), delete one, list what runs.
type Applier interface {
	Put(ctx context.Context, name string, req hostapi.PutRequest) (hostapi.AppInfo, error)
	Delete(ctx context.Context, name string) error
	List() []hostapi.AppInfo
}

// Defaults of Options.
const (
	// DefaultHeartbeat is how often a device reports when nothing changed.
	DefaultHeartbeat = time.Minute
	// DefaultCheckEvery is how often a device looks at what it runs for a
	// change worth reporting (a health rollback, a probe turning red).
	DefaultCheckEvery = time.Second
)

// Options configure a Device.
type Options struct {
	// Server is the device server's base URL: https, or http to a
	// loopback address only (CheckServerURL). Required.
	Server string
	// HTTPClient talks to the server. Nil means NewHTTPClient("").
	HTTPClient *http.Client
	// EnrollToken is used once, when DataDir holds no credential yet; it
	// is never logged. Empty with no stored credential is an error.
	EnrollToken string
	// Name is the device's name for the server (EnrollRequest.Name).
	// Empty means the hostname.
	Name string
	// Labels are sent at enrollment (the server records them).
	Labels map[string]string
	// DataDir holds the credential (CredentialFile, 0600). Required.
	DataDir string
	// Core applies desired state. Required.
	Core Applier
	// SecretHashKey is the core's key of AppInfo.SecretHashes, so that
	// the device can tell changed values without keeping them. Required
	// when desired apps carry values (else every round reconfigures).
	SecretHashKey []byte
	// Version is the ferry-host version reported in DeviceInfo.
	Version string
	// Wait is the long-poll wait asked of the server. Zero means
	// api.DefaultWait; it is capped at api.MaxWait.
	Wait time.Duration
	// Backoff bounds the retries after a failed call or a transient
	// apply failure. The zero value is DefaultBackoffMin..DefaultBackoffMax.
	Backoff Backoff
	// Heartbeat is how often the device reports when nothing changed.
	// Zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// CheckEvery is how often the device compares what runs with what it
	// last reported. Zero means DefaultCheckEvery.
	CheckEvery time.Duration
	// Logger receives the device's log lines; never a credential, token or
	// value. Nil discards.
	Logger *slog.Logger
	// Jitter returns a random number in [0, 1) for Backoff.Delay. Nil
	// means math/rand/v2.
	Jitter func() float64
	// AfterChange, when set, is called after every apply round that
	// deployed or removed an app, whatever the outcome, on the device
	// loop's goroutine. Start sets it to trim the process's memory
	// (trim.go) unless Config.NoTrim.
	AfterChange func()
}

// Device is ferry-host's device mode without its listener: it enrolls
// once, then long-polls its desired state, applies it with the host core
// and reports status. Create it with New; Run it once.
type Device struct {
	opts   Options
	client *Client
	log    *slog.Logger
	start  time.Time
	kickc  chan struct{}

	mu       sync.Mutex
	desired  *api.Desired
	failures map[string]Failure
}

// New checks opts and returns a Device. It does not contact the server.
func New(opts Options) (*Device, error) {
	if opts.Core == nil {
		return nil, errors.New("device: no core")
	}
	if opts.DataDir == "" {
		return nil, errors.New("device: no data directory")
	}
	c, err := NewClient(opts.Server, opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	if opts.Wait <= 0 {
		opts.Wait = api.DefaultWait
	}
	opts.Wait = min(opts.Wait, api.MaxWait)
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = DefaultCheckEvery
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	if opts.Name == "" {
		opts.Name, _ = os.Hostname()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Device{opts: opts, client: c, log: log, start: time.Now(), kickc: make(chan struct{}, 1), failures: map[string]Failure{}}, nil
}

// Run enrolls the device (once: a stored credential is used as it is),
// then polls, applies and reports until ctx ends, and returns nil then.
// While the server is unreachable the apps keep serving and the device
// retries with backoff. It returns an error only when it cannot get an
// identity: the token refused (ErrBadToken), no token and no credential,
// or the credential file unusable (ErrCredentialFile).
func (d *Device) Run(ctx context.Context) error {
	cred, err := d.identity(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.reportLoop(ctx, cred) })
	d.pollLoop(ctx, cred)
	wg.Wait()
	return nil
}

// identity returns the stored credential, or enrolls (retrying while the
// server is unavailable) and stores the new one.
func (d *Device) identity(ctx context.Context) (Credential, error) {
	cred, ok, err := LoadCredential(d.opts.DataDir)
	if err != nil {
		return Credential{}, err
	}
	if ok {
		if cred.Server != d.client.URL() {
			d.log.Warn("the stored credential was issued by another server URL; using it with this one",
				"enrolled_with", cred.Server, "server", d.client.URL())
		}
		d.log.Info("device identity loaded", "device_id", cred.DeviceID)
		return cred, nil
	}
	if d.opts.EnrollToken == "" {
		return Credential{}, fmt.Errorf("%w: %s holds no credential and no enrollment token was given", ErrCredentialFile, d.opts.DataDir)
	}
	for attempt := 0; ; attempt++ {
		req := api.EnrollRequest{Token: d.opts.EnrollToken, Name: d.opts.Name, Labels: d.opts.Labels,
			Info: Info(d.opts.Version, d.opts.DataDir, d.start)}
		res, err := d.client.Enroll(ctx, req)
		if err == nil {
			cred = Credential{Server: d.client.URL(), DeviceID: res.DeviceID, Secret: res.Credential}
			if err := SaveCredential(d.opts.DataDir, cred); err != nil {
				return Credential{}, fmt.Errorf("storing the credential the server issued: %w", err)
			}
			d.log.Info("device enrolled", "device_id", cred.DeviceID, "labels", len(res.Labels))
			return cred, nil
		}
		if errors.Is(err, ErrBadToken) || errors.Is(err, ErrInsecureURL) || ctx.Err() != nil {
			return Credential{}, err
		}
		delay := retryDelay(d.opts.Backoff.Delay(attempt, d.opts.Jitter()), err)
		d.log.Warn("enrollment failed; retrying", "error", err.Error(), "retry_in", delay.Round(time.Millisecond))
		if !sleep(ctx, delay) {
			return Credential{}, ctx.Err()
		}
	}
}

// pollLoop long-polls desired state and applies it until ctx ends.
// A version is "had" (sent in If-None-Match) only once everything it asks
// is done or failed for good; after a transient failure the device waits
// a backoff and asks again at once.
func (d *Device) pollLoop(ctx context.Context, cred Credential) {
	had := ""
	var cur *api.Desired
	fails, applyFails := 0, 0
	for ctx.Err() == nil {
		des, changed, err := d.client.Desired(ctx, cred, had, d.opts.Wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			delay := retryDelay(d.opts.Backoff.Delay(fails, d.opts.Jitter()), err)
			fails++
			msg := "server unreachable; the apps keep serving"
			if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden) {
				msg = "the server refused this device's credential; the apps keep serving"
			}
			d.log.Warn(msg, "error", err.Error(), "failures", fails, "retry_in", delay.Round(time.Millisecond))
			if !sleep(ctx, delay) {
				return
			}
			continue
		}
		if fails > 0 {
			d.log.Info("server reachable again", "after_failures", fails)
			fails = 0
			d.kick()
		}
		if changed && cur != nil && had != "" && des.Version == had {
			// A server that answers 200 with the version the device sent
			// in If-None-Match would make this loop spin: pace it.
			if !sleep(ctx, d.opts.Backoff.Delay(0, d.opts.Jitter())) {
				return
			}
		}
		if changed {
			cur = &des
			d.mu.Lock()
			d.desired = cur
			d.mu.Unlock()
			d.log.Info("desired state received", "version", des.Version, "apps", len(des.Apps))
		}
		if cur == nil {
			continue
		}
		settled := d.apply(ctx, *cur)
		d.kick()
		if settled {
			had, applyFails = cur.Version, 0
			continue
		}
		had = ""
		delay := d.opts.Backoff.Delay(applyFails, d.opts.Jitter())
		applyFails++
		if !sleep(ctx, delay) {
			return
		}
	}
}

// apply does what Decide says and remembers what failed. It reports
// whether everything is done or failed for good (nothing to retry).
func (d *Device) apply(ctx context.Context, des api.Desired) bool {
	d.mu.Lock()
	failed := maps.Clone(d.failures)
	d.mu.Unlock()
	acts := Decide(des, d.opts.Core.List(), failed, d.opts.SecretHashKey)
	if len(acts) > 0 && d.opts.AfterChange != nil {
		defer d.opts.AfterChange()
	}
	settled := true
	for _, a := range acts {
		name := a.App.Name
		if a.Kind == ActionDelete {
			if err := d.opts.Core.Delete(ctx, name); err != nil {
				settled = false
				d.log.Error("removing app failed", "app", name, "error", err.Error())
				continue
			}
			d.mu.Lock()
			delete(d.failures, name)
			d.mu.Unlock()
			d.log.Info("app removed", "app", name)
			continue
		}
		digest := digestOf(a.App)
		d.log.Info("deploying app", "app", name, "digest", digest, "action", string(a.Kind))
		start := time.Now()
		_, err := d.opts.Core.Put(ctx, name, hostapi.PutRequest{Ref: a.App.Ref, Digest: a.App.Digest, Secrets: a.App.Values, Owner: a.App.Owner})
		if err == nil {
			d.mu.Lock()
			delete(d.failures, name)
			d.mu.Unlock()
			d.log.Info("app deployed", "app", name, "digest", digest, "took", time.Since(start).Round(time.Millisecond))
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		f := FailureOf(digest, err)
		if a.Kind == ActionReconfigure {
			f.Permanent = false // the digest itself serves; retry the values
		}
		d.mu.Lock()
		d.failures[name] = f
		d.mu.Unlock()
		if f.Permanent {
			d.log.Error("app version refused; the last good version keeps serving", "app", name, "digest", digest, "error", f.Error)
		} else {
			settled = false
			d.log.Warn("deploying app failed; retrying", "app", name, "digest", digest, "error", f.Error)
		}
	}
	// Failures of apps no longer desired are forgotten.
	want := map[string]bool{}
	for _, a := range des.Apps {
		want[a.Name] = true
	}
	d.mu.Lock()
	maps.DeleteFunc(d.failures, func(n string, _ Failure) bool { return !want[n] })
	d.mu.Unlock()
	return settled
}

// Report is the status the device would report now.
func (d *Device) Report() api.StatusReport {
	d.mu.Lock()
	des := d.desired
	failed := maps.Clone(d.failures)
	d.mu.Unlock()
	rep := api.StatusReport{Apps: Statuses(des, d.opts.Core.List(), failed)}
	if des != nil {
		rep.DesiredVersion = des.Version
	}
	return rep
}

// reportLoop sends the status whenever it changed (checked every
// CheckEvery, and at once after an apply) and every Heartbeat, until ctx
// ends; failed reports are retried with backoff.
func (d *Device) reportLoop(ctx context.Context, cred Credential) {
	t := time.NewTicker(d.opts.CheckEvery)
	defer t.Stop()
	var last *api.StatusReport
	var sentAt, nextTry time.Time
	fails := 0
	for {
		rep := d.Report()
		now := time.Now()
		if !now.Before(nextTry) && ReportDue(last, rep, sentAt, now, d.opts.Heartbeat) {
			rep.Info = Info(d.opts.Version, d.opts.DataDir, d.start)
			if err := d.client.PutStatus(ctx, cred, rep); err != nil {
				if ctx.Err() != nil {
					return
				}
				delay := retryDelay(d.opts.Backoff.Delay(fails, d.opts.Jitter()), err)
				nextTry = now.Add(delay)
				fails++
				if fails == 1 {
					d.log.Warn("status report failed; retrying", "error", err.Error(), "retry_in", delay.Round(time.Millisecond))
				} else {
					d.log.Debug("status report failed; retrying", "error", err.Error(), "retry_in", delay.Round(time.Millisecond))
				}
			} else {
				if fails > 0 {
					d.log.Info("status reported again", "after_failures", fails)
				}
				last, sentAt, fails, nextTry = &rep, now, 0, time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kickc:
		}
	}
}

// kick makes the reporter look at once.
func (d *Device) kick() {
	select {
	case d.kickc <- struct{}{}:
	default:
	}
}

// sleep waits for delay or ctx; it reports whether delay passed.
func sleep(ctx context.Context, delay time.Duration) bool {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryDelay is the wait before retrying a call that failed with err: the
// backoff's, or longer when the server asked for longer (RetryAfter: an
// agent that is not the fleet's leader answers 503 with Retry-After, so
// its devices come back when a leader may have taken over, not at once).
func retryDelay(backoff time.Duration, err error) time.Duration {
	return max(backoff, RetryAfter(err))
}
