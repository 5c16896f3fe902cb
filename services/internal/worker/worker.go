// Package worker drains the vote queue into the store: each of its lanes
// takes a batch into its own Redis processing list, writes the whole batch
// in one store call and only then acknowledges it, so a vote leaves Redis
// only after PostgreSQL has it. Every failure (Redis or PostgreSQL away, the process
// killed) leaves the batch in the processing list, from where this worker
// or, once its heartbeat expired, a peer delivers it again; redelivery is
// harmless because the store keeps each voter's newest vote by stamp.
// With a Gate (Tier 4, DYNAMODB_DEFAULT_WRITER_REGION) it writes only
// while its region is the writer region and otherwise leaves the votes
// in the queue.
package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/backoff"
	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/metrics"
	"github.com/ladder-cdk/ladder/services/internal/queue"
)

// Store is the part of store.Store the worker writes through.
type Store interface {
	// ApplyVotes must be atomic and idempotent (see store.Store).
	ApplyVotes(ctx context.Context, votes []ballot.Vote) error
}

// DefaultLanes is how many batches a worker has in flight. Writers are
// serialised in PostgreSQL, so more than one lane does not write faster;
// it hides the Redis fetch, decode and ack of one batch behind the commit
// of another, which at BATCH_SIZE 1000 is about a fifth of the cycle.
const DefaultLanes = 2

// LaneID is the queue consumer id of lane i of worker id. Lane 0 is the
// worker id itself; a restarted process with the same id finds all of its
// lanes' processing lists again.
func LaneID(id string, i int) string {
	if i == 0 {
		return id
	}
	return fmt.Sprintf("%s.%d", id, i)
}

// Options configure a Worker.
type Options struct {
	Redis redis.UniversalClient
	Keys  queue.Keys
	// ID names the worker (WORKER_ID): its heartbeat and processing lists.
	ID    string
	Lanes int // batches in flight; default DefaultLanes
	Store Store
	// StoreName names the store in logs and errors ("postgres",
	// "dynamodb"); default "store".
	StoreName string
	BatchSize int
	// FetchWait is how long one blocking fetch waits for a vote; it also
	// bounds how long a stop request waits for an idle fetch to return.
	// Redis takes whole seconds here, so it is rounded up (default 1s).
	FetchWait time.Duration
	// HeartbeatTTL is how long peers wait after the worker's last sign of
	// life before taking its batches; it refreshes three times per TTL and
	// looks for dead peers twice per TTL.
	HeartbeatTTL time.Duration
	// ShutdownTimeout bounds finishing the current batch after ctx ends.
	ShutdownTimeout time.Duration
	// Gate, when set, keeps the worker in standby while its region is not
	// the writer region (Tier 4); nil means it always writes.
	Gate *Gate
	Log  *slog.Logger
}

// Stats are the worker's running totals (the same numbers feed the
// Prometheus metrics, which are process-wide; these are per Worker).
type Stats struct {
	Drained  int64 // votes committed and acknowledged
	Poison   int64 // payloads dropped as invalid
	Batches  int64 // batches acknowledged
	Requeued int64 // votes moved back from dead peers
}

// Worker moves votes from the queue into the store.
type Worker struct {
	o        Options
	lanes    []*queue.Consumer
	log      *slog.Logger
	drained  atomic.Int64
	poison   atomic.Int64
	batches  atomic.Int64
	requeued atomic.Int64

	size, took prometheus.Observer
}

// ErrShutdownIncomplete is returned by Run when the shutdown timeout ended
// before the batch in hand was committed.
var ErrShutdownIncomplete = errors.New("shutdown timed out before the current batch was committed")

