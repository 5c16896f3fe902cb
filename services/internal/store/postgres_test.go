package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/internal/testenv"
)

func open(t *testing.T) (*store.Postgres, string) {
	t.Helper()
	u := testenv.MigratedDatabase(t)
	s, err := store.OpenPostgres(context.Background(), store.Options{URL: u, AppName: "ladder-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, u
}

func id(n int) string { return fmt.Sprintf("%016x", n) }

// recount is the expensive query the services never run; tests use it as the
// ground truth for the incrementally maintained tallies.
func recount(t *testing.T, dbURL string) (store.Tally, map[string]string) {
	t.Helper()
	c := testenv.Conn(t, dbURL)
	rows, err := c.Query(context.Background(), "SELECT id, vote FROM votes")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tl store.Tally
	m := map[string]string{}
	for rows.Next() {
		var i, v string
		if err := rows.Scan(&i, &v); err != nil {
			t.Fatal(err)
		}
		m[i] = v
		if v == "a" {
			tl.A++
		} else if v == "b" {
			tl.B++
		}
	}
	return tl, m
}

func TestLastVoteWins(t *testing.T) {
	ctx := context.Background()
	s, u := open(t)
	// Voter 1 votes a@10 then b@20, delivered out of order; voter 2 is in the
	// same batch twice; voter 3's vote is redelivered.
	must := func(vs ...ballot.Vote) {
		t.Helper()
		if err := s.ApplyVotes(ctx, vs); err != nil {
			t.Fatal(err)
		}
	}
	must(ballot.Vote{VoterID: id(1), Option: "b", CastAt: 20},
		ballot.Vote{VoterID: id(2), Option: "a", CastAt: 5},
		ballot.Vote{VoterID: id(2), Option: "b", CastAt: 6},
		ballot.Vote{VoterID: id(3), Option: "a", CastAt: 1})
	must(ballot.Vote{VoterID: id(1), Option: "a", CastAt: 10}, // stale
		ballot.Vote{VoterID: id(3), Option: "a", CastAt: 1}) // redelivery
	tl, err := s.Tally(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Tally{A: 1, B: 2}
	if tl != want {
		t.Fatalf("tally = %+v, want %+v", tl, want)
	}
	rc, votes := recount(t, u)
	if rc != want || votes[id(1)] != "b" || votes[id(2)] != "b" || votes[id(3)] != "a" {
		t.Fatalf("stored votes %v (recount %+v)", votes, rc)
	}
	// A newer change moves the tally; same-option newer vote does not.
	must(ballot.Vote{VoterID: id(3), Option: "b", CastAt: 2}, ballot.Vote{VoterID: id(1), Option: "b", CastAt: 30})
	if tl, _ = s.Tally(ctx); tl != (store.Tally{A: 0, B: 3}) {
		t.Fatalf("after change tally = %+v, want a=0 b=3", tl)
	}
	var castAt int64
	if err := testenv.Conn(t, u).QueryRow(ctx, "SELECT cast_at FROM votes WHERE id=$1", id(1)).Scan(&castAt); err != nil || castAt != 30 {
		t.Fatalf("cast_at = %d, %v; want 30", castAt, err)
	}
}

func TestRejectsInvalidVotes(t *testing.T) {
	s, _ := open(t)
	if err := s.ApplyVotes(context.Background(), []ballot.Vote{{VoterID: id(1), Option: "c", CastAt: 1}}); err == nil {
		t.Fatal("invalid option accepted")
	}
}

// Concurrent writers with random, overlapping, out-of-order votes: tallies
// must equal a recount and each voter must hold their newest vote.
func TestTalliesEqualRecount(t *testing.T) {
	ctx := context.Background()
	s, u := open(t)
	const voters, writers, batches = 300, 6, 40
	var mu sync.Mutex
	newest := map[string]ballot.Vote{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for range batches {
				n := 1 + r.IntN(80)
				batch := make([]ballot.Vote, n)
				for i := range batch {
					batch[i] = ballot.Vote{VoterID: id(r.IntN(voters)), Option: ballot.Options[r.IntN(2)], CastAt: 1 + r.Int64N(1_000_000)}
				}
				if err := s.ApplyVotes(ctx, batch); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, v := range batch {
					cur, ok := newest[v.VoterID]
					if !ok || v.CastAt > cur.CastAt || (v.CastAt == cur.CastAt && v.Option > cur.Option) {
						newest[v.VoterID] = v
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	tl, err := s.Tally(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc, stored := recount(t, u)
	if tl != rc {
		t.Fatalf("tally %+v != recount %+v", tl, rc)
	}
	if len(stored) != len(newest) {
		t.Fatalf("%d rows, want %d", len(stored), len(newest))
	}
	for vid, v := range newest {
		if stored[vid] != v.Option {
			t.Fatalf("voter %s: stored %q, newest vote %q", vid, stored[vid], v.Option)
		}
	}
}

func TestWatchTallies(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, u := open(t)
	got := make(chan store.Tally, 16)
	downs := make(chan error, 16)
	go s.WatchTallies(ctx, func(tl store.Tally) { got <- tl }, func(err error) { downs <- err })
	recv := func() store.Tally {
		t.Helper()
		select {
		case tl := <-got:
			return tl
		case <-time.After(5 * time.Second):
			t.Fatal("no tally received")
		}
		return store.Tally{}
	}
	if tl := recv(); tl != (store.Tally{}) {
		t.Fatalf("initial tally %+v", tl)
	}
	if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(1), Option: "a", CastAt: 1}, {VoterID: id(2), Option: "b", CastAt: 1}, {VoterID: id(3), Option: "b", CastAt: 1}}); err != nil {
		t.Fatal(err)
	}
	if tl := recv(); tl != (store.Tally{A: 1, B: 2}) {
		t.Fatalf("notified tally %+v, want a=1 b=2", tl)
	}
	// A no-op batch (stale) sends no notification.
	if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(1), Option: "a", CastAt: 1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case tl := <-got:
		t.Fatalf("unexpected notification %+v for a no-op batch", tl)
	case <-time.After(300 * time.Millisecond):
	}

	// Losing the LISTEN connection is reported at once, and after the
	// reconnect the current tally is read again, covering missed changes.
	admin := testenv.Conn(t, u)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'ladder-test-listen'`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-downs:
	case <-time.After(5 * time.Second):
		t.Fatal("down not called after the listen connection was terminated")
	}
	if tl := recv(); tl != (store.Tally{A: 1, B: 2}) {
		t.Fatalf("tally after reconnect %+v, want a=1 b=2", tl)
	}
}

func BenchmarkApplyVotes(b *testing.B) {
	u := testenv.MigratedDatabase(b)
	s, err := store.OpenPostgres(context.Background(), store.Options{URL: u})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
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

func benchSize() int {
	var n int
	if _, err := fmt.Sscan(getenvDefault("BENCH_BATCH", "500"), &n); err != nil || n <= 0 {
		return 500
	}
	return n
}
