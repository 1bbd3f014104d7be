package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	gosync "sync"

	"github.com/ferry-wasm/ferry/targets"
)

// Group is a host target made of several ferry-hosts that run the same
// apps (a spec's host target with several endpoints). It implements
// targets.Target and targets.RollBacker by fanning each call out to every
// host in parallel, and targets.Locker by taking every host's apply lock in
// endpoint order (Lock).
//
// Health is decided conservatively: an app is reported at a digest, and
// healthy, only when every host runs it at that same digest and reports it
// healthy. An app missing on some hosts, or at different digests, is
// reported with an empty digest and a message naming the hosts, so a plan
// updates it everywhere. Any host that cannot be read makes Observe fail:
// a plan is never computed from part of the group.
type Group struct {
	clients []*Client
}

var (
	_ targets.Target        = (*Group)(nil)
	_ targets.RollBacker    = (*Group)(nil)
	_ targets.OwnerRecorder = (*Group)(nil)
	_ targets.Locker        = (*Group)(nil)
	_ targets.LockInspector = (*Group)(nil)
)

// NewGroup returns a Group of clients; it needs at least one.
func NewGroup(clients ...*Client) (*Group, error) {
	if len(clients) == 0 {
		return nil, errors.New("driver: a host group needs at least one host")
	}
	return &Group{clients: clients}, nil
}

// each runs f for every host in parallel and joins the errors, each
// prefixed with the host's endpoint.
func (g *Group) each(f func(i int, c *Client) error) error {
	errs := make([]error, len(g.clients))
	var wg gosync.WaitGroup
	for i, c := range g.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(i, c); err != nil {
				errs[i] = fmt.Errorf("host %s: %w", c.Endpoint(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Observe reads every host and merges what they run (see Group).
func (g *Group) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	per := make([][]targets.ObservedApp, len(g.clients))
	if err := g.each(func(i int, c *Client) error {
		apps, err := c.Observe(ctx)
		per[i] = apps
		return err
	}); err != nil {
		return nil, err
	}
	byName := map[string][]*targets.ObservedApp{}
	for i := range per {
		for j := range per[i] {
			a := &per[i][j]
			if byName[a.Name] == nil {
				byName[a.Name] = make([]*targets.ObservedApp, len(g.clients))
			}
			byName[a.Name][i] = a
		}
	}
	out := make([]targets.ObservedApp, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, g.merge(name, byName[name]))
	}
	return out, nil
}

// merge combines one app as seen by each host (nil where absent).
func (g *Group) merge(name string, seen []*targets.ObservedApp) targets.ObservedApp {
	var first *targets.ObservedApp
	var missing, differ, owners []string
	m := targets.ObservedApp{Name: name, Managed: true, Healthy: true}
	for i, a := range seen {
		if a == nil {
			missing = append(missing, g.clients[i].Endpoint())
			continue
		}
		if first == nil {
			first = a
			m.Ref, m.Digest, m.Status, m.Previous, m.Message, m.Phase = a.Ref, a.Digest, a.Status, a.Previous, a.Message, a.Phase
		} else if a.Digest != first.Digest {
			differ = append(differ, g.clients[i].Endpoint())
		}
		if first == a {
			m.Owner = a.Owner
		} else if a.Owner != first.Owner {
			owners = append(owners, a.Owner)
		}
		m.Managed = m.Managed && a.Managed
		m.Healthy = m.Healthy && a.Healthy
		m.Phase = worsePhase(m.Phase, a.EffectivePhase())
		if m.RolledBack == nil && a.RolledBack != nil {
			// One host rolling back is enough to hold the version back.
			rb := *a.RolledBack
			rb.Reason = "host " + g.clients[i].Endpoint() + ": " + rb.Reason
			m.RolledBack = &rb
		}
		if a.Previous != m.Previous {
			m.Previous = ""
		}
	}
	m.SecretHashes = mergeSecretHashes(seen) // secrets.go
	if len(owners) > 0 {
		// Hosts disagree on the owner: report all of them, so that no
		// spec sees the app as its own until it is adopted again.
		owners = append(owners, m.Owner)
		for i, o := range owners {
			if o == "" {
				owners[i] = "(none)"
			}
		}
		slices.Sort(owners)
		m.Owner = strings.Join(slices.Compact(owners), " | ")
	}
	if len(missing) > 0 || len(differ) > 0 {
		m.Digest, m.Ref, m.Healthy, m.Status, m.Phase = "", "", false, "partial", targets.PhaseDegraded
		var why []string
		if len(missing) > 0 {
			why = append(why, "missing on "+strings.Join(missing, ", "))
		}
		if len(differ) > 0 {
			why = append(why, "at another digest on "+strings.Join(differ, ", "))
		}
		m.Message = strings.Join(why, "; ")
	}
	return m
}

// Put deploys want on every host; it fails if any host fails (the others
// keep the new version, and a new plan shows the app as partial).
// Like a single host's, a nil error comes with targets.PhaseReady.
func (g *Group) Put(ctx context.Context, want targets.DesiredApp) (targets.PutResult, error) {
	err := g.each(func(_ int, c *Client) error {
		_, err := c.Put(ctx, want)
		return err
	})
	if err != nil {
		return targets.PutResult{}, err
	}
	return targets.PutResult{Phase: targets.PhaseReady}, nil
}

// RecordsOwners implements targets.OwnerRecorder: every host records owners.
func (g *Group) RecordsOwners() bool { return true }

// Delete removes the app from every host.
func (g *Group) Delete(ctx context.Context, name string) error {
	return g.each(func(_ int, c *Client) error { return c.Delete(ctx, name) })
}

// RollBack switches the app back to its previous version on every host.
func (g *Group) RollBack(ctx context.Context, name string) error {
	return g.each(func(_ int, c *Client) error { return c.RollBack(ctx, name) })
}

// phaseRank orders phases from best to worst, for merging hosts.
var phaseRank = map[targets.Phase]int{
	targets.PhaseReady: 1, targets.PhaseProgressing: 2, targets.PhaseDegraded: 3, targets.PhaseFailed: 4,
}

// worsePhase returns the worse of two phases: an app of a group is only
// as ready as its least ready host. An empty phase counts as unset.
func worsePhase(a, b targets.Phase) targets.Phase {
	if a == "" || phaseRank[b] > phaseRank[a] {
		return b
	}
	return a
}
