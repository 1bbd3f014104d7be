package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// restoreState loads Options.State into the history: before the first
// round, so that the round plans with the pins, suspensions and host
// rollbacks the last leader left. It retries with backoff while the state
// cannot be loaded (a new leader that ran with an empty state would
// overwrite the old one's on its first save); a state that cannot be read
// at all ends Start with the error.
func (a *Agent) restoreState(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		b, err := a.opts.State.Load(ctx)
		if err == nil {
			if b == nil {
				a.log.Info("no saved agent state yet; the first round saves it")
				return nil
			}
			snap, err := history.DecodeSnapshot(b)
			if err != nil {
				return fmt.Errorf("agent: saved state: %w; repair or delete it", err)
			}
			interrupted, err := a.hist.Import(snap)
			if err != nil {
				return fmt.Errorf("agent: restore saved state: %w", err)
			}
			for _, id := range interrupted {
				a.log.Warn("round was interrupted by a stop or crash of the last leader; the next round converges", "round", id)
			}
			a.mu.Lock()
			if rs, err := a.hist.Rounds(1); err == nil && len(rs) > 0 {
				a.status.LastRound = &rs[0]
			}
			if ls, err := a.hist.LastSuccess(); err == nil && ls.Commit != "" {
				a.status.LastSuccessfulCommit, a.status.LastSuccessfulAt = ls.Commit, ls.At
			}
			a.status.Errors = nil
			a.mu.Unlock()
			a.log.Info("agent state restored", "rounds", len(snap.Rounds), "pins", len(snap.Pins),
				"suspended", len(snap.Suspended), "host_rollbacks", len(snap.HostRollbacks), "bytes", len(b))
			return nil
		}
		delay := min(jitter(time.Second<<min(attempt, 20)), a.opts.MaxBackoff)
		a.log.Warn("cannot load the saved agent state; no round runs until it loads", "err", err, "retry_in", delay)
		a.mu.Lock()
		a.status.Errors = []string{fmt.Sprintf("cannot load the saved agent state (no round runs until it loads): %v", err)}
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.clock.After(delay):
		}
	}
}

// saveState exports the history and saves it to Options.State, dropping
// the oldest history until it fits. Nil without a State.
func (a *Agent) saveState(ctx context.Context) error {
	st := a.opts.State
	if st == nil {
		return nil
	}
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	snap, err := a.hist.Export(history.ExportOptions{})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStateSave, err)
	}
	limit := st.MaxBytes()
	for {
		b, err := snap.Encode()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrStateSave, err)
		}
		if limit <= 0 || len(b) <= limit {
			if err := st.Save(ctx, b); err != nil {
				return fmt.Errorf("%w: %w", ErrStateSave, err)
			}
			return nil
		}
		if !snap.Shrink() {
			return fmt.Errorf("%w: %d bytes even without history (limit %d): too many pins, suspensions or host rollbacks", ErrStateSave, len(b), limit)
		}
	}
}

// changeState guards a pin, unpin, suspend or resume: with a StateStore,
// only the leader may change the state.
func (a *Agent) changeState() error {
	if a.opts.State != nil && !a.leading.Load() {
		return fmt.Errorf("agent: %w: it keeps its state in the cluster and runs no rounds; send the request to the leader", ErrNotLeader)
	}
	return nil
}

// savedChange saves the state after a change made through the API.
func (a *Agent) savedChange(what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.saveState(ctx); err != nil {
		a.log.Error("change recorded here but not in the saved state", "change", what, "err", err)
		return fmt.Errorf("agent: %s: recorded by this agent, but %w (retry)", what, err)
	}
	return nil
}
