package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/metrics"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/internal/worker"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopDynalite()
	os.Exit(code)
}

// Regions of the gate tests: the worker runs in "mine".
const (
	mine  = "eu-west-1"
	other = "us-east-1"
)

// gateTTL is short so standby and resume take milliseconds.
const gateTTL = 50 * time.Millisecond

// dynEnv is a Redis queue draining into a fresh dynalite table.
type dynEnv struct {
	t     *testing.T
	rdb   *redis.Client
	keys  queue.Keys
	table string
	store *store.DynamoDB
	logs  *logBuffer
	log   *slog.Logger
}

func newDynEnv(t *testing.T) *dynEnv {
	t.Helper()
	redisURL, prefix := testenv.Redis(t)
	endpoint, table := testenv.DynamoDB(t)
	e := &dynEnv{t: t, rdb: testenv.RedisClient(t, redisURL), keys: queue.NewKeys(prefix), table: table, logs: &logBuffer{}}
	e.log = slog.New(slog.NewJSONHandler(io.MultiWriter(e.logs, t.Output()), nil))
	e.store = openDynamo(t, endpoint, table)
	return e
}

func openDynamo(t *testing.T, endpoint, table string) *store.DynamoDB {
	t.Helper()
	s, err := store.OpenDynamoDB(context.Background(), store.DynamoOptions{Table: table, Region: testenv.DynamoRegion,
		Endpoint: endpoint, AccessKey: testenv.DynamoAccessKey, SecretKey: testenv.DynamoSecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts a worker in region mine whose default writer region is deflt,
// reading the flag from flag and writing to st.
func (e *dynEnv) run(id, deflt string, flag worker.WriterFlag, st worker.Store) *running {
	return e.runLanes(id, deflt, flag, st, 0)
}

// runLanes is run with that many lanes (0: the default).
func (e *dynEnv) runLanes(id, deflt string, flag worker.WriterFlag, st worker.Store, lanes int) *running {
	return start(e.t, worker.New(worker.Options{
		Redis: e.rdb, Keys: e.keys, ID: id, Store: st, StoreName: "dynamodb", BatchSize: 10, Lanes: lanes,
		HeartbeatTTL: time.Second, ShutdownTimeout: 5 * time.Second, Log: e.log,
		Gate: worker.NewGate(flag, mine, deflt, gateTTL, e.log),
	}))
}

func (e *dynEnv) push(votes ...ballot.Vote) {
	e.t.Helper()
	p := queue.NewProducer(e.rdb, e.keys)
	for _, v := range votes {
		b, err := ballot.Encode(v, "test")
		if err != nil {
			e.t.Fatal(err)
		}
		if err := p.Push(context.Background(), b); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *dynEnv) queued() int64 {
	e.t.Helper()
	n, err := e.rdb.LLen(context.Background(), e.keys.Votes()).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *dynEnv) tally() store.Tally {
	e.t.Helper()
	tl, err := e.store.Tally(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return tl
}

func (e *dynEnv) setWriter(region string) {
	e.t.Helper()
	if err := e.store.SetWriterRegion(context.Background(), region); err != nil {
		e.t.Fatal(err)
	}
}

// standsBy asserts that over several gate periods and a whole fetch wait
// the queue keeps n votes and the tallies stay want.
func (e *dynEnv) standsBy(n int64, want store.Tally) {
	e.t.Helper()
	waitFor(e.t, 10*time.Second, "the standby log line", func() bool { return e.logs.has(`"msg":"standby: `) })
	time.Sleep(10*gateTTL + 1200*time.Millisecond)
	if q := e.queued(); q != n {
		e.t.Fatalf("queue holds %d votes in standby, want %d (untouched)", q, n)
	}
	if tl := e.tally(); tl != want {
		e.t.Fatalf("tallies %+v in standby, want %+v", tl, want)
	}
}

func votesOf(from, n int, opt string) []ballot.Vote {
	vs := make([]ballot.Vote, n)
	for i := range vs {
		vs[i] = ballot.Vote{VoterID: voterID(from + i), Option: opt, CastAt: int64(from + i + 1)}
	}
	return vs
}

// The flag names another region: the worker leaves the votes in its
// queue. Naming its own region resumes it; naming another again stops it.
func TestGateStandbyUntilFlagNamesRegion(t *testing.T) {
	t.Parallel()
	e := newDynEnv(t)
	e.setWriter(other)
	e.push(votesOf(0, 25, "a")...)
	// The default would let it write: the flag wins over the default.
	e.run("w1", mine, e.store, e.store)
	e.standsBy(25, store.Tally{})
	if !e.logs.has("standby: writer region is " + other) {
		t.Fatalf("no standby line naming %s in the log", other)
	}

	e.setWriter(mine)
	waitFor(t, 10*time.Second, "the votes to be applied", func() bool { return e.queued() == 0 && e.tally() == store.Tally{A: 25} })
	if !e.logs.has("writing: writer region is " + mine) {
		t.Fatal("no line saying the worker writes again")
	}

	e.setWriter(other)
	// The window: a cached answer (TTL) may still write.
	time.Sleep(3 * gateTTL)
	e.push(votesOf(100, 5, "b")...)
	e.standsBy(5, store.Tally{A: 25})
}

// Without a control item the default region decides.
func TestGateDefaultRegion(t *testing.T) {
	t.Parallel()
	t.Run("mine", func(t *testing.T) {
		t.Parallel()
		e := newDynEnv(t)
		e.push(votesOf(0, 15, "b")...)
		e.run("w1", mine, e.store, e.store)
		waitFor(t, 10*time.Second, "the votes to be applied", func() bool { return e.queued() == 0 && e.tally() == store.Tally{B: 15} })
	})
	t.Run("other", func(t *testing.T) {
		t.Parallel()
		e := newDynEnv(t)
		e.push(votesOf(0, 15, "b")...)
		e.run("w1", other, e.store, e.store)
		e.standsBy(15, store.Tally{})
	})
}

// A worker that has never read the flag does not write: an unreachable
// table keeps the gate closed.
func TestGateReadErrorKeepsGateClosed(t *testing.T) {
	t.Parallel()
	e := newDynEnv(t)
	down := openDynamo(t, "http://127.0.0.1:1", e.table)
	e.push(votesOf(0, 12, "a")...)
	// The flag is unreadable; the votes would go to the working table.
	e.run("w1", mine, down, e.store)
	e.standsBy(12, store.Tally{})
	if !e.logs.has("waiting for dynamodb (writer region)") || !e.logs.has("writer region not known yet") {
		t.Fatal("the failed reads were not logged")
	}
}

// A failed read keeps the last answer, open or closed.
func TestGateKeepsLastAnswerOnError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		flag string
		want bool
	}{{mine, true}, {other, false}} {
		e := newDynEnv(t)
		e.setWriter(tc.flag)
		g := worker.NewGate(e.store, mine, mine, time.Millisecond, e.log)
		if got := g.Allowed(ctx); got != tc.want {
			t.Fatalf("flag %s: allowed %v, want %v", tc.flag, got, tc.want)
		}
		// The table disappears: reads fail from now on.
		if _, err := testenv.DynamoClient(testenv.DynamoEndpoint(t)).DeleteTable(ctx,
			&dynamodb.DeleteTableInput{TableName: aws.String(e.table)}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "a failed read", func() bool {
			if got := g.Allowed(ctx); got != tc.want {
				t.Fatalf("flag %s, table gone: allowed %v, want %v (the last answer)", tc.flag, got, tc.want)
			}
			return e.logs.has("waiting for dynamodb (writer region)")
		})
	}
}

// flipOnce is the real store, except that its first write flips the flag
// to another region and then fails, as a write that fails across a
// failover.
type flipOnce struct {
	*store.DynamoDB
	calls atomic.Int32
}

func (f *flipOnce) ApplyVotes(ctx context.Context, votes []ballot.Vote) error {
	if f.calls.Add(1) == 1 {
		if err := f.SetWriterRegion(ctx, other); err != nil {
			return err
		}
		return errors.New("injected failure")
	}
	return f.DynamoDB.ApplyVotes(ctx, votes)
}

// A write that failed is retried only while the region is still the
// writer: here the flag moved meanwhile, so the batch goes back to the
// queue unwritten.
func TestGateStopsRetryAfterFlip(t *testing.T) {
	t.Parallel()
	e := newDynEnv(t)
	e.setWriter(mine)
	e.push(votesOf(0, 8, "a")...)
	f := &flipOnce{DynamoDB: e.store}
	// One lane: with two, the other lane may hold a batch fetched under
	// the still-cached "writer" answer and write it, inside the window
	// the Gate documents (TTL), which is not what this test is about.
	e.runLanes("w1", other, e.store, f, 1)
	e.standsBy(8, store.Tally{})
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d writes attempted, want 1 (no retry after the flip)", n)
	}
	if !e.logs.has("standby: returned votes to the queue") {
		t.Fatal("the batch in hand was not returned to the queue")
	}
}

// Votes an earlier process left in this worker's processing list go back
// to the queue in standby, not to the store.
func TestGateStandbyReturnsPendingBatch(t *testing.T) {
	t.Parallel()
	e := newDynEnv(t)
	ctx := context.Background()
	for _, v := range votesOf(0, 6, "b") {
		b, err := ballot.Encode(v, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.RPush(ctx, e.keys.Processing("w1"), b).Err(); err != nil {
			t.Fatal(err)
		}
	}
	e.run("w1", other, e.store, e.store)
	e.standsBy(6, store.Tally{})
	if n, err := e.rdb.LLen(ctx, e.keys.Processing("w1")).Result(); err != nil || n != 0 {
		t.Fatalf("processing list holds %d (%v), want 0", n, err)
	}
}

// "standby" means stopped writing: while a write the gate let in is still
// running, a closed gate reports "stopping" and keeps the gauge at 0; the
// standby line and gauge come only once that write has ended.
func TestGateStandbyOnlyWhenNoWriteRunning(t *testing.T) {
	e := newDynEnv(t)
	e.setWriter(mine)
	g := worker.NewGate(e.store, mine, mine, gateTTL, e.log)
	ctx := context.Background()
	if !g.BeginWrite(ctx) {
		t.Fatal("gate closed although the flag names this region")
	}
	e.setWriter("us-west-2")
	waitFor(t, 10*time.Second, "the gate to close", func() bool { return !g.Allowed(ctx) })
	if !e.logs.has(`"msg":"stopping: writer region is us-west-2; 1 write(s) in progress finish first"`) {
		t.Fatalf("no stopping line while a write runs:\n%s", e.logs.String())
	}
	if e.logs.has(`"msg":"standby: `) || standbyGauge(t) != 0 {
		t.Fatalf("standby reported (gauge %v) while a write still runs", standbyGauge(t))
	}
	g.EndWrite()
	if !e.logs.has(`"msg":"standby: writer region is us-west-2`) || standbyGauge(t) != 1 {
		t.Fatalf("no standby after the last write ended (gauge %v):\n%s", standbyGauge(t), e.logs.String())
	}
	if g.BeginWrite(ctx) {
		t.Fatal("a closed gate let a write in")
	}
}

func standbyGauge(t *testing.T) float64 {
	t.Helper()
	var m dto.Metric
	if err := metrics.WorkerStandby.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
