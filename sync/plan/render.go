package plan

import (
	"fmt"
	"io"
	"strings"
)

// RenderOptions tune Plan.RenderWith. The zero value renders plain text.
type RenderOptions struct {
	// Color adds ANSI colours (green create, yellow update, red delete and
	// errors), for a terminal.
	Color bool
	// ShowNoops lists unchanged apps too. False (the default) only counts
	// them.
	ShowNoops bool
}

// Render writes p as text for a person, in the manner of Terraform:
//
//   - create hello
//     ~ update api
//   - delete old
//     … wait   web
//
// each with its digests and reasons, the diagnostics, and a summary line
// ("Plan: 1 to create, 2 to update, 0 to delete."). Digests are shortened to
// 12 hex digits; the JSON form (MarshalPlan) has them in full. Nothing
// rendered is secret.
func (p *Plan) Render(w io.Writer) error { return p.RenderWith(w, RenderOptions{}) }

// RenderWith is Render with options.
func (p *Plan) RenderWith(w io.Writer, o RenderOptions) error {
	var b strings.Builder
	col := func(code, s string) string {
		if !o.Color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	commit := p.Commit
	if commit == "" {
		commit = "(none)"
	}
	fmt.Fprintf(&b, "ferry plan for commit %s, computed %s\n", commit, p.CreatedAt.UTC().Format("2006-01-02 15:04:05 MST"))
	for _, t := range p.Targets {
		typ := ""
		if t.Type != "" {
			typ = " (" + t.Type + ")"
		}
		fmt.Fprintf(&b, "\nTarget %s%s", t.Name, typ)
		if t.Errored {
			b.WriteString(": " + col("1;31", "ERRORED") + "\n")
		} else {
			fmt.Fprintf(&b, ", observed state %s:\n", ShortDigest(t.Fingerprint))
		}
		noops := 0
		for _, ch := range t.Changes {
			var sym, word, code string
			switch ch.Action {
			case ActionCreate:
				sym, word, code = "+", "create", "32"
			case ActionUpdate:
				sym, word, code = "~", "update", "33"
			case ActionDelete:
				sym, word, code = "-", "delete", "31"
			case ActionWait:
				sym, word, code = "…", "wait  ", "36"
			default:
				noops++
				if !o.ShowNoops {
					continue
				}
				sym, word, code = " ", "no-op ", "0"
			}
			fmt.Fprintf(&b, "  %s %s\n", col(code, sym+" "+word), ch.App)
			switch {
			case ch.Before != nil && ch.After != nil && ch.Before.Digest != ch.After.Digest:
				fmt.Fprintf(&b, "      digest: %s → %s\n", ShortDigest(ch.Before.Digest), ShortDigest(ch.After.Digest))
			case ch.After != nil:
				fmt.Fprintf(&b, "      digest: %s\n", ShortDigest(ch.After.Digest))
			case ch.Before != nil:
				fmt.Fprintf(&b, "      digest: %s\n", ShortDigest(ch.Before.Digest))
			}
			if ch.After != nil && ch.After.Ref != "" && ch.Action != ActionNoop && ch.Action != ActionWait {
				fmt.Fprintf(&b, "      ref:    %s\n", ch.After.Ref)
			}
			for _, r := range ch.Reasons {
				fmt.Fprintf(&b, "      reason: %s\n", r)
			}
			for _, l := range RolloutLines(ch) {
				fmt.Fprintf(&b, "      %s\n", l)
			}
			for _, d := range ch.Objects {
				fmt.Fprintf(&b, "      object: %s %s", d.Change, d.Object)
				if len(d.Fields) > 0 {
					fmt.Fprintf(&b, " (%s)", strings.Join(d.Fields, ", "))
				}
				b.WriteString("\n")
			}
			if ch.After != nil && ch.Action != ActionNoop && ch.Action != ActionWait {
				for _, c := range ch.After.App.Components {
					fmt.Fprintf(&b, "      component %s: %s", c.Name, ShortDigest(c.Digest))
					if len(c.Routes) > 0 {
						fmt.Fprintf(&b, " routes %s", strings.Join(c.Routes, " "))
					}
					b.WriteString("\n")
				}
			}
		}
		if noops > 0 && !o.ShowNoops {
			fmt.Fprintf(&b, "    (%d unchanged)\n", noops)
		}
		if len(t.Changes) == 0 && !t.Errored {
			b.WriteString("    (no apps)\n")
		}
		renderDiags(&b, t.Diagnostics, col)
	}
	if len(p.Diagnostics) > 0 {
		b.WriteString("\n")
		renderDiags(&b, p.Diagnostics, col)
	}
	c := p.Counts()
	waiting := ""
	if c.Wait > 0 {
		waiting = fmt.Sprintf(", %d waiting for a rollout in progress", c.Wait)
	}
	b.WriteString("\n")
	switch {
	case p.Errored():
		fmt.Fprintf(&b, "%s Plan: %d to create, %d to update, %d to delete%s.\n",
			col("1;31", "The plan has errors and cannot be applied."), c.Create, c.Update, c.Delete, waiting)
	case !p.HasChanges() && c.Wait > 0:
		fmt.Fprintf(&b, "No changes. %d %s still rolling out the desired version; a later plan shows how it ends.\n",
			c.Wait, plural(c.Wait, "app is", "apps are"))
	case !p.HasChanges():
		b.WriteString("No changes. The targets match the desired state.\n")
	default:
		fmt.Fprintf(&b, "Plan: %d to create, %d to update, %d to delete%s.\n", c.Create, c.Update, c.Delete, waiting)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func renderDiags(b *strings.Builder, ds Diagnostics, col func(code, s string) string) {
	for _, d := range ds {
		var label string
		switch d.Severity {
		case SeverityError:
			label = col("1;31", "Error:")
		case SeverityWarning:
			label = col("1;33", "Warning:")
		default:
			label = "Note:"
		}
		subject := ""
		if d.App != "" {
			subject = "app " + d.App + ": "
		}
		fmt.Fprintf(b, "    %s %s%s\n", label, subject, d.Summary)
		if d.Detail != "" {
			fmt.Fprintf(b, "      %s\n", d.Detail)
		}
	}
}

// RolloutLines renders ch.Rollout for people, one line each: for a create
// or update "rollout: roll out DIGEST to N matching devices in W waves
// (a, b, c devices; at most x, y, z a minute)", and for the app's current
// rollout "current: FROM → TO running, wave k/W: 3 healthy, 1 updating,
// 0 failed, 0 rolled back, 16 pending" (with ", paused", ", stalled", or
// "aborted: REASON"). None when ch has no preview. The agent records the
// same lines in its history.
func RolloutLines(ch Change) []string {
	pv := ch.Rollout
	if pv == nil {
		return nil
	}
	var out []string
	if ch.Action == ActionCreate || ch.Action == ActionUpdate {
		l := fmt.Sprintf("rollout: roll out %s to %d matching %s in %d %s", ShortDigest(pv.Digest),
			pv.Devices, plural(pv.Devices, "device", "devices"), len(pv.Waves), plural(len(pv.Waves), "wave", "waves"))
		if len(pv.Waves) > 0 {
			l += " (" + joinInts(pv.Waves) + " devices"
			if len(pv.Rates) > 0 {
				l += "; at most " + joinInts(pv.Rates) + " a minute"
			}
			l += ")"
		}
		out = append(out, l)
	}
	if c := pv.Current; c != nil {
		from := ShortDigest(c.From)
		if from == "" {
			from = "(none)"
		}
		l := fmt.Sprintf("current: %s → %s %s, wave %d/%d: %d healthy, %d updating, %d failed, %d rolled back, %d pending",
			from, ShortDigest(c.To), c.Outcome, c.Wave, c.Waves, c.Healthy, c.Updating, c.Failed, c.RolledBack, c.Pending)
		if c.Paused {
			l += ", paused"
		}
		if c.Stalled {
			l += ", stalled (the wave's health gate can no longer hold)"
		}
		if c.Reason != "" {
			l += "; reason: " + c.Reason
		}
		out = append(out, l)
	}
	return out
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
