package fleet

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// StateVersion is the format version written into every State. LoadState
// refuses any other.
const StateVersion = 1

// Outcome is where a rollout stands.
type Outcome string

// Outcomes. Running and Soaking are live; Completed and Aborted are final
// (a Completed rollout still updates devices that join later).
const (
	// OutcomeRunning: the current wave's devices are being updated, or its
	// health gate does not hold yet.
	OutcomeRunning Outcome = "running"
	// OutcomeSoaking: the current wave's health gate holds and the rollout
	// waits for the soak time to pass.
	OutcomeSoaking Outcome = "soaking"
	// OutcomeCompleted: the last wave passed its health gate.
	OutcomeCompleted Outcome = "completed"
	// OutcomeAborted: too many updated devices failed (see State.Reason).
	OutcomeAborted Outcome = "aborted"
)

// Status is one device's progress in a rollout.
type Status string

// Device statuses. A device that has not been started has no entry in
// State.Devices; State.Device reports it as StatusPending.
const (
	// StatusPending: the device has not been told to update yet.
	StatusPending Status = "pending"
	// StatusUpdating: the device was told to run the to-digest at Since
	// and has not given a verdict on it yet.
	StatusUpdating Status = "updating"
	// StatusHealthy: the device reported the to-digest healthy; Since is
	// the step that saw it first.
	StatusHealthy Status = "healthy"
	// StatusFailed: the device reported the to-digest unhealthy, or gave
	// no healthy report within the device timeout (Reason says which).
	// Failed is final within a rollout.
	StatusFailed Status = "failed"
	// StatusRolledBack: the rollout was aborted and the device was told to
	// go back to the from-digest at Since.
	StatusRolledBack Status = "rolled_back"
)

// Failure reasons of a failed device.
const (
	// ReasonUnhealthy: the device reported the to-digest unhealthy.
	ReasonUnhealthy = "unhealthy"
	// ReasonTimeout: no healthy report within the device timeout.
	ReasonTimeout = "timeout"
)

// Progress is one started device's progress.
type Progress struct {
	// Status is never StatusPending here.
	Status Status `json:"status"`
	// Since is when the device entered Status.
	Since time.Time `json:"since"`
	// Started is when the device was told to update.
	Started time.Time `json:"started"`
	// Wave is the wave the device was assigned to when it was started; the
	// device counts in that wave's health gate for good, even if devices
	// joining later shift wave boundaries.
	Wave int `json:"wave"`
	// Reason says why a device failed (ReasonUnhealthy, ReasonTimeout).
	Reason string `json:"reason,omitempty"`
}

// State is the persistable progress of rolling one app out to one fleet
// target, from one digest to another. It is plain data: save it as JSON
// (json.Marshal) and LoadState it after a restart, and Step continues
// exactly where it stopped. Step never modifies the State it is given; it
// returns a new one. A State is not safe for concurrent modification.
type State struct {
	// Version is StateVersion.
	Version int `json:"version"`
	// App and Target name the app and the fleet target; informational.
	App string `json:"app,omitempty"`
	// Target is the fleet target's name; informational.
	Target string `json:"target,omitempty"`
	// From is the digest the fleet ran before: what AutoRollback returns
	// devices to. Empty means no version (a rollback removes the app).
	From string `json:"from,omitempty"`
	// To is the digest being rolled out; never empty.
	To string `json:"to"`
	// Supersedes is the to-digest of the rollout this one replaced, if any.
	Supersedes string `json:"supersedes,omitempty"`
	// Started is when the rollout began.
	Started time.Time `json:"started"`
	// Outcome is where the rollout stands.
	Outcome Outcome `json:"outcome"`
	// Reason explains an aborted rollout.
	Reason string `json:"reason,omitempty"`
	// Finished is when the rollout completed or aborted; zero while live.
	Finished time.Time `json:"finished,omitzero"`
	// Wave is the index of the current wave in the policy's waves.
	Wave int `json:"wave"`
	// GateSince is since when the current wave's health gate has held
	// without a break; zero when it does not hold.
	GateSince time.Time `json:"gate_since,omitzero"`
	// Devices holds the progress of every device started in this rollout,
	// by device ID. Devices not in it are pending.
	Devices map[string]Progress `json:"devices,omitempty"`
	// RecentStarts are the start times of the last minute, oldest first,
	// for the rate limit's sliding window.
	RecentStarts []time.Time `json:"recent_starts,omitempty"`
}