// New returns a worker; zero options get defaults.
func New(o Options) *Worker {
	if o.Lanes <= 0 {
		o.Lanes = DefaultLanes
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	o.FetchWait = max((o.FetchWait + time.Second - 1).Truncate(time.Second), time.Second)
	if o.HeartbeatTTL <= 0 {
		o.HeartbeatTTL = 15 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 20 * time.Second
	}
	if o.StoreName == "" {
		o.StoreName = "store"
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	w := &Worker{
		o:    o,
		log:  o.Log.With("worker_id", o.ID),
		size: metrics.BatchSize.WithLabelValues("worker"),
		took: metrics.BatchDuration.WithLabelValues("worker"),
	}
	for i := range o.Lanes {
		w.lanes = append(w.lanes, queue.NewConsumer(o.Redis, o.Keys, LaneID(o.ID, i), o.HeartbeatTTL))
	}
	return w
}

// Stats returns the totals so far.
func (w *Worker) Stats() Stats {
	return Stats{Drained: w.drained.Load(), Poison: w.poison.Load(), Batches: w.batches.Load(), Requeued: w.requeued.Load()}
}

// Ping checks Redis is reachable (for readiness).
func (w *Worker) Ping(ctx context.Context) error { return w.lanes[0].Ping(ctx) }

// Run drains the queue until ctx ends, then finishes the batches in hand
// (commit and acknowledge) within ShutdownTimeout, stops fetching and
// removes its heartbeats once its processing lists are empty. Outages of
// Redis or PostgreSQL are waited out, never returned. It returns nil after
// a clean stop and ErrShutdownIncomplete if the timeout cut a batch short
// (its votes are then back in the queue or left for a peer).
func (w *Worker) Run(ctx context.Context) error {
	// io carries every Redis and PostgreSQL call: it outlives ctx by the
	// shutdown timeout so a stop request never abandons a half-done batch.
	io, cancelIO := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelIO()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(w.o.ShutdownTimeout, cancelIO) })
	defer stopTimer()

	// Heartbeats go first: a peer must not reclaim the processing lists
	// that the previous process with this id may have left, while this one
	// is committing them.
	if err := w.retry(ctx, "redis", "register heartbeat", w.beat); err != nil {
		w.log.Info("stopped before start")
		return nil
	}
	w.log.Info("worker started", "lanes", len(w.lanes), "batch_size", w.o.BatchSize,
		"heartbeat_ttl", w.o.HeartbeatTTL.String())

	hbCtx, stopHB := context.WithCancel(io)
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(hbCtx) })
	clean := make([]bool, len(w.lanes))
	var lanes sync.WaitGroup
	for i, c := range w.lanes {
		lanes.Go(func() { clean[i] = w.drain(ctx, io, c) })
	}
	lanes.Wait()
	// Only now: a heartbeat refresh after Stop would register a lane again.
	stopHB()
	hb.Wait()

	var err error
	for i, c := range w.lanes {
		if clean[i] {
			if err := c.Stop(io); err != nil {
				w.log.Warn("could not remove heartbeat; peers will see it expire", "lane", c.ID(), "error", err.Error())
			}
			continue
		}
		err = ErrShutdownIncomplete
		w.giveBack(ctx, c)
	}
	if err == nil {
		w.log.Info("worker stopped", "drained", w.drained.Load())
	}
	return err
}

// giveBack handles a lane that ran out of shutdown time with votes in hand
// (PostgreSQL or Redis still away): it puts them back at the head of the
// queue for a peer right away instead of after the heartbeat expires. If
// Redis is the one away this fails, and the heartbeat, no longer
// refreshed, expires and a peer reclaims them.
func (w *Worker) giveBack(ctx context.Context, c *queue.Consumer) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	n, err := c.Requeue(rctx)
	if err != nil {
		w.log.Warn("shutdown timed out; uncommitted votes stay in the processing list for a peer to reclaim",
			"lane", c.ID(), "error", err.Error())
		return
	}
	if err := c.Stop(rctx); err != nil {
		w.log.Warn("could not remove heartbeat; peers will see it expire", "lane", c.ID(), "error", err.Error())
	}
	w.log.Warn("shutdown timed out; returned uncommitted votes to the queue", "lane", c.ID(), "votes", n)
}

// drain is the fetch-commit-ack loop of one lane. It reports whether it
// stopped with an empty processing list.
func (w *Worker) drain(ctx, io context.Context, c *queue.Consumer) bool {
	b := backoff.New(100*time.Millisecond, 5*time.Second)
	// pending means the processing list may hold votes nobody is handling:
	// at start (left by an earlier process with this id), after a failed
	// or empty fetch (the move may have happened without us seeing the
	// reply) and when stopping (a fetch interrupted by the stop). They are committed
	// before anything new is fetched, so the list holds at most one batch.
	pending := true
	for {
		stopping := ctx.Err() != nil
		if stopping && !pending {
			return true
		}
		if io.Err() != nil {
			return false
		}
		if w.o.Gate != nil && !w.o.Gate.Allowed(io) {
			if pending {
				// Votes this lane holds (left by an earlier process with
				// this id, or a batch whose write the gate stopped) go
				// back to this region's queue rather than to the store.
				n, err := c.Requeue(io)
				if err != nil {
					w.wait(io, b, "redis", err.Error())
					continue
				}
				b.Reset()
				pending = false
				if n > 0 {
					w.log.Info("standby: returned votes to the queue", "lane", c.ID(), "votes", n)
				}
			}
			// ctx, not io: a stop request ends the wait at once.
			backoff.Sleep(ctx, w.o.Gate.TTL())
			continue
		}
		var items []string
		var err error
		if pending {
			items, err = c.Pending(io)
		} else {
			items, err = c.Fetch(io, w.o.BatchSize, w.o.FetchWait)
		}
		if err != nil {
			pending = true
			// While stopping, keep trying until the shutdown timeout: the
			// list may hold a batch that should be committed, not orphaned.
			w.wait(io, b, "redis", err.Error())
			continue
		}
		b.Reset()
		if pending && len(items) > 0 {
			w.log.Info("finishing votes already in the processing list", "lane", c.ID(), "votes", len(items))
		}
		if len(items) == 0 {
			// An empty fetch may still have moved a vote: if the connection
			// broke after BLMOVE ran, the client retried it and the retry
			// timed out. Look at the list before the next fetch, or that
			// vote would wait there for the next one. (After an empty look
			// at the list, fetch again.)
			pending = !pending
			continue
		}
		pending = false
		switch w.commit(io, c, items) {
		case commitStopped:
			return false
		case commitRefused:
			pending = true // the standby branch above returns the batch
			continue
		}
		if ctx.Err() != nil {
			// A fetch racing the stop may have moved items we have not seen.
			pending = true
		}
	}
}

