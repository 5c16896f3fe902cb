// Package sink is where the vote service puts an accepted vote: the Redis
// queue (queue mode, like the original app) or straight into PostgreSQL
// (direct mode, no Redis; DynamoDB with STORE=dynamodb). Both coalesce
// concurrent votes with a group commit (package batcher), and Cast returns
// only after the backend acknowledged the write carrying the vote, so a
// vote the page reports as recorded is never lost.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/backoff"
	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/batcher"
	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/metrics"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/store"
)

// Sink records one valid vote. A nil error means the backend acknowledged
// it; any error means it may or may not have been written (the caller
// reports failure and the voter can vote again; last vote wins).
type Sink interface {
	Cast(ctx context.Context, v ballot.Vote) error
}

// Backend is a Sink with the lifecycle the service needs.
type Backend interface {
	Sink
	// Dependency names the backend for readiness and logs: "redis" or "postgres".
	Dependency() string
	// Check reports whether the backend can take votes now.
	Check(ctx context.Context) error
	// Wait blocks until the backend answers (and, in direct mode with
	// DB_MIGRATE, the schema is applied), logging "waiting for <dep>: ..."
	// while it does not. It returns early only when ctx ends.
	Wait(ctx context.Context) error
	// Close writes what is already submitted, then releases connections.
	Close(ctx context.Context) error
	// Stats exposes the group commit's totals.
	Stats() batcher.Stats
}

// flushTimeout bounds one write, so a black-holed backend answers the
// waiting requests with 503 instead of holding them until the client
// gives up.
const flushTimeout = 5 * time.Second

// observe feeds the shared batch metrics (source tells the vote service's
// two group commits apart from the worker's) and logs a failed write once
// per batch rather than once per waiting request.
func observe(source, dep string, log *slog.Logger) func(int, time.Duration, error) {
	size, dur := metrics.BatchSize.WithLabelValues(source), metrics.BatchDuration.WithLabelValues(source)
	return func(n int, took time.Duration, err error) {
		if err != nil {
			log.Warn("write to "+dep+" failed: "+err.Error(), "dependency", dep, "votes", n,
				"error", err.Error(), "took", took.String())
			return
		}
		size.Observe(float64(n))
		dur.Observe(took.Seconds())
	}
}

// Open builds the backend cfg.VoteMode selects. It does not contact the
// backend: the service starts (not ready) while Redis or PostgreSQL is
// still away; call Wait to log until it answers. node names this instance
// in queue payloads.
func Open(ctx context.Context, cfg config.Config, node string, log *slog.Logger) (Backend, error) {
	switch cfg.VoteMode {
	case config.ModeQueue:
		rdb, err := queue.NewClient(cfg.RedisURL, "ladder-vote")
		if err != nil {
			return nil, err
		}
		q := NewQueue(queue.NewProducer(rdb, queue.NewKeys(cfg.RedisKeyPrefix)), node, cfg.BatchSize, log)
		q.close = rdb.Close
		return q, nil
	case config.ModeDirect:
		st, err := store.Open(ctx, cfg, "ladder-vote", 4, log)
		if err != nil {
			return nil, err
		}
		d := newDatabase(st, st.Dependency, cfg.BatchSize, cfg.BatchLinger, log)
		d.migrate = st.Migrate
		d.close = st.Close
		return d, nil
	}
	return nil, fmt.Errorf("vote mode %q: want %q or %q", cfg.VoteMode, config.ModeQueue, config.ModeDirect)
}

// Queue pushes votes to the Redis list <prefix>votes as the original app's
// JSON payload. Concurrent votes share one multi-value RPUSH: while one
// push is in flight the next collects (no linger, so an idle service adds
// no delay), up to size payloads per push.
type Queue struct {
	producer *queue.Producer
	node     string
	b        *batcher.Batcher[[]byte]
	log      *slog.Logger
	close    func() error
}

// NewQueue returns a Queue on producer.
func NewQueue(producer *queue.Producer, node string, size int, log *slog.Logger) *Queue {
	if log == nil {
		log = slog.Default()
	}
	q := &Queue{producer: producer, node: node, log: log}
	q.b = batcher.New(producer.PushMany, batcher.Options{
		Size: size, Linger: 0, FlushTimeout: flushTimeout, OnFlush: observe("vote_queue", "redis", log),
	})
	return q
}

