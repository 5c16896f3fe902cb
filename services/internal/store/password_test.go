package store

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// A rotation changes the role's password and rewrites the secret file; the
// store must use the new one for every new connection, with no restart.
func TestNewConnectionsUseTheCurrentPassword(t *testing.T) {
	ctx := context.Background()
	role := "t_pw_" + testenv.Token()
	// Registered before the database so it runs after the database is
	// dropped, when the role owns and holds nothing.
	t.Cleanup(func() {
		admin := testenv.Conn(t, testenv.AdminURL(t))
		if _, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})
	dbURL := testenv.MigratedDatabase(t)
	owner := testenv.Conn(t, dbURL)
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN PASSWORD 'first-password'",
		"GRANT ALL ON ALL TABLES IN SCHEMA public TO " + role,
	} {
		if _, err := owner.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	u, _ := url.Parse(dbURL)
	u.User = url.User(role)
	var current atomic.Value
	current.Store("first-password")
	p, err := OpenPostgres(ctx, Options{URL: u.String(), Password: func() (string, error) { return current.Load().(string), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	vote := func(n int64) error {
		return p.ApplyVotes(ctx, []ballot.Vote{{VoterID: "00000000000000a" + string(rune('0'+n)), Option: "a", CastAt: n}})
	}
	if err := vote(1); err != nil {
		t.Fatalf("with the first password: %v", err)
	}

	if _, err := owner.Exec(ctx, "ALTER ROLE "+role+" PASSWORD 'second-password'"); err != nil {
		t.Fatal(err)
	}
	p.write.Reset() // the pool replaces its connections, as it does over time
	if err := vote(2); err == nil {
		t.Fatal("a new connection with the old password succeeded: the test proves nothing")
	}
	current.Store("second-password") // the secret file was rewritten
	if err := vote(3); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	tl, err := p.Tally(ctx)
	if err != nil || tl.A != 2 {
		t.Fatalf("tally %+v, %v; want a=2", tl, err)
	}
}
