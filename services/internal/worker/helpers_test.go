package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/internal/worker"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// env is one test's slice of the real Redis and PostgreSQL.
type env struct {
	t        testing.TB
	redisURL string
	rdb      *redis.Client
	keys     queue.Keys
	dbURL    string
	store    *store.Postgres
	logs     *logBuffer
	log      *slog.Logger
}

func newEnv(t testing.TB) *env {
	t.Helper()
	redisURL, prefix := testenv.Redis(t)
	e := &env{t: t, redisURL: redisURL, rdb: testenv.RedisClient(t, redisURL), keys: queue.NewKeys(prefix)}
	e.dbURL = testenv.MigratedDatabase(t)
	e.store = openStore(t, e.dbURL)
	e.logs = &logBuffer{}
	var out io.Writer = e.logs
	if tt, ok := t.(*testing.T); ok {
		// Shown with -v or when the test fails.
		out = io.MultiWriter(e.logs, tt.Output())
	}
	e.log = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return e
}

func openStore(t testing.TB, dbURL string) *store.Postgres {
	t.Helper()
	s, err := store.OpenPostgres(context.Background(), store.Options{URL: dbURL, AppName: "ladder-worker-test", MaxConn: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func (e *env) consumer(id string, ttl time.Duration) *queue.Consumer {
	return queue.NewConsumer(e.rdb, e.keys, id, ttl)
}

// newWorker builds a worker with test-friendly timings; tweak adjusts them.
func (e *env) newWorker(id string, tweak func(*worker.Options)) *worker.Worker {
	o := worker.Options{
		Redis:           e.rdb,
		Keys:            e.keys,
		ID:              id,
		Store:           e.store,
		StoreName:       "postgres",
		BatchSize:       50,
		HeartbeatTTL:    time.Second,
		ShutdownTimeout: 5 * time.Second,
		Log:             e.log,
	}
	if tweak != nil {
		tweak(&o)
	}
	return worker.New(o)
}

// running is a worker started in the background.
type running struct {
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

// start runs w until the test ends or stop is called.
func start(t testing.TB, w *worker.Worker) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("worker did not stop within 10s of its context ending")
		}
	})
	return r
}

// stop cancels the worker (SIGTERM) and returns Run's result.
func (r *running) stop(t testing.TB, within time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // keep it for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("worker did not stop within %s", within)
		return nil
	}
}

func voterID(n int) string { return fmt.Sprintf("%016x", n) }

// push encodes votes exactly as the vote service does and queues them in order.
func (e *env) push(votes ...ballot.Vote) {
	e.t.Helper()
	p := queue.NewProducer(e.rdb, e.keys)
	payloads := make([][]byte, 0, len(votes))
	for _, v := range votes {
		b, err := ballot.Encode(v, "test")
		if err != nil {
			e.t.Fatal(err)
		}
		payloads = append(payloads, b)
	}
	for len(payloads) > 0 {
		n := min(len(payloads), 1000)
		if err := p.PushMany(context.Background(), payloads[:n]); err != nil {
			e.t.Fatal(err)
		}
		payloads = payloads[n:]
	}
}

func (e *env) pushRaw(payloads ...string) {
	e.t.Helper()
	for _, p := range payloads {
		if err := e.rdb.RPush(context.Background(), e.keys.Votes(), p).Err(); err != nil {
			e.t.Fatal(err)
		}
	}
}

// inQueue counts votes not yet acknowledged: queued or in any processing list.
func (e *env) inQueue() int64 {
	e.t.Helper()
	ctx := context.Background()
	n, err := e.rdb.LLen(ctx, e.keys.Votes()).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	iter := e.rdb.Scan(ctx, 0, e.keys.Processing("")+"*", 100).Iterator()
	for iter.Next(ctx) {
		m, err := e.rdb.LLen(ctx, iter.Val()).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		n += m
	}
	if err := iter.Err(); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) waitEmpty(within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for e.inQueue() != 0 {
		if time.Now().After(deadline) {
			ctx := context.Background()
			keys, _ := e.rdb.Keys(ctx, e.keys.Votes()+"*").Result()
			var where []string
			for _, k := range keys {
				if n, err := e.rdb.LLen(ctx, k).Result(); err == nil {
					where = append(where, fmt.Sprintf("%s=%d", k, n))
				}
			}
			e.t.Fatalf("votes still in Redis after %s: %v", within, where)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFor(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ballots generates votes of voters [from, from+n): each votes 1 to max
// times with increasing stamps; it returns all votes shuffled (so a later
// vote is often queued before an earlier one) and each voter's last vote.
func ballots(from, n, max int, rng *rand.Rand) ([]ballot.Vote, map[string]ballot.Vote) {
	var all []ballot.Vote
	last := map[string]ballot.Vote{}
	stamp := time.Now().UnixNano()
	for i := from; i < from+n; i++ {
		id := voterID(i)
		for range 1 + rng.IntN(max) {
			stamp++
			v := ballot.Vote{VoterID: id, Option: ballot.Options[rng.IntN(2)], CastAt: stamp}
			all = append(all, v)
			last[id] = v
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return all, last
}

// checkDB asserts the votes table holds exactly want (voter -> last vote)
// and the incrementally kept tallies equal a recount of it.
func (e *env) checkDB(want map[string]ballot.Vote) {
	e.t.Helper()
	ctx := context.Background()
	c := testenv.Conn(e.t, e.dbURL)
	rows, err := c.Query(ctx, "SELECT id, vote, cast_at FROM votes")
	if err != nil {
		e.t.Fatal(err)
	}
	got := map[string]ballot.Vote{}
	var recount store.Tally
	for rows.Next() {
		var v ballot.Vote
		if err := rows.Scan(&v.VoterID, &v.Option, &v.CastAt); err != nil {
			e.t.Fatal(err)
		}
		got[v.VoterID] = v
		switch v.Option {
		case ballot.OptionA:
			recount.A++
		case ballot.OptionB:
			recount.B++
		}
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	if len(got) != len(want) {
		e.t.Errorf("votes table has %d rows, want %d (one per voter)", len(got), len(want))
	}
	bad := 0
	for id, w := range want {
		if g, ok := got[id]; !ok || g.Option != w.Option || g.CastAt != w.CastAt {
			if bad++; bad <= 5 {
				e.t.Errorf("voter %s: stored %+v, want last vote %+v", id, g, w)
			}
		}
	}
	if bad > 5 {
		e.t.Errorf("... %d voters wrong in all", bad)
	}
	tl, err := e.store.Tally(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if tl != recount {
		e.t.Errorf("tallies %+v, recount %+v", tl, recount)
	}
}

// logBuffer collects log lines for assertions; slog writes from several
// goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) has(s string) bool { return strings.Contains(l.String(), s) }
