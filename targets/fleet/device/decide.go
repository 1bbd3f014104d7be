package device

import (
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
	hostapi "github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/core"
)

// ActionKind is what Decide asks the host core to do with one app.
type ActionKind string

// ActionKind values.
const (
	// ActionPut deploys the desired digest (pull, verify, deploy, probe).
	ActionPut ActionKind = "put"
	// ActionReconfigure puts the digest that serves already, with new
	// values or a new owner (the core reconfigures it in place).
	ActionReconfigure ActionKind = "reconfigure"
	// ActionDelete removes an app the desired state no longer has.
	ActionDelete ActionKind = "delete"
)

// Action is one step of Decide's answer.
type Action struct {
	Kind ActionKind
	// App is the desired app (ActionPut, ActionReconfigure); for
	// ActionDelete only its Name is set.
	App api.DesiredApp
}

// Failure is what the device remembers of a digest it was told to run and
// could not: the digest, why, and whether trying it again can help.
type Failure struct {
	// Digest is the artifact that failed.
	Digest string
	// Error is why, a full sentence without secrets.
	Error string
	// Permanent is true when the same digest cannot work on another try
	// (bad or missing signature, an artifact the host rejects, a failed
	// health probe); such a digest is not tried again until the desired
	// state names another. A transient failure (the registry unreachable)
	// is retried with backoff.
	Permanent bool
}

// FailureOf classifies err, the error of a core Put of digest, with
// core.Classify: verification, rejection and bad-request errors are
// permanent; the rest (the registry or a trust root unavailable, a missing
// artifact that may still be pushed, an internal error) are transient.
func FailureOf(digest string, err error) Failure {
	code, _ := core.Classify(err)
	perm := false
	switch code {
	case hostapi.CodeVerification, hostapi.CodeRejected, hostapi.CodeBadRequest:
		perm = true
	}
	return Failure{Digest: digest, Error: err.Error(), Permanent: perm}
}

