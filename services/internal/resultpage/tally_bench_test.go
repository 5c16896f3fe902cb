package resultpage

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// BenchmarkTallyQuery compares the read behind every page view, API call and
// new stream: store.Tally (two rows of the tallies table) against the
// original app's count over the whole votes table, with
// LADDER_BENCH_VOTERS voters (default 1,000,000) loaded.
//
//	go test -run '^$' -bench TallyQuery ./internal/resultpage/
func BenchmarkTallyQuery(b *testing.B) {
	voters := 1_000_000
	if s := os.Getenv("LADDER_BENCH_VOTERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("LADDER_BENCH_VOTERS=%q: want a non-negative integer", s)
		}
		voters = n
	}
	ctx := context.Background()
	u := testenv.MigratedDatabase(b)
	conn := testenv.Conn(b, u)
	// Loading is not timed: sub-benchmarks time only their own loops. The
	// tallies are backfilled the way migration 0003 does for old data.
	for _, q := range []string{
		`INSERT INTO votes (id, vote, cast_at)
		 SELECT lpad(to_hex(g), 16, '0'), CASE WHEN g % 3 = 0 THEN 'b' ELSE 'a' END, g
		 FROM generate_series(1, ` + strconv.Itoa(voters) + `) AS g`,
		`UPDATE tallies t SET count = (SELECT count(*) FROM votes v WHERE v.vote = t.option)`,
		// As autovacuum would have left a long-lived table: the fairest
		// case for the full count (index-only scans possible, stats fresh).
		`VACUUM ANALYZE votes`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatalf("load %d voters: %v", voters, err)
		}
	}
	want := store.Tally{A: int64(voters - voters/3), B: int64(voters / 3)}

	st, err := store.OpenPostgres(ctx, store.Options{URL: u})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()

	b.Run("tallies", func(b *testing.B) {
		for b.Loop() {
			t, err := st.Tally(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if t != want {
				b.Fatalf("tally %+v, want %+v", t, want)
			}
		}
		b.ReportMetric(float64(voters), "voters")
	})
	b.Run("count_votes", func(b *testing.B) {
		for b.Loop() {
			rows, err := pool.Query(ctx, "SELECT vote, COUNT(id) AS count FROM votes GROUP BY vote")
			if err != nil {
				b.Fatal(err)
			}
			var got store.Tally
			for rows.Next() {
				var v string
				var n int64
				if err := rows.Scan(&v, &n); err != nil {
					b.Fatal(err)
				}
				if v == "a" {
					got.A = n
				} else if v == "b" {
					got.B = n
				}
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			if got != want {
				b.Fatalf("count %+v, want %+v", got, want)
			}
		}
		b.ReportMetric(float64(voters), "voters")
	})
}
