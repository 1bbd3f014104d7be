package parallel

import (
	"context"
	"log/slog"
	"sync"
)

// ForEach calls fn(i) for i in [0,n) with at most limit calls running at
// once and returns when all have returned. It stops starting new calls once
// ctx is done; skipped reports the indexes it never started.
func ForEach(ctx context.Context, n, limit int, fn func(i int)) (skipped []int) {
	if limit < 1 {
		limit = 1
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for j := i; j < n; j++ {
				skipped = append(skipped, j)
			}
			wg.Wait()
			return skipped
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
	return nil
}

// OrDefault returns v, or def when v is the zero value.
func OrDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// LoggerOr returns l, or a logger that discards everything when l is nil.
func LoggerOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
