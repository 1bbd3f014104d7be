package agent

// This file is the agent's event bus: what a live view (the dashboard's
// server-sent events) needs to know, as it happens. The round publishes
// when it starts and ends and when an app's phase or health changes on a
// target; every notification (notify.go) is published too; cmd/ferry
// publishes the fleet's rollout events and device reports (Publish).
//
// Publishing never blocks: each subscriber has a bounded queue, and a
// subscriber whose queue is full loses its oldest event and gets an
// EventResync in its place, which says "you missed something: re-read
// everything". A slow browser never slows a round.

import (
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/sync/notify"
)

// EventKind names what an Event reports.
type EventKind string

// The kinds of events.
const (
	// EventRoundStarted: a round started (Round, Trigger).
	EventRoundStarted EventKind = "round.started"
	// EventRoundFinished: a round ended (Round, Commit, Result).
	EventRoundFinished EventKind = "round.finished"
	// EventAppChanged: an app's phase or health on a target changed
	// since the last round (App, Target, Digest, Phase, Healthy,
	// Message), or the app appeared or disappeared.
	EventAppChanged EventKind = "app.changed"
	// EventNotification: the agent sent a notification (Notification).
	EventNotification EventKind = "notification"
	// EventFleet: a fleet rollout started, completed or aborted (Target,
	// App, Digest, Message), published by whoever runs the fleet hub.
	EventFleet EventKind = "fleet"
	// EventDevice: a device enrolled, reported or was revoked (coalesced:
	// one event may stand for many reports).
	EventDevice EventKind = "device"
	// EventResync: the subscriber lost events (its queue was full); it
	// should re-read the whole state.
	EventResync EventKind = "resync"
)

// Event is one thing that happened, for live views. It holds names,
// digests, phases and messages, never a secret.
type Event struct {
	// Kind says what happened.
	Kind EventKind `json:"kind"`
	// Time is when (the agent's clock).
	Time time.Time `json:"time"`
	// Round, Trigger, Commit and Result describe a round event.
	Round   uint64 `json:"round,omitempty"`
	Trigger string `json:"trigger,omitempty"`
	Commit  string `json:"commit,omitempty"`
	Result  string `json:"result,omitempty"`
	// App, Target, Digest, Phase, Healthy and Message describe an app or
	// fleet event.
	App     string `json:"app,omitempty"`
	Target  string `json:"target,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Phase   string `json:"phase,omitempty"`
	Healthy bool   `json:"healthy,omitempty"`
	Message string `json:"message,omitempty"`
	// Notification is the notification of an EventNotification.
	Notification *notify.Event `json:"notification,omitempty"`
}

// DefaultEventBuffer is the queue length of a subscription made with
// Subscribe(0).
const DefaultEventBuffer = 64

// Subscription is one subscriber's queue of events. Read C; call Close
// when done (C is not closed, so a reader selects on its own context too).
type Subscription struct {
	// C receives the events in order. When the subscriber fell behind, an
	// EventResync replaces the events it lost.
	C     <-chan Event
	c     chan Event
	bus   *Bus
	once  sync.Once
	drops int // guarded by bus.mu
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
	})
}

// Bus fans events out to subscribers without ever blocking the publisher.
// The zero value is ready to use; it is safe for concurrent use.
type Bus struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Subscribe returns a new subscription whose queue holds buffer events
// (≤ 0 means DefaultEventBuffer).
func (b *Bus) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, bus: b}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[*Subscription]struct{}{}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Publish gives e to every subscriber. It never blocks: a subscriber
// whose queue is full loses its oldest queued event, and e, and gets one
// EventResync instead (which tells it to re-read everything).
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
			continue
		default:
		}
		// Full: make room, and say that something was lost. The reader
		// may take events concurrently; both selects are non-blocking.
		s.drops++
		select {
		case <-s.c:
		default:
		}
		select {
		case s.c <- Event{Kind: EventResync, Time: e.Time}:
		default:
		}
	}
}

// Subscribers returns how many subscriptions are open.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Subscribe subscribes to the agent's events; see Bus.Subscribe.
func (a *Agent) Subscribe(buffer int) *Subscription { return a.bus.Subscribe(buffer) }

// Publish publishes e to the agent's subscribers, stamping Time with the
// agent's clock when it is zero. cmd/ferry publishes the fleet's events
// with it. It never blocks.
func (a *Agent) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = a.clock.Now().UTC()
	}
	a.bus.Publish(e)
}

// notify sends notification e to Options.Notify and publishes it.
func (a *Agent) notify(e notify.Event) {
	if a.opts.Notify != nil {
		a.opts.Notify(e)
	}
	a.Publish(Event{Kind: EventNotification, Time: e.Time, App: e.App, Target: e.Target, Digest: e.Digest,
		Message: string(e.Kind) + ": " + e.Reason, Notification: &e})
}

// publishAppChanges publishes an EventAppChanged for every app and target
// whose digest, phase or health differs between before and after.
func (a *Agent) publishAppChanges(before, after []AppStatus) {
	type key struct{ app, target string }
	old := map[key]AppTargetStatus{}
	for _, s := range before {
		for _, t := range s.Targets {
			old[key{s.Name, t.Target}] = t
		}
	}
	now := a.clock.Now().UTC()
	for _, s := range after {
		for _, t := range s.Targets {
			k := key{s.Name, t.Target}
			o, ok := old[k]
			delete(old, k)
			if ok && o.Digest == t.Digest && o.Phase == t.Phase && o.Healthy == t.Healthy && o.Message == t.Message {
				continue
			}
			a.bus.Publish(Event{Kind: EventAppChanged, Time: now, App: s.Name, Target: t.Target, Digest: t.Digest,
				Phase: t.Phase, Healthy: t.Healthy, Message: t.Message})
		}
	}
	for k, o := range old {
		a.bus.Publish(Event{Kind: EventAppChanged, Time: now, App: k.app, Target: k.target, Digest: o.Digest, Phase: "gone",
			Message: "no longer observed"})
	}
}
