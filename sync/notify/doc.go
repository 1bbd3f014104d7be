// Package notify tells people when something needs them: a rollout
// started, completed or aborted, an apply failed, an app's health
// degraded, an app was rolled back.
//
// An Event is a small value of names, digests, counts and a reason; it
// never carries a secret value. A Notifier delivers each published Event
// to its sinks: a generic JSON webhook, signed with HMAC-SHA256 over a
// timestamp and the body (the X-Ferry-Signature header, checked by
// Verify), and a Slack-compatible incoming webhook (text and blocks).
//
// Delivery never slows the caller: Publish puts the event in each sink's
// bounded queue and returns; when a queue is full the oldest event is
// dropped (and counted). Each sink has its own goroutine that sends in
// order, retrying network errors, 429 and 5xx with exponential backoff and
// jitter (honouring Retry-After) up to a number of attempts; every
// outcome is counted in ferry_notifications_total{sink,kind,result}.
//
// The package is a leaf: it imports nothing of ferry. The agent and the
// fleet hub describe what happened; cmd/ferry wires them to a Notifier.
package notify
