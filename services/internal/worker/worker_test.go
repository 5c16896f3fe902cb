package worker_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/metrics"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/worker"
	"github.com/ladder-cdk/ladder/services/schema"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestDrainsAndLastVoteWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	votes, last := ballots(0, 1000, 3, rand.New(rand.NewPCG(1, 2)))
	e.push(votes...)
	r := start(t, e.newWorker("w1", func(o *worker.Options) { o.BatchSize = 37 }))
	e.waitEmpty(20 * time.Second)

	// A later vote queued and committed first, its older vote arriving in a
	// later batch: stamp order wins, not arrival order.
	late := voterID(5000)
	newer := ballot.Vote{VoterID: late, Option: ballot.OptionB, CastAt: time.Now().UnixNano()}
	e.push(newer)
	e.waitEmpty(5 * time.Second)
	e.push(ballot.Vote{VoterID: late, Option: ballot.OptionA, CastAt: newer.CastAt - 1})
	e.waitEmpty(5 * time.Second)
	last[late] = newer

	if err := r.stop(t, 5*time.Second); err != nil {
		t.Fatalf("Run = %v", err)
	}
	e.checkDB(last)
	if s := r.w.Stats(); s.Drained != int64(len(votes)+2) || s.Poison != 0 {
		t.Errorf("stats %+v, want %d drained, no poison", s, len(votes)+2)
	}
	// A clean stop removes the heartbeat so nobody waits for it to expire.
	if n, _ := e.rdb.Exists(context.Background(), e.keys.Heartbeat("w1"), e.keys.Heartbeat(worker.LaneID("w1", 1))).Result(); n != 0 {
		t.Error("heartbeat still present after a clean stop")
	}
}

func TestTwoWorkersExactlyOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	votes, last := ballots(0, 4000, 3, rand.New(rand.NewPCG(3, 4)))
	small := func(o *worker.Options) { o.BatchSize = 64 }
	w1 := start(t, e.newWorker("w1", small))
	w2 := start(t, e.newWorker("w2", small))
	// Push while both are fetching, so their batches interleave and one
	// voter's votes land in both workers' batches.
	for i := 0; i < len(votes); i += 100 {
		e.push(votes[i:min(i+100, len(votes))]...)
	}
	e.waitEmpty(30 * time.Second)
	for _, r := range []*running{w1, w2} {
		if err := r.stop(t, 5*time.Second); err != nil {
			t.Fatalf("Run = %v", err)
		}
	}
	e.checkDB(last)
	s1, s2 := w1.w.Stats(), w2.w.Stats()
	t.Logf("w1 %+v, w2 %+v", s1, s2)
	// Without failures nothing is delivered twice.
	if got := s1.Drained + s2.Drained; got != int64(len(votes)) {
		t.Errorf("drained %d in all, want %d", got, len(votes))
	}
}

func TestRestartFinishesOwnBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	votes, last := ballots(0, 30, 1, rand.New(rand.NewPCG(5, 6)))
	e.push(votes...)
	// A previous process with id w1 fetched 10 votes in each lane and
	// died before committing them; its heartbeats are still alive, so no
	// peer may take them, but the new process with the same id must.
	for lane := range worker.DefaultLanes {
		prev := e.consumer(worker.LaneID("w1", lane), time.Minute)
		if err := prev.Heartbeat(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, err := prev.Fetch(context.Background(), 10, time.Second); err != nil || len(got) != 10 {
			t.Fatalf("Fetch = %d, %v", len(got), err)
		}
	}
	w := start(t, e.newWorker("w1", func(o *worker.Options) { o.BatchSize = 10 }))
	e.waitEmpty(10 * time.Second)
	if err := w.stop(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	e.checkDB(last)
	// The inherited batches are committed on their own before anything new
	// is fetched: a fetch on top would make a batch over BATCH_SIZE. Rows
	// written by one transaction share xmin (each voter votes once here, so
	// no row was rewritten); updated_at would not do, as two lanes' commits
	// can start in the same microsecond.
	var largest int
	err := testenv.Conn(t, e.dbURL).QueryRow(context.Background(),
		"SELECT max(n) FROM (SELECT count(*) AS n FROM votes GROUP BY xmin::text) b").Scan(&largest)
	if err != nil || largest > 10 {
		t.Errorf("largest batch %d (%v), want at most BATCH_SIZE 10", largest, err)
	}
}

func TestReclaimsDeadWorkersBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	votes, last := ballots(0, 20, 1, rand.New(rand.NewPCG(7, 8)))
	e.push(votes...)
	// "dead" fetched everything and was killed: no ack, no more heartbeats.
	dead := e.consumer("dead", 300*time.Millisecond)
	if err := dead.Heartbeat(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := dead.Fetch(context.Background(), 100, time.Second); err != nil || len(got) != 20 {
		t.Fatalf("Fetch = %d, %v", len(got), err)
	}
	w := start(t, e.newWorker("live", func(o *worker.Options) {
		o.HeartbeatTTL = 400 * time.Millisecond
	}))
	e.waitEmpty(10 * time.Second)
	if err := w.stop(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	e.checkDB(last)
	if s := w.w.Stats(); s.Requeued != 20 || s.Drained != 20 {
		t.Errorf("stats %+v, want 20 requeued and drained", s)
	}
}

func TestShutdownTimeoutLeavesNothingLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	votes, last := ballots(0, 30, 1, rand.New(rand.NewPCG(9, 10)))
	e.push(votes...)
	// The commits block on a table lock (PostgreSQL hung) and the stop's
	// deadline passes: the worker gives up its batches, it does not ack them.
	unlock := lockVotes(t, e.dbURL)
	w := start(t, e.newWorker("w1", func(o *worker.Options) { o.BatchSize = 10; o.ShutdownTimeout = 300 * time.Millisecond }))
	waitFor(t, 5*time.Second, "a batch in hand in each lane", func() bool {
		n, _ := e.rdb.LLen(context.Background(), e.keys.Processing("w1")).Result()
		m, _ := e.rdb.LLen(context.Background(), e.keys.Processing(worker.LaneID("w1", 1))).Result()
		return n == 10 && m == 10
	})
	if err := w.stop(t, 5*time.Second); !errors.Is(err, worker.ErrShutdownIncomplete) {
		t.Fatalf("Run = %v, want ErrShutdownIncomplete", err)
	}
	// All 30 are back in the queue (the batches at its head).
	if n, _ := e.rdb.LLen(context.Background(), e.keys.Votes()).Result(); n != 30 {
		t.Fatalf("queue holds %d votes, want 30", n)
	}
	// The cancelled statement may still commit once the lock is gone (a
	// commit whose ack was lost); the redelivery below then changes nothing.
	unlock()
	w2 := start(t, e.newWorker("w2", nil))
	e.waitEmpty(10 * time.Second)
	if err := w2.stop(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	e.checkDB(last)
}

func TestGracefulShutdownFinishesBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	votes, _ := ballots(0, 25, 1, rand.New(rand.NewPCG(11, 12)))
	e.push(votes...)
	unlock := lockVotes(t, e.dbURL)
	w := start(t, e.newWorker("w1", func(o *worker.Options) { o.BatchSize = 10; o.Lanes = 1 }))
	waitFor(t, 5*time.Second, "a batch in hand", func() bool {
		n, _ := e.rdb.LLen(context.Background(), e.keys.Processing("w1")).Result()
		return n == 10
	})
	w.cancel() // SIGTERM while the commit is blocked
	select {
	case err := <-w.done:
		t.Fatalf("Run returned %v before its batch was committed", err)
	case <-time.After(300 * time.Millisecond):
	}
	unlock()
	if err := w.stop(t, 5*time.Second); err != nil {
		t.Fatalf("Run = %v", err)
	}
	want := map[string]ballot.Vote{}
	for _, v := range votes[:10] {
		want[v.VoterID] = v
	}
	e.checkDB(want) // the batch in hand, and nothing fetched after the stop
	ctx := context.Background()
	if n, _ := e.rdb.LLen(ctx, e.keys.Votes()).Result(); n != 15 {
		t.Errorf("queue holds %d, want the 15 never fetched", n)
	}
	if n, _ := e.rdb.Exists(ctx, e.keys.Processing("w1"), e.keys.Heartbeat("w1")).Result(); n != 0 {
		t.Error("processing list or heartbeat left after a clean stop")
	}
}

func TestPostgresLostNothingAcked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	w := start(t, e.newWorker("w1", nil))
	first, _ := ballots(0, 50, 1, rand.New(rand.NewPCG(13, 14)))
	e.push(first...)
	e.waitEmpty(10 * time.Second)

	// The database disappears (connections terminated, data gone), then
	// comes back empty: as after a failover to a fresh instance.
	admin := testenv.Conn(t, os.Getenv("LADDER_TEST_DATABASE_URL"))
	name := testenv.DatabaseName(t, e.dbURL)
	if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	votes, last := ballots(100, 200, 2, rand.New(rand.NewPCG(15, 16)))
	e.push(votes...)
	waitFor(t, 10*time.Second, `"waiting for postgres" in the log`, func() bool { return e.logs.has("waiting for postgres") })
	time.Sleep(300 * time.Millisecond) // room for a wrong ack
	if n := e.inQueue(); n != int64(len(votes)) {
		t.Fatalf("%d of %d votes left in Redis while the database is gone", n, len(votes))
	}
	if s := w.w.Stats(); s.Drained != 50 {
		t.Fatalf("drained %d, want only the 50 committed before the outage", s.Drained)
	}

	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	if err := schema.Apply(ctx, testenv.Conn(t, e.dbURL)); err != nil {
		t.Fatal(err)
	}
	e.waitEmpty(20 * time.Second)
	if err := w.stop(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	e.checkDB(last)
}

func TestPoisonDroppedAndCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret := voterID(0xdead)
	good := []ballot.Vote{
		{VoterID: voterID(1), Option: ballot.OptionA, CastAt: 10},
		{VoterID: voterID(2), Option: ballot.OptionB, CastAt: 11},
		{VoterID: voterID(3), Option: ballot.OptionA, CastAt: 12},
	}
	e.push(good[0])
	e.pushRaw("not json",
		`{"voter_id":"`+secret+`","vote":"c","ts":5,"v":1}`, // bad option
		`{"voter_id":"XYZ","vote":"a","ts":5,"v":1}`)        // bad voter id
	e.push(good[1])
	e.pushRaw(`{"voter_id":"` + secret + `","vote":"a","ts":0,"v":1}`) // bad stamp
	e.push(good[2])
	before := counter(t, metrics.Poison.Write)
	w := start(t, e.newWorker("w1", nil))
	e.waitEmpty(10 * time.Second)
	if err := w.stop(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	want := map[string]ballot.Vote{}
	for _, v := range good {
		want[v.VoterID] = v
	}
	e.checkDB(want)
	if s := w.w.Stats(); s.Poison != 4 || s.Drained != 3 {
		t.Errorf("stats %+v, want 4 poison and 3 drained", s)
	}
	if d := counter(t, metrics.Poison.Write) - before; d < 4 {
		t.Errorf("%s rose by %v, want at least 4", "ladder_worker_invalid_payloads_total", d)
	}
	logs := e.logs.String()
	if strings.Count(logs, "dropping invalid queue payload") != 4 {
		t.Errorf("want 4 log lines about dropped payloads:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Error("a voter id from a payload was logged")
	}
}

func TestRedisConnectionsKilled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	name := "ladder-worker-test-" + testenv.Token()
	rdb, err := queue.NewClient(e.redisURL, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	w := start(t, e.newWorker("w1", func(o *worker.Options) {
		o.Redis = rdb
		o.BatchSize = 20
	}))
	votes, last := ballots(0, 3000, 2, rand.New(rand.NewPCG(17, 18)))
	killed := 0
	for i := 0; i < len(votes); i += 200 {
		e.push(votes[i:min(i+200, len(votes))]...)
		killed += killClients(t, e, name)
		time.Sleep(10 * time.Millisecond)
	}
	e.waitEmpty(30 * time.Second)
	if err := w.stop(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no worker connection was killed; the test proved nothing")
	}
	t.Logf("killed %d redis connections", killed)
	e.checkDB(last)
}

func TestWaitsForUnreachableRedis(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rdb, err := queue.NewClient("redis://"+addr+"/0", "ladder-worker-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	w := start(t, e.newWorker("w1", func(o *worker.Options) {
		o.Redis = rdb
	}))
	waitFor(t, 10*time.Second, `"waiting for redis" in the log`, func() bool { return e.logs.has("waiting for redis") })
	if err := w.stop(t, 5*time.Second); err != nil {
		t.Fatalf("Run = %v, want a clean stop", err)
	}
}

// lockVotes holds an exclusive lock on the votes table, so every write
// blocks as on a hung database, until the returned func is called.
func lockVotes(t *testing.T, dbURL string) (unlock func()) {
	t.Helper()
	ctx := context.Background()
	c := testenv.Conn(t, dbURL)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE votes IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return func() { _ = tx.Rollback(ctx) }
}

// killClients kills the Redis connections named name and returns how many.
func killClients(t *testing.T, e *env, name string) int {
	t.Helper()
	ctx := context.Background()
	list, err := e.rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		var id string
		match := false
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch {
			case k == "id":
				id = v
			case k == "name" && v == name:
				match = true
			}
		}
		if match && id != "" {
			if err := e.rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
				n++
			}
		}
	}
	return n
}

func counter(t *testing.T, write func(*dto.Metric) error) float64 {
	t.Helper()
	var m dto.Metric
	if err := write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