// NewState begins a rollout of to over a fleet that ran from, at now. It
// returns an error wrapping ErrInvalidState when to is empty.
func NewState(from, to string, now time.Time) (*State, error) {
	if to == "" {
		return nil, fmt.Errorf("%w: the to-digest is empty", ErrInvalidState)
	}
	return &State{
		Version: StateVersion,
		From:    from,
		To:      to,
		Started: now.Round(0),
		Outcome: OutcomeRunning,
		Devices: map[string]Progress{},
	}, nil
}

// Supersede replaces rollout old by a rollout of to (a newer commit's
// digest), at now. The new rollout starts from the first wave with every
// device pending: what happened to the old digest (failed devices, an
// abort) never blocks the new one. Devices keep running what they run until
// their wave of the new rollout reaches them. Its from-digest is old.To if
// old completed, else old.From (the last version the whole fleet ran).
// When to equals old.To, old is returned unchanged (as a copy).
func Supersede(old *State, to string, now time.Time) (*State, error) {
	if err := old.check(); err != nil {
		return nil, err
	}
	if to == old.To {
		return old.Clone(), nil
	}
	from := old.From
	if old.Outcome == OutcomeCompleted {
		from = old.To
	}
	st, err := NewState(from, to, now)
	if err != nil {
		return nil, err
	}
	st.App, st.Target, st.Supersedes = old.App, old.Target, old.To
	return st, nil
}

// LoadState decodes a State saved with json.Marshal. Errors wrap
// ErrStateVersion for another format version and ErrInvalidState for
// anything else that is wrong.
func LoadState(data []byte) (*State, error) {
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if err := st.check(); err != nil {
		return nil, err
	}
	if st.Devices == nil {
		st.Devices = map[string]Progress{}
	}
	return &st, nil
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := *s
	c.Devices = maps.Clone(s.Devices)
	if c.Devices == nil {
		c.Devices = map[string]Progress{}
	}
	c.RecentStarts = slices.Clone(s.RecentStarts)
	return &c
}

// Device returns the progress of device id; a device never started has
// Status StatusPending and nothing else set.
func (s *State) Device(id string) Progress {
	if p, ok := s.Devices[id]; ok {
		return p
	}
	return Progress{Status: StatusPending}
}

// Desired returns the digest device id should run now, and false when the
// rollout has no say about it (a pending device keeps what it runs). An
// empty digest with true means the device should run no version of the app
// (a rollback to an empty from-digest).
func (s *State) Desired(id string) (string, bool) {
	p, ok := s.Devices[id]
	if !ok {
		return "", false
	}
	if p.Status == StatusRolledBack {
		return s.From, true
	}
	return s.To, true
}

// Live reports whether the rollout is still running or soaking.
func (s *State) Live() bool {
	return s.Outcome == OutcomeRunning || s.Outcome == OutcomeSoaking
}

// Counts are how many started devices are in each status.
type Counts struct {
	// Updating, Healthy, Failed and RolledBack count the devices in
	// StatusUpdating, StatusHealthy, StatusFailed and StatusRolledBack.
	Updating, Healthy, Failed, RolledBack int
}

// Counts counts the started devices by status.
func (s *State) Counts() Counts {
	var c Counts
	for _, p := range s.Devices {
		switch p.Status {
		case StatusUpdating:
			c.Updating++
		case StatusHealthy:
			c.Healthy++
		case StatusFailed:
			c.Failed++
		case StatusRolledBack:
			c.RolledBack++
		}
	}
	return c
}

func (s *State) check() error {
	if s == nil {
		return fmt.Errorf("%w: nil state", ErrInvalidState)
	}
	if s.Version != StateVersion {
		return fmt.Errorf("%w: version %d (this ferry reads %d)", ErrStateVersion, s.Version, StateVersion)
	}
	if s.To == "" {
		return fmt.Errorf("%w: the to-digest is empty", ErrInvalidState)
	}
	switch s.Outcome {
	case OutcomeRunning, OutcomeSoaking, OutcomeCompleted, OutcomeAborted:
	default:
		return fmt.Errorf("%w: unknown outcome %q", ErrInvalidState, s.Outcome)
	}
	if s.Wave < 0 {
		return fmt.Errorf("%w: negative wave index %d", ErrInvalidState, s.Wave)
	}
	for id, p := range s.Devices {
		switch p.Status {
		case StatusUpdating, StatusHealthy, StatusFailed, StatusRolledBack:
		default:
			return fmt.Errorf("%w: device %q has unknown status %q", ErrInvalidState, id, p.Status)
		}
	}
	return nil
}
