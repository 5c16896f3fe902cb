// Package backoff retries operations against a dependency that may be away
// (a restarting Redis or PostgreSQL) without hammering it when it returns.
package backoff

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with full jitter; jitter keeps a
// fleet of workers from reconnecting in lock step after an outage.
type Backoff struct {
	Base    time.Duration
	Max     time.Duration
	attempt int
}

// New returns a Backoff from base doubling up to max.
func New(base, max time.Duration) *Backoff { return &Backoff{Base: base, Max: max} }

// Next returns the wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Base << min(b.attempt, 30)
	if d <= 0 || d > b.Max {
		d = b.Max
	}
	b.attempt++
	// Half fixed, half random: never zero, never above the cap.
	return d/2 + rand.N(d/2+1)
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Sleep waits d or until ctx ends; it reports whether the full wait elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Retry calls fn until it succeeds or ctx ends, logging why it waits
// ("waiting for postgres: ..., retrying in 2s") so an operator sees the
// cause. It returns ctx's error when ctx ends first.
func Retry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	b := New(100*time.Millisecond, 5*time.Second)
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := b.Next()
		log.Warn("waiting for "+what+": "+err.Error()+", retrying in "+d.Round(time.Millisecond).String(),
			"dependency", what, "error", err.Error(), "retry_in", d.String())
		if !Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}
