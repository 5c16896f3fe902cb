package schema_test

import (
	"context"
	"testing"

	"github.com/ladder-cdk/ladder/services/schema"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestApplyTwiceChangesNothing(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.Database(t))
	if err := schema.Apply(ctx, conn); err != nil {
		t.Fatal(err)
	}
	v1, err := schema.Version(ctx, conn)
	if err != nil || v1 != schema.Latest() || v1 < 3 {
		t.Fatalf("version after first apply = %d, %v; want %d", v1, err, schema.Latest())
	}
	snapshot := func() string {
		var s string
		if err := conn.QueryRow(ctx, `SELECT string_agg(table_name||'.'||column_name||':'||data_type, ',' ORDER BY table_name, column_name)
			FROM information_schema.columns WHERE table_schema = 'public'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	applied, err := schema.ApplyUpTo(ctx, conn, 1<<30)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second apply applied %v, %v; want nothing", applied, err)
	}
	if after := snapshot(); after != before {
		t.Fatalf("second apply changed the schema:\n%s\n%s", before, after)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != v1 {
		t.Fatalf("schema_migrations rows = %d, %v", n, err)
	}
}

func TestUpgradeFromOriginalSchema(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.Database(t))
	// Version 1 is the original app's table; it holds votes already.
	if applied, err := schema.ApplyUpTo(ctx, conn, 1); err != nil || len(applied) != 1 {
		t.Fatalf("apply v1: %v %v", applied, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO votes (id, vote) VALUES ('1111111111111111','a'),('2222222222222222','b'),('3333333333333333','a')`); err != nil {
		t.Fatal(err)
	}
	if err := schema.Apply(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if v, _ := schema.Version(ctx, conn); v != schema.Latest() {
		t.Fatalf("version = %d, want %d", v, schema.Latest())
	}
	var a, b, castAt int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT count FROM tallies WHERE option='a'), (SELECT count FROM tallies WHERE option='b'),
		(SELECT max(cast_at) FROM votes)`).Scan(&a, &b, &castAt); err != nil {
		t.Fatal(err)
	}
	if a != 2 || b != 1 || castAt != 0 {
		t.Fatalf("after upgrade tallies a=%d b=%d max(cast_at)=%d; want 2, 1, 0", a, b, castAt)
	}
}

func TestConcurrentApply(t *testing.T) {
	ctx := context.Background()
	u := testenv.Database(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			c := testenv.Conn(t, u)
			errs <- schema.Apply(ctx, c)
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