// commitResult is how commit ended.
type commitResult int

const (
	commitDone    commitResult = iota // written and acknowledged
	commitStopped                     // ctx (the io context) ended first
	commitRefused                     // the gate was closed before an attempt; nothing written
)

// commit writes one batch and acknowledges it, retrying both until they
// succeed or ctx (the io context) ends. Acknowledging only after the
// commit is what makes a vote survive any crash; retrying the ack after a
// commit is safe because a redelivered vote changes nothing. Every
// attempt of the write asks the gate first (a cached answer, usually):
// a batch fetched, or failing, across a switch of the writer region is
// not applied late.
func (w *Worker) commit(ctx context.Context, c *queue.Consumer, items []string) commitResult {
	votes := make([]ballot.Vote, 0, len(items))
	for _, it := range items {
		v, err := ballot.Decode([]byte(it))
		if err != nil {
			w.dropPoison(it, err)
			continue
		}
		votes = append(votes, v)
	}
	if len(votes) > 0 {
		var took time.Duration
		b := backoff.New(100*time.Millisecond, 5*time.Second)
		for {
			if w.o.Gate != nil && !w.o.Gate.BeginWrite(ctx) {
				return commitRefused
			}
			start := time.Now()
			err := w.o.Store.ApplyVotes(ctx, votes)
			took = time.Since(start)
			if w.o.Gate != nil {
				w.o.Gate.EndWrite()
			}
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return commitStopped
			}
			if !w.wait(ctx, b, w.o.StoreName, "apply votes: "+err.Error()) {
				return commitStopped
			}
		}
		w.size.Observe(float64(len(votes)))
		w.took.Observe(took.Seconds())
	}
	if err := w.retry(ctx, "redis", "ack batch", c.Ack); err != nil {
		return commitStopped
	}
	metrics.Drained.Add(float64(len(votes)))
	w.drained.Add(int64(len(votes)))
	w.batches.Add(1)
	w.log.Debug("batch committed", "votes", len(votes), "payloads", len(items))
	return commitDone
}

// dropPoison counts and logs a payload that is not a valid vote. It is
// acknowledged with its batch: kept, it would be redelivered forever.
// The payload itself is not logged (it may carry another voter's id,
// which lets anyone overwrite that voter's vote); its digest lets an
// operator find it in a capture.
func (w *Worker) dropPoison(payload string, err error) {
	metrics.Poison.Inc()
	w.poison.Add(1)
	sum := sha256.Sum256([]byte(payload))
	w.log.Warn("dropping invalid queue payload", "error", err.Error(),
		"bytes", len(payload), "sha256", hex.EncodeToString(sum[:8]))
}

// heartbeat keeps this worker alive for peers and returns dead peers'
// batches to the queue, until ctx ends.
func (w *Worker) heartbeat(ctx context.Context) {
	w.reclaim(ctx)
	beat := time.NewTicker(w.o.HeartbeatTTL / 3)
	defer beat.Stop()
	sweep := time.NewTicker(w.o.HeartbeatTTL / 2)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			if err := w.beat(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("waiting for redis: "+err.Error(), "dependency", "redis", "error", err.Error())
			}
		case <-sweep.C:
			w.reclaim(ctx)
		}
	}
}

// beat refreshes every lane's heartbeat.
func (w *Worker) beat(ctx context.Context) error {
	for _, c := range w.lanes {
		if err := c.Heartbeat(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) reclaim(ctx context.Context) {
	// Any lane will do: each skips only its own list, and the other lanes'
	// heartbeats are alive.
	n, err := w.lanes[0].ReclaimDead(ctx)
	if n > 0 {
		metrics.Requeued.Add(float64(n))
		w.requeued.Add(int64(n))
		w.log.Info("re-queued votes of dead workers", "votes", n)
	}
	if err != nil && ctx.Err() == nil {
		w.log.Warn("waiting for redis: "+err.Error(), "dependency", "redis", "error", err.Error())
	}
}

// retry is backoff.Retry with the operation named in the error it logs.
func (w *Worker) retry(ctx context.Context, dep, op string, fn func(context.Context) error) error {
	return backoff.Retry(ctx, w.log, dep, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return nil
	})
}

// wait logs a failure of dependency dep as backoff.Retry does ("waiting for
// redis: ..., retrying in 2s") and sleeps b's next delay; false when ctx
// ended first.
func (w *Worker) wait(ctx context.Context, b *backoff.Backoff, dep, msg string) bool {
	d := b.Next()
	w.log.Warn("waiting for "+dep+": "+msg+", retrying in "+d.Round(time.Millisecond).String(),
		"dependency", dep, "error", msg, "retry_in", d.String())
	return backoff.Sleep(ctx, d)
}
