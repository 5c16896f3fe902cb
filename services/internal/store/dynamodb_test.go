package store_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopDynalite()
	os.Exit(code)
}

func openDynamo(t testing.TB) (*store.DynamoDB, string) {
	t.Helper()
	endpoint, table := testenv.DynamoDB(t)
	s, err := store.OpenDynamoDB(context.Background(), store.DynamoOptions{
		Table: table, Region: testenv.DynamoRegion, Endpoint: endpoint,
		AccessKey: testenv.DynamoAccessKey, SecretKey: testenv.DynamoSecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, table
}

// recountDynamo scans every voter item: the ground truth for the shards.
func recountDynamo(t *testing.T, s *store.DynamoDB) (store.Tally, map[string]ballot.Vote) {
	t.Helper()
	tl, votes, pending, err := s.Recount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pending > 0 {
		t.Fatalf("%d voter items still hold a pending intent after ApplyVotes returned", pending)
	}
	return tl, votes
}

func tallyOf(t *testing.T, s store.Store) store.Tally {
	t.Helper()
	tl, err := s.Tally(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

// A worker that dies after step 1 (vote and intent written, tally not
// yet moved) or after step 2 (tally moved, intent not cleared) leaves the
// batch unacknowledged; its redelivery must make the tallies exact.
func TestDynamoCrashMidIntent(t *testing.T) {
	ctx := context.Background()
	for _, crashAfter := range []int{1, 2} {
		t.Run("after step "+string(rune('0'+crashAfter)), func(t *testing.T) {
			s, _ := openDynamo(t)
			if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(1), Option: "a", CastAt: 1}, {VoterID: id(2), Option: "a", CastAt: 1}}); err != nil {
				t.Fatal(err)
			}
			batch := []ballot.Vote{{VoterID: id(1), Option: "b", CastAt: 2}, {VoterID: id(3), Option: "b", CastAt: 2}}
			for _, v := range batch {
				in, err := s.Begin(ctx, v)
				if err != nil {
					t.Fatal(err)
				}
				if crashAfter == 2 {
					if err := s.ApplyDelta(ctx, *in); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The crashed state is visible but the batch is not lost.
			want := store.Tally{A: 2}
			if crashAfter == 2 {
				want = store.Tally{A: 1, B: 2}
			}
			if tl := tallyOf(t, s); tl != want {
				t.Fatalf("tally after the crash %+v, want %+v", tl, want)
			}
			// Redelivered twice, once concurrently with a newer vote of voter 3.
			var wg sync.WaitGroup
			for _, b := range [][]ballot.Vote{batch, batch, {{VoterID: id(3), Option: "a", CastAt: 3}}} {
				wg.Go(func() {
					if err := s.ApplyVotes(ctx, b); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			rc, votes := recountDynamo(t, s)
			if tl := tallyOf(t, s); tl != rc || rc != (store.Tally{A: 2, B: 1}) {
				t.Fatalf("tally %+v, recount %+v, want a=2 b=1 (votes %v)", tl, rc, votes)
			}
		})
	}
}

// Markers older than the grace period go, and a sweep completes an intent
// still pending before removing its marker, so a later resume cannot count
// it twice.
func TestDynamoSweep(t *testing.T) {
	ctx := context.Background()
	s, _ := openDynamo(t)
	now := time.Now()
	s.SetClock(func() time.Time { return now })
	if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(1), Option: "a", CastAt: 1}, {VoterID: id(2), Option: "b", CastAt: 1}}); err != nil {
		t.Fatal(err)
	}
	// Crash after step 2 for voter 2's change.
	in, err := s.Begin(ctx, ballot.Vote{VoterID: id(2), Option: "a", CastAt: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyDelta(ctx, *in); err != nil {
		t.Fatal(err)
	}
	total := func() int {
		n := 0
		for sh := range store.DynamoShards {
			m, err := s.Markers(ctx, sh)
			if err != nil {
				t.Fatal(err)
			}
			n += m
		}
		return n
	}
	if n := total(); n != 3 {
		t.Fatalf("%d markers, want 3", n)
	}
	for sh := range store.DynamoShards {
		if err := s.Sweep(ctx, sh, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n := total(); n != 3 {
		t.Fatalf("fresh markers swept: %d left, want 3", n)
	}
	now = now.Add(2 * time.Minute)
	for sh := range store.DynamoShards {
		if err := s.Sweep(ctx, sh, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n := total(); n != 0 {
		t.Fatalf("%d old markers left, want 0", n)
	}
	// The redelivery finds no pending intent and changes nothing.
	if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(2), Option: "a", CastAt: 2}}); err != nil {
		t.Fatal(err)
	}
	rc, _ := recountDynamo(t, s)
	if tl := tallyOf(t, s); tl != rc || rc != (store.Tally{A: 2}) {
		t.Fatalf("tally %+v, recount %+v, want a=2", tl, rc)
	}
	// Swept shards keep their counts and take new changes.
	if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(1), Option: "b", CastAt: 3}, {VoterID: id(2), Option: "b", CastAt: 3}}); err != nil {
		t.Fatal(err)
	}
	rc, _ = recountDynamo(t, s)
	if tl := tallyOf(t, s); tl != rc || rc != (store.Tally{B: 2}) {
		t.Fatalf("after the sweep: tally %+v, recount %+v, want b=2", tl, rc)
	}
}

// An unreachable endpoint is reported through down, and Ping fails.
func TestDynamoWatchDown(t *testing.T) {
	s, err := store.OpenDynamoDB(context.Background(), store.DynamoOptions{
		Table: "nope", Region: testenv.DynamoRegion, Endpoint: "http://127.0.0.1:1",
		AccessKey: testenv.DynamoAccessKey, SecretKey: testenv.DynamoSecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("ping of an unreachable endpoint succeeded")
	}
	downs := make(chan error, 4)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go s.WatchTallies(wctx, func(store.Tally) { t.Error("tally from nowhere") }, func(err error) { downs <- err })
	select {
	case <-downs:
	case <-ctx.Done():
		t.Fatal("down not called")
	}
}

// BenchmarkDynamoDBApplyVotes measures votes/s into dynalite on loopback
// (a single-threaded Node server on LevelDB), not DynamoDB: it shows the
// protocol's cost in round trips, not the service's capacity.
func BenchmarkDynamoDBApplyVotes(b *testing.B) {
	s, _ := openDynamo(b)
	size := benchSize()
	n := 0
	for b.Loop() {
		batch := make([]ballot.Vote, size)
		for i := range batch {
			n++
			batch[i] = ballot.Vote{VoterID: id(n), Option: ballot.Options[n%2], CastAt: int64(n)}
		}
		if err := s.ApplyVotes(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "votes/s")
}
