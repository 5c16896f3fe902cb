package batcher_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/batcher"
)

// recorder is a flush function that remembers every batch it was given.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	err     func(items []int) error
	gate    chan struct{} // if set, each flush waits for a receive
}

func (r *recorder) flush(_ context.Context, items []int) error {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(items))
	r.mu.Unlock()
	if r.err != nil {
		return r.err(items)
	}
	return nil
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []int
	for _, b := range r.batches {
		s = append(s, len(b))
	}
	return s
}

// submitAll submits items concurrently and returns each one's error.
func submitAll(b *batcher.Batcher[int], items ...int) <-chan error {
	errs := make(chan error, len(items))
	for _, it := range items {
		go func() { errs <- b.Submit(context.Background(), it) }()
	}
	return errs
}

func collect(t *testing.T, errs <-chan error, n int) []error {
	t.Helper()
	var out []error
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case err := <-errs:
			out = append(out, err)
		case <-timeout:
			t.Fatalf("only %d of %d submits returned", len(out), n)
		}
	}
	return out
}

func waitPending(t *testing.T, b *batcher.Batcher[int], n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Pending != n {
		if time.Now().After(deadline) {
			t.Fatalf("pending = %d, want %d", b.Stats().Pending, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFlushOnSize(t *testing.T) {
	r := &recorder{}
	// A linger of an hour means only a full batch can flush.
	b := batcher.New(r.flush, batcher.Options{Size: 3, Linger: time.Hour})
	defer b.Close(context.Background())
	for _, err := range collect(t, submitAll(b, 1, 2, 3), 3) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := r.sizes(); !slices.Equal(got, []int{3}) {
		t.Fatalf("batch sizes %v, want [3]", got)
	}
	// A fourth item waits for company; it is not flushed on its own.
	errs := submitAll(b, 4)
	waitPending(t, b, 1)
	select {
	case err := <-errs:
		t.Fatalf("lone item returned %v before its batch was full", err)
	case <-time.After(50 * time.Millisecond):
	}
	collect(t, submitAll(b, 5, 6), 2)
	collect(t, errs, 1)
	if got := r.sizes(); !slices.Equal(got, []int{3, 3}) {
		t.Fatalf("batch sizes %v, want [3 3]", got)
	}
	if s := b.Stats(); s.Flushes != 2 || s.Items != 6 || s.Pending != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFlushOnLinger(t *testing.T) {
	r := &recorder{}
	const linger = 80 * time.Millisecond
	b := batcher.New(r.flush, batcher.Options{Size: 1000, Linger: linger})
	defer b.Close(context.Background())
	start := time.Now()
	for _, err := range collect(t, submitAll(b, 1, 2, 3), 3) {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A lower bound only: the batch must have waited for its linger.
	if took := time.Since(start); took < linger {
		t.Fatalf("partial batch flushed after %s, before the %s linger", took, linger)
	}
	if got := r.sizes(); len(got) == 0 || slices.Max(got) > 3 || sum(got) != 3 {
		t.Fatalf("batch sizes %v", got)
	}
}

func sum(s []int) int {
	n := 0
	for _, v := range s {
		n += v
	}
	return n
}

// With no linger, items arriving while a flush runs go together into the
// next one: the batch size follows the load.
func TestBatchesGrowWhileFlushRuns(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	b := batcher.New(r.flush, batcher.Options{Size: 100, Linger: 0})
	defer b.Close(context.Background())
	first := submitAll(b, 0)
	waitPending(t, b, 1) // the flusher now blocks in flush with item 0
	rest := submitAll(b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	waitPending(t, b, 11)
	r.gate <- struct{}{}
	collect(t, first, 1)
	r.gate <- struct{}{}
	collect(t, rest, 10)
	if got := r.sizes(); !slices.Equal(got, []int{1, 10}) {
		t.Fatalf("batch sizes %v, want [1 10]", got)
	}
}

func TestErrorReachesEveryWaiterOfItsBatch(t *testing.T) {
	boom := errors.New("backend down")
	r := &recorder{gate: make(chan struct{}), err: func(items []int) error {
		if slices.Contains(items, 13) {
			return boom
		}
		return nil
	}}
	b := batcher.New(r.flush, batcher.Options{Size: 100})
	defer b.Close(context.Background())
	first := submitAll(b, 0)
	waitPending(t, b, 1)
	bad := submitAll(b, 11, 12, 13, 14)
	waitPending(t, b, 5)
	r.gate <- struct{}{}
	if err := collect(t, first, 1)[0]; err != nil {
		t.Fatalf("good batch got %v", err)
	}
	r.gate <- struct{}{}
	for _, err := range collect(t, bad, 4) {
		if !errors.Is(err, boom) {
			t.Fatalf("waiter of failed batch got %v, want %v", err, boom)
		}
	}
	// The batcher keeps working after a failure.
	go func() { r.gate <- struct{}{} }()
	if err := collect(t, submitAll(b, 20), 1)[0]; err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Failures != 1 || s.Flushes != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPanicInFlushIsAnError(t *testing.T) {
	b := batcher.New(func(context.Context, []int) error { panic("bug") }, batcher.Options{Size: 2})
	defer b.Close(context.Background())
	for _, err := range collect(t, submitAll(b, 1, 2), 2) {
		if err == nil {
			t.Fatal("submit after a panicking flush returned nil")
		}
	}
}

func TestCloseDrains(t *testing.T) {
	r := &recorder{}
	var flushed []time.Duration
	b := batcher.New(r.flush, batcher.Options{Size: 1000, Linger: time.Hour,
		OnFlush: func(n int, took time.Duration, err error) { flushed = append(flushed, took) }})
	errs := submitAll(b, 1, 2, 3, 4, 5)
	waitPending(t, b, 5)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Close returned, so every submit has its answer already.
	for range 5 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("submit still waiting after Close returned")
		}
	}
	if got := r.sizes(); !slices.Equal(got, []int{5}) {
		t.Fatalf("batch sizes %v, want [5]", got)
	}
	if len(flushed) != 1 {
		t.Fatalf("OnFlush called %d times, want 1", len(flushed))
	}
	if err := b.Submit(context.Background(), 6); !errors.Is(err, batcher.ErrClosed) {
		t.Fatalf("submit after close: %v, want ErrClosed", err)
	}
}

func TestCloseDeadlineCancelsRunningFlush(t *testing.T) {
	started := make(chan struct{})
	b := batcher.New(func(ctx context.Context, _ []int) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}, batcher.Options{Size: 1})
	errs := submitAll(b, 1)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want deadline exceeded", err)
	}
	if err := collect(t, errs, 1)[0]; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter got %v, want cancellation", err)
	}
}

func TestSubmitContextEnds(t *testing.T) {
	r := &recorder{}
	b := batcher.New(r.flush, batcher.Options{Size: 10, Linger: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Submit(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit = %v, want canceled", err)
	}
	// The item was already queued; Close still writes it.
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.sizes(); !slices.Equal(got, []int{1}) {
		t.Fatalf("batch sizes %v", got)
	}
}
