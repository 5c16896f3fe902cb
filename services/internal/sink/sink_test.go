package sink_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/sink"
	"github.com/ladder-cdk/ladder/services/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Concurrent casts share RPUSHes, and every one of them is on the list
// when its Cast returns.
func TestQueueCoalescesPushes(t *testing.T) {
	ctx := context.Background()
	redisURL, prefix := testenv.Redis(t)
	b, err := sink.Open(ctx, config.Config{VoteMode: config.ModeQueue, RedisURL: redisURL, RedisKeyPrefix: prefix, BatchSize: 1000}, "n1", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- b.Cast(ctx, ballot.Vote{VoterID: fmt.Sprintf("%016x", i+1), Option: "a", CastAt: time.Now().UnixNano()})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := testenv.RedisClient(t, redisURL).LRange(ctx, prefix+"votes", 0, -1).Result()
	if err != nil || len(got) != n {
		t.Fatalf("list has %d payloads (%v), want %d", len(got), err, n)
	}
	seen := map[string]bool{}
	for _, p := range got {
		v, err := ballot.Decode([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		seen[v.VoterID] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct voters on the list, want %d", len(seen), n)
	}
	s := b.Stats()
	if s.Items != n || s.Flushes >= n {
		t.Fatalf("stats %+v: want %d votes in fewer than %d pushes", s, n, n)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Cast(ctx, ballot.Vote{VoterID: "0000000000000001", Option: "b", CastAt: 1}); err == nil {
		t.Fatal("cast after close succeeded")
	}
}

// With DB_MIGRATE the backend is not ready until Wait applied the schema.
func TestDatabaseNotReadyBeforeMigration(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.Database(t)
	b, err := sink.Open(ctx, config.Config{VoteMode: config.ModeDirect, DatabaseURL: dbURL, DBMigrate: true, BatchSize: 10}, "n1", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if err := b.Check(ctx); err == nil {
		t.Fatal("ready before migrating")
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatalf("not ready after migrating: %v", err)
	}
	if err := b.Cast(ctx, ballot.Vote{VoterID: "00000000000000f1", Option: "b", CastAt: 7}); err != nil {
		t.Fatal(err)
	}
	var vote string
	var castAt int64
	if err := testenv.Conn(t, dbURL).QueryRow(ctx, "SELECT vote, cast_at FROM votes WHERE id = '00000000000000f1'").Scan(&vote, &castAt); err != nil {
		t.Fatal(err)
	}
	if vote != "b" || castAt != 7 {
		t.Fatalf("stored %s@%d", vote, castAt)
	}
}
