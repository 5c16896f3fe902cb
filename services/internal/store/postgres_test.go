package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
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
func recount(t *testing.T, dbURL string) (store.Tally, map[string]ballot.Vote) {
	t.Helper()
	c := testenv.Conn(t, dbURL)
	rows, err := c.Query(context.Background(), "SELECT id, vote, cast_at FROM votes")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tl store.Tally
	m := map[string]ballot.Vote{}
	for rows.Next() {
		var i, v string
		var c int64
		if err := rows.Scan(&i, &v, &c); err != nil {
			t.Fatal(err)
		}
		m[i] = ballot.Vote{VoterID: i, Option: v, CastAt: c}
		if v == "a" {
			tl.A++
		} else if v == "b" {
			tl.B++
		}
	}
	return tl, m
}

// Losing the LISTEN connection is reported at once, and after the
// reconnect the current tally is read again, covering missed changes.
func TestPostgresWatchReconnects(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, u := open(t)
	got := make(chan store.Tally, 16)
	downs := make(chan error, 16)
	go s.WatchTallies(ctx, func(tl store.Tally) { got <- tl }, func(err error) { downs <- err })
	if tl := recvTally(t, got); tl != (store.Tally{}) {
		t.Fatalf("initial tally %+v", tl)
	}
	if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(1), Option: "a", CastAt: 1}, {VoterID: id(2), Option: "b", CastAt: 1}, {VoterID: id(3), Option: "b", CastAt: 1}}); err != nil {
		t.Fatal(err)
	}
	if tl := recvTally(t, got); tl != (store.Tally{A: 1, B: 2}) {
		t.Fatalf("notified tally %+v, want a=1 b=2", tl)
	}
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
	if tl := recvTally(t, got); tl != (store.Tally{A: 1, B: 2}) {
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
