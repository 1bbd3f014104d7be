package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sink names, the sink label of ferry_notifications_total.
const (
	SinkWebhook = "webhook"
	SinkSlack   = "slack"
)

// Results, the result label of ferry_notifications_total.
const (
	// ResultDelivered: the receiver answered 2xx.
	ResultDelivered = "delivered"
	// ResultFailed: every attempt failed with a network error, 429 or
	// 5xx; the event is given up.
	ResultFailed = "failed"
	// ResultRejected: the receiver answered another 4xx (a wrong URL or
	// secret); retrying cannot help, so the event is given up at once.
	ResultRejected = "rejected"
	// ResultDropped: the sink's queue was full, so its oldest event was
	// dropped unsent.
	ResultDropped = "dropped"
)

// Results returns all the results, in a stable order (a fresh slice).
func Results() []string {
	return []string{ResultDelivered, ResultFailed, ResultRejected, ResultDropped}
}

// ErrOptions is wrapped by New's errors.
var ErrOptions = errors.New("notify: invalid options")

// Options configure a Notifier. The zero value of each field is its
// default; with neither Webhook nor Slack the Notifier has no sink and
// Publish does nothing.
type Options struct {
	// Webhook is the URL (http or https) of the generic JSON webhook.
	// Empty means none.
	Webhook string
	// Secret is the webhook's HMAC key (required with Webhook; at least
	// 16 bytes). It is never logged or sent.
	Secret []byte
	// Slack is the URL of a Slack-compatible incoming webhook. Empty means
	// none. Such URLs are secrets: only their scheme and host are ever
	// logged.
	Slack string
	// Client sends the deliveries. Nil means a client of its own, which
	// follows no redirects.
	Client *http.Client
	// Timeout bounds one attempt. Zero means 10 seconds.
	Timeout time.Duration
	// QueueSize bounds each sink's queue of events not yet delivered;
	// when it is full the oldest is dropped. Zero means 1000.
	QueueSize int
	// MaxAttempts is how many times one event is tried before it is given
	// up. Zero means 8.
	MaxAttempts int
	// MinBackoff is the wait after the first failed attempt; each next
	// one doubles, capped at MaxBackoff, and is jittered to between half
	// and all of it. A Retry-After of the receiver replaces it (capped at
	// MaxBackoff). Zero means 1 second.
	MinBackoff time.Duration
	// MaxBackoff caps a wait between attempts. Zero means 5 minutes.
	MaxBackoff time.Duration
	// Logger receives one line per event given up or dropped, and debug
	// lines per attempt. Nil means no logging.
	Logger *slog.Logger
	// Metrics, when set, gets ferry_notifications_total registered.
	Metrics prometheus.Registerer
	// Now is the clock of signatures and event times. Nil means time.Now.
	Now func() time.Time
}

// Notifier delivers events to its sinks. Publish may be called before,
// during or after Start, from any goroutine; events published before
// Start wait in the queues.
type Notifier struct {
	opts    Options
	log     *slog.Logger
	sinks   []*sink
	total   *prometheus.CounterVec
	scrub   *strings.Replacer
	started atomic.Bool
}

// sink is one receiver and its queue.
type sink struct {
	name   string
	url    string
	shown  string // the URL as logs show it
	encode func(Event) ([]byte, error)
	sign   bool

	mu    sync.Mutex
	queue ring
	wake  chan struct{}
}

// ring is a bounded FIFO of events that drops its oldest when full.
type ring struct {
	buf     []Event
	head, n int
}

