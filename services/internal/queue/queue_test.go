package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestFetchAckAndReclaim(t *testing.T) {
	ctx := context.Background()
	url, prefix := testenv.Redis(t)
	rdb := testenv.RedisClient(t, url)
	keys := queue.NewKeys(prefix)
	p := queue.NewProducer(rdb, keys)
	for i := range 10 {
		if err := p.Push(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	dead := queue.NewConsumer(rdb, keys, "dead", 200*time.Millisecond)
	if err := dead.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := dead.Fetch(ctx, 4, time.Second)
	if err != nil || len(got) != 4 || got[0] != "0" || got[3] != "3" {
		t.Fatalf("Fetch = %v, %v; want 0..3 in order", got, err)
	}
	// The dead worker never acks. While its heartbeat lives nothing moves.
	live := queue.NewConsumer(rdb, keys, "live", 5*time.Second)
	if err := live.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := live.ReclaimDead(ctx); err != nil || n != 0 {
		t.Fatalf("reclaimed %d (%v) from a live worker", n, err)
	}
	time.Sleep(300 * time.Millisecond)
	if n, err := live.ReclaimDead(ctx); err != nil || n != 4 {
		t.Fatalf("reclaimed %d (%v), want 4", n, err)
	}
	// Reclaimed items go to the head, oldest first.
	got, err = live.Fetch(ctx, 100, time.Second)
	if err != nil || len(got) != 10 || got[0] != "0" || got[9] != "9" {
		t.Fatalf("after reclaim Fetch = %v, %v", got, err)
	}
	if pend, _ := live.Pending(ctx); len(pend) != 10 {
		t.Fatalf("pending %d, want 10", len(pend))
	}
	if err := live.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if pend, _ := live.Pending(ctx); len(pend) != 0 {
		t.Fatalf("pending after ack %v", pend)
	}
	// Empty queue: Fetch blocks for the wait and returns nothing.
	start := time.Now()
	got, err = live.Fetch(ctx, 10, 200*time.Millisecond)
	if err != nil || got != nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("empty Fetch = %v, %v after %v", got, err, time.Since(start))
	}
}

func TestRequeueOwn(t *testing.T) {
	ctx := context.Background()
	url, prefix := testenv.Redis(t)
	rdb := testenv.RedisClient(t, url)
	keys := queue.NewKeys(prefix)
	p := queue.NewProducer(rdb, keys)
	for i := range 3 {
		_ = p.Push(ctx, []byte(fmt.Sprint(i)))
	}
	c := queue.NewConsumer(rdb, keys, "w", time.Second)
	if _, err := c.Fetch(ctx, 2, time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Requeue(ctx); err != nil || n != 2 {
		t.Fatalf("Requeue = %d, %v", n, err)
	}
	if l, _ := rdb.LRange(ctx, keys.Votes(), 0, -1).Result(); fmt.Sprint(l) != "[0 1 2]" {
		t.Fatalf("queue after requeue = %v", l)
	}
}
