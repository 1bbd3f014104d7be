package fleet

import (
	"fmt"
	"strings"
	"time"
)

// listMax is how many device IDs a summary names before "+N more".
const listMax = 5

// String renders d for people, in a few lines: the current wave and its
// gate, then what the step did.
func (d Decision) String() string {
	var b strings.Builder
	g := d.Gate
	fmt.Fprintf(&b, "%s, wave %d/%d: %d/%d healthy", d.Outcome, d.Wave+1, d.Waves, g.Healthy, g.Devices)
	if g.Devices > 0 {
		fmt.Fprintf(&b, " (%s, need %s)", pct(float64(g.Healthy)/float64(g.Devices)), pct(g.Need))
	}
	if g.Pending > 0 {
		fmt.Fprintf(&b, ", %d not started", g.Pending)
	}
	if d.Outcome != OutcomeAborted && d.Outcome != OutcomeCompleted && g.Stalled() {
		fmt.Fprintf(&b, ", stalled: %d failed, the gate can no longer hold", g.Failed)
	}
	if !g.Since.IsZero() {
		fmt.Fprintf(&b, ", gate held since %s (soak %s)", g.Since.UTC().Format(time.RFC3339), g.Soak)
	}
	if d.Reason != "" {
		fmt.Fprintf(&b, "\naborted: %s", d.Reason)
	}
	for _, w := range d.Passed {
		fmt.Fprintf(&b, "\nwave %d passed its health gate", w+1)
	}
	if len(d.Start) > 0 {
		fmt.Fprintf(&b, "\nstart %d: %s", len(d.Start), names(d.Start))
	}
	if d.Deferred > 0 {
		fmt.Fprintf(&b, "\n%d waiting for the rate limit", d.Deferred)
	}
	if len(d.Healthy) > 0 {
		fmt.Fprintf(&b, "\nhealthy %d: %s", len(d.Healthy), names(d.Healthy))
	}
	if len(d.Failed) > 0 {
		ids := make([]string, len(d.Failed))
		for i, f := range d.Failed {
			ids[i] = f.ID + " (" + f.Reason + ")"
		}
		fmt.Fprintf(&b, "\nfailed %d: %s", len(d.Failed), names(ids))
	}
	if len(d.RollBack) > 0 {
		fmt.Fprintf(&b, "\nroll back %d: %s", len(d.RollBack), names(d.RollBack))
	}
	if !d.NextCheck.IsZero() {
		fmt.Fprintf(&b, "\nnext check by %s", d.NextCheck.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// Summary renders s for people: the digests, the outcome and the device
// counts, in a few lines.
func (s *State) Summary() string {
	var b strings.Builder
	name := s.App
	if s.Target != "" {
		name += " on " + s.Target
	}
	if name != "" {
		name += ": "
	}
	from := Short(s.From)
	if from == "" {
		from = "(none)"
	}
	fmt.Fprintf(&b, "%s%s -> %s, %s in wave %d since %s", name, from, Short(s.To), s.Outcome, s.Wave+1, s.Started.UTC().Format(time.RFC3339))
	if s.Supersedes != "" {
		fmt.Fprintf(&b, " (supersedes %s)", Short(s.Supersedes))
	}
	c := s.Counts()
	fmt.Fprintf(&b, "\ndevices: %d healthy, %d updating, %d failed, %d rolled back", c.Healthy, c.Updating, c.Failed, c.RolledBack)
	if s.Reason != "" {
		fmt.Fprintf(&b, "\naborted: %s", s.Reason)
	}
	if !s.Finished.IsZero() {
		fmt.Fprintf(&b, "\nfinished %s", s.Finished.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// Short shortens a digest for people: "sha256:" and all but 12 hex digits
// are dropped. Other strings are returned unchanged.
func Short(digest string) string {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if ok && len(h) > 12 {
		return h[:12]
	}
	return digest
}

func names(ids []string) string {
	if len(ids) <= listMax {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:listMax], ", ") + fmt.Sprintf(", +%d more", len(ids)-listMax)
}

func pct(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", 100*f), "0"), ".") + "%"
}
