// Package store is where votes end up. Handlers and the worker depend on the
// Store interface only; Postgres and DynamoDB implement it (STORE selects
// one). The DynamoDB table layout and the tally protocol are documented on
// the DynamoDB type.
package store

import (
	"context"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
)

// Tally is the number of voters currently choosing each option.
type Tally struct {
	A int64
	B int64
}

// Total is the number of voters.
func (t Tally) Total() int64 { return t.A + t.B }

// Store persists votes with last-vote-wins semantics and keeps tallies.
type Store interface {
	// ApplyVotes records votes atomically: for each voter the vote with the
	// newest CastAt wins, whether it is in this batch or already stored, and
	// the tallies change in the same transaction. Applying the same votes
	// again changes nothing, so at-least-once delivery is safe.
	ApplyVotes(ctx context.Context, votes []ballot.Vote) error
	// Tally returns the current counts in O(1).
	Tally(ctx context.Context) (Tally, error)
	// WatchTallies calls fn with the current tally and then after every
	// change until ctx ends, reconnecting on its own after failures. It
	// calls down (when not nil) as soon as the watch is lost: changes made
	// until the next fn call are not seen, so a cached value may be stale.
	WatchTallies(ctx context.Context, fn func(Tally), down func(error)) error
	// Ping checks the backend is reachable.
	Ping(ctx context.Context) error
	Close()
}