// Cast implements Sink.
func (q *Queue) Cast(ctx context.Context, v ballot.Vote) error {
	p, err := ballot.Encode(v, q.node)
	if err != nil {
		return err
	}
	if err := q.b.Submit(ctx, p); err != nil {
		return fmt.Errorf("queue vote: %w", err)
	}
	return nil
}

// Dependency implements Backend.
func (q *Queue) Dependency() string { return "redis" }

// Check implements Backend.
func (q *Queue) Check(ctx context.Context) error { return q.producer.Ping(ctx) }

// Wait implements Backend.
func (q *Queue) Wait(ctx context.Context) error {
	if err := backoff.Retry(ctx, q.log, "redis", q.producer.Ping); err != nil {
		return err
	}
	q.log.Info("redis is reachable")
	return nil
}

// Close implements Backend.
func (q *Queue) Close(ctx context.Context) error {
	err := q.b.Close(ctx)
	if q.close != nil {
		err = errors.Join(err, q.close())
	}
	return err
}

// Stats implements Backend.
func (q *Queue) Stats() batcher.Stats { return q.b.Stats() }

// VoteWriter is the part of a store direct mode needs.
type VoteWriter interface {
	ApplyVotes(ctx context.Context, votes []ballot.Vote) error
	Ping(ctx context.Context) error
}

// Database writes votes straight to PostgreSQL (direct mode). A batch is
// one ApplyVotes call: one round trip, one transaction, last vote wins.
type Database struct {
	w        VoteWriter
	dep      string
	b        *batcher.Batcher[ballot.Vote]
	log      *slog.Logger
	migrate  func(context.Context) error // nil unless DB_MIGRATE
	migrated atomic.Bool
	close    func()
}

// NewDatabase returns a Database on w flushing up to size votes, or after
// linger.
func NewDatabase(w VoteWriter, size int, linger time.Duration, log *slog.Logger) *Database {
	return newDatabase(w, "postgres", size, linger, log)
}

// newDatabase is NewDatabase for the store named dep ("postgres" or
// "dynamodb").
func newDatabase(w VoteWriter, dep string, size int, linger time.Duration, log *slog.Logger) *Database {
	if log == nil {
		log = slog.Default()
	}
	d := &Database{w: w, dep: dep, log: log}
	d.b = batcher.New(w.ApplyVotes, batcher.Options{
		Size: size, Linger: linger, FlushTimeout: flushTimeout, OnFlush: observe("vote_direct", dep, log),
	})
	return d
}

// Cast implements Sink.
func (d *Database) Cast(ctx context.Context, v ballot.Vote) error {
	if err := d.b.Submit(ctx, v); err != nil {
		return fmt.Errorf("store vote: %w", err)
	}
	return nil
}

// Dependency implements Backend.
func (d *Database) Dependency() string { return d.dep }

// Check implements Backend. With DB_MIGRATE the service is not ready
// before its migrations ran: votes would fail on missing tables.
func (d *Database) Check(ctx context.Context) error {
	if err := d.w.Ping(ctx); err != nil {
		return err
	}
	if d.migrate != nil && !d.migrated.Load() {
		return errors.New("schema migrations not applied yet")
	}
	return nil
}

// Wait implements Backend; with DB_MIGRATE it applies the schema, retrying
// until it succeeds.
func (d *Database) Wait(ctx context.Context) error {
	err := backoff.Retry(ctx, d.log, d.dep, func(ctx context.Context) error {
		if err := d.w.Ping(ctx); err != nil {
			return err
		}
		if d.migrate != nil {
			return d.migrate(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if d.migrate != nil {
		d.migrated.Store(true)
		d.log.Info("postgres is reachable and migrated")
	} else {
		d.log.Info(d.dep + " is reachable")
	}
	return nil
}

// Close implements Backend.
func (d *Database) Close(ctx context.Context) error {
	err := d.b.Close(ctx)
	if d.close != nil {
		d.close()
	}
	return err
}

// Stats implements Backend.
func (d *Database) Stats() batcher.Stats { return d.b.Stats() }

var (
	_ Backend = (*Queue)(nil)
	_ Backend = (*Database)(nil)
)
