package agent

import (
	"context"
	"fmt"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// TestAgentHammer runs webhooks, API calls, pins and suspensions from many
// goroutines while rounds run and commits land, then checks that the agent
// converges on the newest commit with a consistent history. Run with -race.
func TestAgentHammer(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Interval = 20 * time.Millisecond })
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg stdsync.WaitGroup
	c := h.client()
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				switch (i + n) % 6 {
				case 0:
					h.githubHook("gh-secret", "refs/heads/main", "x")
				case 1:
					c.Status(ctx) //nolint:errcheck // racing reads
				case 2:
					c.Suspend(ctx, "b") //nolint:errcheck
					c.Resume(ctx, "b")  //nolint:errcheck
				case 3:
					c.Rollback(ctx, "a", "") //nolint:errcheck // may have no previous yet
					c.Unpin(ctx, "a")        //nolint:errcheck
				case 4:
					c.History(ctx, "a", 5) //nolint:errcheck
				case 5:
					h.githubHook("bad", "refs/heads/main", "x")
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var last string
	for v := 2; v <= 6; v++ {
		last = h.push(fmt.Sprintf("v%d", v), fmt.Sprintf("v%d", v), fmt.Sprintf("v%d", v))
		time.Sleep(30 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	// Leave nothing pinned or suspended, then the newest commit wins. A
	// request the client gave up on at cancel may still be handled by the
	// server after this point, so clear until no pin or suspension is seen
	// in several checks in a row.
	ctx = context.Background()
	for clean := 0; clean < 5; {
		c.Unpin(ctx, "a")  //nolint:errcheck
		c.Resume(ctx, "b") //nolint:errcheck
		if st := h.agent.Status(); len(st.Pins) == 0 && len(st.Suspended) == 0 {
			clean++
		} else {
			clean = 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.agent.Sync()
	h.waitRunning(map[string]string{"a": "v6", "b": "v6"})
	h.waitRound(0, func(r history.Round) bool { return r.Commit == last && r.Result == history.RoundSucceeded })
	checkHistoryConsistent(t, h.agent)
}