// Decide compares the desired state with what the host runs (the core's
// List) and the failures the device remembers, and returns what to do,
// puts and reconfigures first (by app name), then deletes. It is a pure
// function:
//
//   - a desired app that does not run, failed to restore, or runs another
//     digest is put — unless that digest failed permanently before, or the
//     host's health prober rolled back from it (AppInfo.RolledBack): the
//     last good version keeps serving and the failure is reported instead;
//   - a desired app that runs its digest but with other values (compared
//     by keyed hash: hashKey is the core's SecretHashKey) or another owner
//     is reconfigured;
//   - an app that runs but is not desired is deleted.
func Decide(d api.Desired, running []hostapi.AppInfo, failed map[string]Failure, hashKey []byte) []Action {
	run := make(map[string]hostapi.AppInfo, len(running))
	for _, ai := range running {
		run[ai.Name] = ai
	}
	var out []Action
	want := map[string]bool{}
	apps := slices.Clone(d.Apps)
	sort.SliceStable(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	for _, a := range apps {
		if want[a.Name] {
			continue // a duplicate: the first one counts
		}
		want[a.Name] = true
		digest := digestOf(a)
		if f, ok := failed[a.Name]; ok && f.Permanent && f.Digest == digest {
			continue
		}
		ai, ok := run[a.Name]
		if ok && ai.RolledBack != nil && ai.RolledBack.From == digest {
			continue
		}
		switch {
		case !ok || ai.Status != hostapi.StatusServing || ai.Digest != digest:
			out = append(out, Action{Kind: ActionPut, App: a})
		case (a.Owner != "" && a.Owner != ai.Owner) ||
			!maps.Equal(hostapi.SecretHashes(hashKey, a.Name, a.Values), ai.SecretHashes):
			out = append(out, Action{Kind: ActionReconfigure, App: a})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(run)) {
		if !want[name] {
			out = append(out, Action{Kind: ActionDelete, App: api.DesiredApp{Name: name}})
		}
	}
	return out
}

// digestOf is the digest a desired app names: Digest, or the one in Ref.
func digestOf(a api.DesiredApp) string {
	if a.Digest != "" {
		return a.Digest
	}
	for i := len(a.Ref) - 1; i >= 0; i-- {
		if a.Ref[i] == '@' {
			return a.Ref[i+1:]
		}
	}
	return ""
}

// Statuses is the per-app part of a status report: one AppStatus for
// every app that is desired or runs, sorted by name. A pure function of
// the desired state (nil before the first one arrived: each app that runs
// is then judged at its own digest), what the core runs and the
// remembered failures:
//
//   - a desired digest that failed permanently while another version
//     serves is PhaseRolledBack with Failed set to it; with nothing
//     serving, PhaseFailed;
//   - a desired digest the health prober rolled back from is
//     PhaseRolledBack with Failed set to it and the prober's reason;
//   - an app that serves its desired digest is PhaseServing when healthy,
//     else PhaseUnhealthy;
//   - anything else on its way (not yet put, a transient failure being
//     retried) is PhaseUpdating, with the last error;
//   - an app recorded on the host that could not be restored is
//     PhaseFailed.
func Statuses(d *api.Desired, running []hostapi.AppInfo, failed map[string]Failure) []api.AppStatus {
	desired := map[string]string{}
	names := map[string]bool{}
	if d != nil {
		for _, a := range d.Apps {
			if _, dup := desired[a.Name]; !dup {
				desired[a.Name] = digestOf(a)
			}
			names[a.Name] = true
		}
	}
	run := map[string]hostapi.AppInfo{}
	for _, ai := range running {
		run[ai.Name] = ai
		names[ai.Name] = true
		if d == nil {
			// No desired state yet (a restart before the first poll):
			// what was restored is reported as what it is.
			desired[ai.Name] = ai.Digest
		}
	}
	out := make([]api.AppStatus, 0, len(names))
	for _, name := range slices.Sorted(maps.Keys(names)) {
		ai, runs := run[name]
		want, isDesired := desired[name]
		serving := runs && ai.Status == hostapi.StatusServing
		s := api.AppStatus{Name: name}
		if serving {
			s.Digest, s.Previous, s.Healthy = ai.Digest, ai.Previous, ai.Healthy
		} else if runs {
			s.Digest = ai.Digest
		}
		f, hasF := failed[name]
		if hasF && isDesired && f.Digest != want {
			hasF = false // a failure of an older desired digest
		}
		rb := (*hostapi.HostRollback)(nil)
		if runs && ai.RolledBack != nil && (!isDesired || ai.RolledBack.From == want) {
			rb = ai.RolledBack
		}
		switch {
		case hasF && f.Permanent && serving:
			s.Phase, s.Failed, s.Error = api.PhaseRolledBack, f.Digest, f.Error
		case hasF && f.Permanent:
			s.Phase, s.Failed, s.Error = api.PhaseFailed, f.Digest, f.Error
		case rb != nil && serving:
			s.Phase, s.Failed = api.PhaseRolledBack, rb.From
			s.Error = "The health probe rolled it back: " + rb.Reason
		case runs && !serving && (!isDesired || ai.Digest == want):
			s.Phase, s.Error = api.PhaseFailed, ai.Message
		case isDesired && (!serving || ai.Digest != want):
			s.Phase = api.PhaseUpdating
			if hasF {
				s.Error = f.Error
			}
		case !isDesired:
			s.Phase = api.PhaseUpdating // being removed
		case !ai.Healthy:
			s.Phase = api.PhaseUnhealthy
		default:
			s.Phase = api.PhaseServing
		}
		out = append(out, s)
	}
	return out
}

// ReportDue says whether the device sends next now: when no report was
// accepted yet, when the apps or the desired version differ from the last
// report the server accepted (last), or when heartbeat has passed since
// it was sent (sentAt). Device info alone (uptime, free memory) changing
// waits for the heartbeat. A pure function.
func ReportDue(last *api.StatusReport, next api.StatusReport, sentAt, now time.Time, heartbeat time.Duration) bool {
	if last == nil {
		return true
	}
	if last.DesiredVersion != next.DesiredVersion || !slices.Equal(last.Apps, next.Apps) {
		return true
	}
	return now.Sub(sentAt) >= heartbeat
}