// push appends e; when the ring is full it overwrites the oldest event
// and returns it.
func (r *ring) push(e Event) (dropped Event, full bool) {
	if r.n == len(r.buf) {
		dropped = r.buf[r.head]
		r.buf[r.head] = e
		r.head = (r.head + 1) % len(r.buf)
		return dropped, true
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
	return Event{}, false
}

// pop removes and returns the oldest event.
func (r *ring) pop() (Event, bool) {
	if r.n == 0 {
		return Event{}, false
	}
	e := r.buf[r.head]
	r.buf[r.head] = Event{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return e, true
}

// New checks opts and returns a Notifier; Start runs its deliveries.
// Errors wrap ErrOptions, or come from registering the metric.
func New(opts Options) (*Notifier, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1000
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{opts: opts, log: log}
	var secrets []string
	if opts.Webhook != "" {
		if err := checkURL(opts.Webhook); err != nil {
			return nil, fmt.Errorf("%w: webhook URL %s: %w", ErrOptions, RedactURL(opts.Webhook), err)
		}
		if len(opts.Secret) < 16 {
			return nil, fmt.Errorf("%w: the webhook needs a signing secret of at least 16 bytes", ErrOptions)
		}
		n.sinks = append(n.sinks, &sink{name: SinkWebhook, url: opts.Webhook, encode: WebhookBody, sign: true})
		secrets = append(secrets, opts.Webhook, string(opts.Secret))
	}
	if opts.Slack != "" {
		if err := checkURL(opts.Slack); err != nil {
			return nil, fmt.Errorf("%w: Slack URL %s: %w", ErrOptions, RedactURL(opts.Slack), err)
		}
		n.sinks = append(n.sinks, &sink{name: SinkSlack, url: opts.Slack, encode: SlackBody})
		secrets = append(secrets, opts.Slack)
	}
	var pairs []string
	for _, s := range secrets {
		pairs = append(pairs, s, "[redacted]")
	}
	n.scrub = strings.NewReplacer(pairs...)
	for _, s := range n.sinks {
		s.shown = RedactURL(s.url)
		s.wake = make(chan struct{}, 1)
		s.queue.buf = make([]Event, opts.QueueSize)
	}
	n.total = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_notifications_total",
		Help: "Notifications by sink (webhook, slack), event kind and result (delivered, failed, rejected, dropped).",
	}, []string{"sink", "kind", "result"})
	for _, s := range n.sinks {
		for _, k := range Kinds() {
			for _, r := range Results() {
				n.total.WithLabelValues(s.name, string(k), r)
			}
		}
	}
	if opts.Metrics != nil {
		if err := opts.Metrics.Register(n.total); err != nil {
			return nil, fmt.Errorf("notify: metrics: %w", err)
		}
	}
	return n, nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return errors.New("want an http or https URL with a host")
	}
	return nil
}

// RedactURL returns raw with only its scheme and host, and "/…" when it
// has more: what logs and errors may show of a webhook URL (a Slack URL's
// path is its secret).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[invalid URL]"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// Sinks returns the names of the Notifier's sinks with their redacted
// URLs ("webhook https://hooks.example.com/…"), for a start-up line.
func (n *Notifier) Sinks() []string {
	var out []string
	for _, s := range n.sinks {
		out = append(out, s.name+" "+s.shown)
	}
	return out
}

// userinfo matches the credentials of a URL in free text.
var userinfo = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://)[^/\s@]+@`)

// clean removes from s the Notifier's own secrets (its URLs and signing
// secret) and URL credentials, so that no event carries them even if an
// error message did.
func (n *Notifier) clean(s string) string {
	if s == "" {
		return s
	}
	return userinfo.ReplaceAllString(n.scrub.Replace(s), "${1}[redacted]@")
}

