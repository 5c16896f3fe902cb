// Package batcher is a group commit: many goroutines submit one item each,
// a single goroutine writes them in batches with one call (one network
// round trip), and every submitter waits for the outcome of the write that
// carried its item. The vote service uses it twice: in front of PostgreSQL
// (direct mode) and in front of Redis (queue mode), with different flush
// functions.
//
// A batch is written when it holds Size items, or Linger after its first
// item arrived, whichever comes first. Writes are serialised: while one is
// running, new items collect in the next batch, so under load batches grow
// by themselves even with Linger 0, and at low load an item waits at most
// Linger plus one write.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Submit after Close started.
var ErrClosed = errors.New("batcher closed")

// FlushFunc writes a batch all-or-nothing; its error is given to every
// submitter of the batch. It must not keep items after returning.
type FlushFunc[T any] func(ctx context.Context, items []T) error

// Options tune a Batcher.
type Options struct {
	// Size is the most items one flush gets (at least 1).
	Size int
	// Linger is how long the first item of a batch waits for company.
	Linger time.Duration
	// FlushTimeout bounds one flush so a hung backend turns into errors
	// for its waiters instead of requests that never end. Default 10s.
	FlushTimeout time.Duration
	// OnFlush, if set, observes every flush (for metrics).
	OnFlush func(n int, took time.Duration, err error)
}

// Stats are running totals, e.g. for tests proving batching happened.
type Stats struct {
	Flushes  uint64 // flush calls
	Items    uint64 // items handed to flush calls
	Failures uint64 // flush calls that returned an error
	Pending  int64  // items submitted and not yet flushed
}

// batch is shared by its submitters; err is written once before done is
// closed, so waiters read it without a lock.
type batch[T any] struct {
	items []T
	start time.Time
	done  chan struct{}
	err   error
}

// Batcher collects items and flushes them from one goroutine.
type Batcher[T any] struct {
	flush FlushFunc[T]
	opt   Options

	mu     sync.Mutex
	cur    *batch[T]   // filling
	full   []*batch[T] // reached Size, waiting for the flusher
	closed bool

	kick   chan struct{} // wakes the flusher; buffered, sends never block
	exited chan struct{}
	ctx    context.Context // parent of every flush; cancelled to abort
	abort  context.CancelFunc

	flushes, items, failures atomic.Uint64
	pending                  atomic.Int64
}

// New starts a Batcher; Close stops it.
func New[T any](flush FlushFunc[T], opt Options) *Batcher[T] {
	if opt.Size < 1 {
		opt.Size = 1
	}
	if opt.Linger < 0 {
		opt.Linger = 0
	}
	if opt.FlushTimeout <= 0 {
		opt.FlushTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher[T]{
		flush:  flush,
		opt:    opt,
		kick:   make(chan struct{}, 1),
		exited: make(chan struct{}),
		ctx:    ctx,
		abort:  cancel,
	}
	go b.loop()
	return b
}

// Submit adds item to the next batch and waits until that batch was
// flushed, returning the flush's error. If ctx ends first Submit returns
// ctx's error, but the item stays in its batch and may still be written:
// like any timed-out network call, the outcome is then unknown.
func (b *Batcher[T]) Submit(ctx context.Context, item T) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	c := b.cur
	if c == nil {
		c = &batch[T]{items: make([]T, 0, min(b.opt.Size, 64)), start: time.Now(), done: make(chan struct{})}
		b.cur = c
	}
	c.items = append(c.items, item)
	first, full := len(c.items) == 1, len(c.items) >= b.opt.Size
	if full {
		b.full = append(b.full, c)
		b.cur = nil
	}
	b.pending.Add(1)
	b.mu.Unlock()
	// The flusher only needs waking for a new batch (to start its linger)
	// or a full one; items joining a lingering batch need no signal.
	if first || full {
		b.wake()
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for batch commit: %w", context.Cause(ctx))
	}
}

func (b *Batcher[T]) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// loop is the only goroutine calling flush. It re-reads the state after
// every wake-up, so spurious or coalesced kicks are harmless.
func (b *Batcher[T]) loop() {
	defer close(b.exited)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		b.mu.Lock()
		var next *batch[T]
		var wait time.Duration
		switch {
		case len(b.full) > 0:
			next = b.full[0]
			b.full[0] = nil
			b.full = b.full[1:]
		case b.cur != nil:
			wait = b.opt.Linger - time.Since(b.cur.start)
			if wait <= 0 || b.closed {
				next, b.cur = b.cur, nil
			}
		case b.closed:
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()

		if next != nil {
			b.run(next)
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-b.kick:
				timer.Stop()
			}
			continue
		}
		<-b.kick
	}
}

func (b *Batcher[T]) run(c *batch[T]) {
	ctx, cancel := context.WithTimeout(b.ctx, b.opt.FlushTimeout)
	start := time.Now()
	err := b.safeFlush(ctx, c.items)
	took := time.Since(start)
	cancel()
	n := len(c.items)
	b.flushes.Add(1)
	b.items.Add(uint64(n))
	if err != nil {
		b.failures.Add(1)
	}
	b.pending.Add(-int64(n))
	if b.opt.OnFlush != nil {
		b.opt.OnFlush(n, took, err)
	}
	c.err = err
	c.items = nil
	close(c.done)
}

// safeFlush turns a panic in flush into an error for the batch's waiters
// rather than killing the process with requests waiting forever.
func (b *Batcher[T]) safeFlush(ctx context.Context, items []T) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("flush panicked: %v", r)
		}
	}()
	return b.flush(ctx, items)
}

// Close stops accepting items, flushes everything already submitted
// (without waiting for Linger) and returns when the last flush finished.
// If ctx ends first, the running flush is cancelled, its waiters get the
// error, and Close returns ctx's error.
func (b *Batcher[T]) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wake()
	select {
	case <-b.exited:
		b.abort()
		return nil
	case <-ctx.Done():
		b.abort()
		<-b.exited
		return fmt.Errorf("drain batcher: %w", ctx.Err())
	}
}

// Stats returns running totals.
func (b *Batcher[T]) Stats() Stats {
	return Stats{
		Flushes:  b.flushes.Load(),
		Items:    b.items.Load(),
		Failures: b.failures.Load(),
		Pending:  b.pending.Load(),
	}
}
