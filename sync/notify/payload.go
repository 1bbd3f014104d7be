package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// PayloadVersion is the version of the webhook body's format. Fields may
// be added within a version; none is removed or changes meaning.
const PayloadVersion = 1

// WebhookPayload is the JSON body of a generic webhook delivery: the
// Event's fields, the format version and a one-line summary for people.
type WebhookPayload struct {
	// Version is PayloadVersion.
	Version int `json:"version"`
	Event
	// Summary is the event in one sentence (what the Slack text says).
	Summary string `json:"summary"`
}

// WebhookBody returns the generic webhook body of e.
func WebhookBody(e Event) ([]byte, error) {
	return marshal(WebhookPayload{Version: PayloadVersion, Event: e, Summary: Summary(e)})
}

// marshal is json.Marshal without HTML escapes ("<" stays "<").
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// SlackPayload is a Slack incoming-webhook message: Text is the
// notification's fallback, Blocks its layout. Mattermost, Rocket.Chat and
// others accept the same shape (Text at least).
type SlackPayload struct {
	// Text is Summary: what notifications and clients without blocks show.
	Text string `json:"text"`
	// Blocks are a section (the headline and reason) and a context line
	// (app, target, digests, commit, round, device counts).
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is a Block Kit block: a "section" with Text or a "context"
// with Elements.
type SlackBlock struct {
	// Type is "section" or "context".
	Type string `json:"type"`
	// Text is a section's text.
	Text *SlackText `json:"text,omitempty"`
	// Elements are a context's texts.
	Elements []SlackText `json:"elements,omitempty"`
}

// SlackText is a Block Kit text object ("mrkdwn").
type SlackText struct {
	// Type is "mrkdwn".
	Type string `json:"type"`
	// Text is Slack mrkdwn, with &, < and > escaped.
	Text string `json:"text"`
}

// SlackBody returns the Slack incoming-webhook body of e.
func SlackBody(e Event) ([]byte, error) {
	head := fmt.Sprintf("%s *%s*", icon(e.Kind), mrkdwn(title(e)))
	if r := e.Reason; r != "" {
		head += "\n>" + strings.ReplaceAll(mrkdwn(r), "\n", "\n>")
	}
	var ctx []string
	add := func(label, v string) {
		if v != "" {
			ctx = append(ctx, label+" `"+mrkdwn(v)+"`")
		}
	}
	add("app", e.App)
	add("target", e.Target)
	add("digest", ShortDigest(e.Digest))
	if e.Kind == KindRollback {
		add("now", ShortDigest(e.Previous))
	} else {
		add("previous", ShortDigest(e.Previous))
	}
	add("commit", shortSHA(e.Commit))
	if e.Round != 0 {
		add("round", fmt.Sprint(e.Round))
	}
	if d := e.Devices; d != nil {
		ctx = append(ctx, mrkdwn(devices(*d)))
	}
	p := SlackPayload{Text: Summary(e), Blocks: []SlackBlock{{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: head}}}}
	if len(ctx) > 0 {
		p.Blocks = append(p.Blocks, SlackBlock{Type: "context", Elements: []SlackText{{Type: "mrkdwn", Text: strings.Join(ctx, " · ")}}})
	}
	return marshal(p)
}

// Summary returns e in one sentence for people.
func Summary(e Event) string {
	s := title(e)
	switch {
	case e.Kind == KindRolloutCompleted && e.Devices != nil:
		s += fmt.Sprintf(": %d of %d devices healthy", e.Devices.Healthy, e.Devices.Total)
	case e.Reason != "":
		s += ": " + e.Reason
	}
	return s
}

// title is the event's headline, without its reason.
func title(e Event) string {
	app := orDash(e.App)
	where := ""
	if e.Target != "" {
		where = " on target " + e.Target
	}
	switch e.Kind {
	case KindRolloutStarted:
		from := ShortDigest(e.Previous)
		if from == "" {
			from = "(none)"
		}
		return fmt.Sprintf("Rollout of %s%s started (%s → %s)", app, where, from, ShortDigest(e.Digest))
	case KindRolloutCompleted:
		return fmt.Sprintf("Rollout of %s%s completed (%s)", app, where, ShortDigest(e.Digest))
	case KindRolloutAborted:
		return fmt.Sprintf("Rollout of %s%s aborted (%s)", app, where, ShortDigest(e.Digest))
	case KindApplyFailed:
		return fmt.Sprintf("Deploying %s%s failed (%s)", app, where, ShortDigest(e.Digest))
	case KindHealthDegraded:
		return fmt.Sprintf("%s%s is unhealthy (%s)", app, where, ShortDigest(e.Digest))
	case KindRollback:
		by := ""
		switch e.By {
		case ByHost:
			by = " by the host itself"
		case ByAgent:
			by = " by the agent"
		}
		to := ShortDigest(e.Previous)
		if to == "" {
			to = "nothing (the new app was removed)"
		}
		return fmt.Sprintf("%s%s was rolled back%s from %s to %s", app, where, by, ShortDigest(e.Digest), to)
	}
	return fmt.Sprintf("ferry event %s for %s%s", e.Kind, app, where)
}

func icon(k Kind) string {
	switch k {
	case KindRolloutStarted:
		return ":rocket:"
	case KindRolloutCompleted:
		return ":white_check_mark:"
	case KindHealthDegraded:
		return ":warning:"
	case KindRollback:
		return ":leftwards_arrow_with_hook:"
	}
	return ":x:"
}

func devices(d Devices) string {
	return fmt.Sprintf("devices: %d started, %d healthy, %d updating, %d failed, %d rolled back", d.Total, d.Healthy, d.Updating, d.Failed, d.RolledBack)
}

// mrkdwn escapes the three characters Slack's mrkdwn gives meaning to.
func mrkdwn(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// ShortDigest returns "sha256:" and the first 12 hex digits of digest d.
func ShortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
