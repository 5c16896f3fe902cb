package resultpage

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/httpserver"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestEventsInitialTallyThenChanges(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{})
	vote(t, r.store, 1, 0)
	r.waitLive(t, store.Tally{A: 1})

	c := openEvents(t, r.srv.URL)
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := c.resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if first := c.next(t); first != (Results{OptionA: "Cats", OptionB: "Dogs", A: 1, Total: 1}) {
		t.Fatalf("initial event %+v", first)
	}
	select {
	case l := <-c.lines:
		if !strings.HasPrefix(l, "retry: ") {
			t.Fatalf("first non-data line %q, want a retry: hint", l)
		}
	default:
		t.Fatal("no retry: hint")
	}

	vote(t, r.store, 0, 2)
	c.waitFor(t, 1, 2)
	vote(t, r.store, 3, 0)
	c.waitFor(t, 4, 2)
}

// Two replicas on one database, no sticky sessions: each LISTENs on its own
// and both push every change.
func TestEventsReachEveryReplica(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r1 := newReplica(t, u, replicaOpts{})
	r2 := newReplica(t, u, replicaOpts{})
	r1.waitLive(t, store.Tally{})
	r2.waitLive(t, store.Tally{})
	c1 := openEvents(t, r1.srv.URL)
	c2 := openEvents(t, r2.srv.URL)
	c1.waitFor(t, 0, 0)
	c2.waitFor(t, 0, 0)

	// Written by a third party (the worker), not through either replica.
	w, err := store.OpenPostgres(context.Background(), store.Options{URL: u, AppName: "rt-worker"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	vote(t, w, 2, 5)
	c1.waitFor(t, 2, 5)
	c2.waitFor(t, 2, 5)
}

// A change committed while the LISTEN connection is gone is not notified to
// anyone; it must still reach the clients once the watcher reconnects.
func TestEventsAfterListenConnectionKilled(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{})
	vote(t, r.store, 1, 1) // also opens the write pool's connection
	r.waitLive(t, store.Tally{A: 1, B: 1})
	c := openEvents(t, r.srv.URL)
	c.waitFor(t, 1, 1)

	ctx := context.Background()
	admin := testenv.Conn(t, mustEnvDB(t))
	db := testenv.DatabaseName(t, u)
	// Keep the watcher from reconnecting until the change is committed;
	// established connections (the write pool) are unaffected.
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	allow := func() {
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS true"); err != nil {
			t.Fatal(err)
		}
	}
	defer allow()
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND application_name = $2`, db, r.app+"-listen").Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d listen backends (%v), want 1", killed, err)
	}
	waitFor(t, "the hub to see the watch down", func() bool { _, _, live := r.hub.Cached(); return !live })

	vote(t, r.store, 0, 3)
	// Meanwhile a page view reads the database rather than the stale cache.
	if got := getResults(t, r.srv.URL); got.A != 1 || got.B != 4 {
		t.Fatalf("/api/results with the watch down: %+v, want a=1 b=4", got)
	}
	select {
	case ev := <-c.events:
		t.Fatalf("event %+v while no LISTEN connection existed", ev)
	case <-time.After(200 * time.Millisecond):
	}

	allow()
	c.waitFor(t, 1, 4)
	if _, _, live := r.hub.Cached(); !live {
		t.Fatal("watch not live after reconnecting")
	}
	if r.hub.downs < 1 {
		t.Fatal("hub never counted the watch down")
	}
}

func TestEventsHeartbeatAndMaxLifetime(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{heartbeat: 20 * time.Millisecond, maxStream: 300 * time.Millisecond})
	c := openEvents(t, r.srv.URL)
	c.next(t)
	start := time.Now()
	pings := 0
	for pings == 0 {
		select {
		case l := <-c.lines:
			if l == ": ping" {
				pings++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat")
		}
	}
	select {
	case <-c.closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("stream still open %s after its maximum lifetime", time.Since(start))
	}
}

// The HTTP server's ReadTimeout (30 s in httpserver) must not cut streams: a
// client holding the page open gets changes long after it. (net/http lifts
// the read deadline once the request is read; this guards that.)
func TestEventsOutliveReadTimeout(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	r := newReplica(t, u, replicaOpts{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r.h, ReadTimeout: 100 * time.Millisecond}
	go srv.Serve(ln)
	defer srv.Close()
	c := openEvents(t, "http://"+ln.Addr().String())
	c.waitFor(t, 0, 0)
	time.Sleep(300 * time.Millisecond)
	vote(t, r.store, 1, 0)
	c.waitFor(t, 1, 0)
}

// On SIGTERM (the service context ending) open streams end at once, so the
// graceful shutdown finishes instead of waiting out its timeout.
func TestShutdownEndsStreams(t *testing.T) {
	u := testenv.MigratedDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.OpenPostgres(ctx, store.Options{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub := NewHub(0)
	go hub.Run(ctx)
	go st.WatchTallies(ctx, hub.Publish, hub.WatchDown)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- httpserver.Serve(ctx, ln, httpserver.Options{Handler: New(Options{Store: st, Hub: hub}),
			ShutdownTimeout: 30 * time.Second, Log: slog.New(slog.DiscardHandler)})
	}()
	base := "http://" + ln.Addr().String()
	clients := []*sseClient{openEvents(t, base), openEvents(t, base), openEvents(t, base)}
	for _, c := range clients {
		c.next(t)
	}

	cancel()
	start := time.Now()
	for _, c := range clients {
		select {
		case <-c.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("stream still open 5s after shutdown began")
		}
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server still shutting down after 5s")
	}
	t.Logf("streams closed and server stopped %s after cancel", time.Since(start))
	if resp, err := http.Get(base + "/events"); err == nil {
		resp.Body.Close()
		t.Fatal("server still accepting connections")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func mustEnvDB(t *testing.T) string {
	t.Helper()
	u := os.Getenv("LADDER_TEST_DATABASE_URL")
	if u == "" {
		t.Skip("LADDER_TEST_DATABASE_URL is not set")
	}
	return u
}