// Publish queues e for every sink and returns at once; it never blocks on
// a receiver. It sets e.ID and e.Time when they are empty. When a sink's
// queue is full, its oldest event is dropped (counted as dropped).
func (n *Notifier) Publish(e Event) {
	if n == nil || len(n.sinks) == 0 {
		return
	}
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Time.IsZero() {
		e.Time = n.opts.Now()
	}
	e.Time = e.Time.UTC()
	e.Reason = n.clean(e.Reason)
	e.App, e.Target = n.clean(e.App), n.clean(e.Target)
	for _, s := range n.sinks {
		s.mu.Lock()
		old, full := s.queue.push(e)
		s.mu.Unlock()
		if full {
			n.total.WithLabelValues(s.name, string(old.Kind), ResultDropped).Inc()
			n.log.Warn("notification dropped: the queue is full", "sink", s.name, "url", s.shown, "kind", old.Kind, "app", old.App)
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Publisher returns Publish as a function, or nil for a nil Notifier (so
// that an Options.Notify-style hook stays unset and its caller skips
// describing events).
func (n *Notifier) Publisher() func(Event) {
	if n == nil {
		return nil
	}
	return n.Publish
}

// Start delivers queued events until ctx ends, one goroutine per sink,
// each in order; it returns nil when ctx ends (events still queued are
// not sent), or an error if Start was already called.
func (n *Notifier) Start(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("notify: notifier already started")
	}
	var wg sync.WaitGroup
	for _, s := range n.sinks {
		wg.Go(func() { n.run(ctx, s) })
	}
	wg.Wait()
	return nil
}

func (n *Notifier) run(ctx context.Context, s *sink) {
	for {
		s.mu.Lock()
		e, ok := s.queue.pop()
		s.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		n.deliver(ctx, s, e)
		if ctx.Err() != nil {
			return
		}
	}
}

// deliver sends e to s, retrying, and counts the outcome.
func (n *Notifier) deliver(ctx context.Context, s *sink, e Event) {
	body, err := s.encode(e)
	if err != nil { // cannot happen: Events always marshal
		n.log.Error("notification not encoded", "sink", s.name, "kind", e.Kind, "err", err.Error())
		n.total.WithLabelValues(s.name, string(e.Kind), ResultRejected).Inc()
		return
	}
	var why string
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := n.attempt(ctx, s, e, body)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && status/100 == 2:
			n.log.Debug("notification delivered", "sink", s.name, "kind", e.Kind, "app", e.App, "attempts", attempt)
			n.total.WithLabelValues(s.name, string(e.Kind), ResultDelivered).Inc()
			return
		case err == nil && status != http.StatusTooManyRequests && status < 500:
			n.log.Warn("notification rejected by the receiver; not retried", "sink", s.name, "url", s.shown, "kind", e.Kind, "app", e.App, "status", status)
			n.total.WithLabelValues(s.name, string(e.Kind), ResultRejected).Inc()
			return
		case err != nil:
			why = err.Error()
		default:
			why = fmt.Sprintf("HTTP %d", status)
		}
		if attempt >= n.opts.MaxAttempts {
			n.log.Warn("notification given up", "sink", s.name, "url", s.shown, "kind", e.Kind, "app", e.App, "attempts", attempt, "err", why)
			n.total.WithLabelValues(s.name, string(e.Kind), ResultFailed).Inc()
			return
		}
		wait := n.backoff(attempt)
		if retryAfter > 0 {
			wait = min(retryAfter, n.opts.MaxBackoff)
		}
		n.log.Debug("notification attempt failed; retrying", "sink", s.name, "kind", e.Kind, "attempt", attempt, "err", why, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the wait after failed attempt n (1-based): MinBackoff
// doubling, capped at MaxBackoff, jittered to [d/2, d].
func (n *Notifier) backoff(attempt int) time.Duration {
	d := min(n.opts.MinBackoff<<min(attempt-1, 30), n.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// attempt makes one request: it returns the status, the receiver's
// Retry-After (zero when none) or an error without the URL in it.
func (n *Notifier) attempt(ctx context.Context, s *sink, e Event, body []byte) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(string(body)))
	if err != nil {
		return 0, 0, errors.New("cannot make the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ferry-notify/1")
	if s.sign {
		req.Header.Set("X-Ferry-Event", string(e.Kind))
		req.Header.Set("X-Ferry-Delivery", e.ID)
		req.Header.Set(SignatureHeader, Sign(n.opts.Secret, body, n.opts.Now()))
	}
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		// A *url.Error names the URL, which may be a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, 0, errors.New(n.clean(err.Error()))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), n.opts.Now()), nil
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
