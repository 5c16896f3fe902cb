package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/store"
)

// loadSummary is the part of `loadgen -json` the bench reads.
type loadSummary struct {
	Elapsed        float64          `json:"elapsed_s"`
	Sent           int64            `json:"sent"`
	Accepted       int64            `json:"accepted"`
	Failed         int64            `json:"failed"`
	FailedByStatus map[string]int64 `json:"failed_by_status"`
	Errors         map[string]int64 `json:"errors"`
	BehindSchedule int64            `json:"behind_schedule"`
	Throughput     float64          `json:"throughput_rps"`
	Latency        struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
	E2E *struct {
		Samples int     `json:"samples"`
		Missing int     `json:"missing"`
		P50     float64 `json:"p50_ms"`
		P90     float64 `json:"p90_ms"`
		P99     float64 `json:"p99_ms"`
		Max     float64 `json:"max_ms"`
	} `json:"e2e"`
	Error string `json:"error"`

	cpuCores float64 // loadgen's own CPU use, in cores
}

func (s *loadSummary) failures() string {
	if s.Failed == 0 {
		return "0 failed"
	}
	var parts []string
	for k, v := range s.FailedByStatus {
		parts = append(parts, fmt.Sprintf("HTTP %s: %d", k, v))
	}
	for k, v := range s.Errors {
		parts = append(parts, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d failed (%s)", s.Failed, strings.Join(parts, ", "))
}

func (b *bench) loadgen(ctx context.Context, args ...string) (*loadSummary, error) {
	args = append(args, "-json", "-progress", "0")
	r, err := runTool(ctx, os.Environ(), b.bins["loadgen"], args...)
	if err != nil {
		return nil, err
	}
	var s loadSummary
	if jerr := json.Unmarshal([]byte(r.stdout), &s); jerr != nil {
		return nil, fmt.Errorf("loadgen exited %d without a JSON summary: %s", r.exit, firstLines(r.stderr, 3))
	}
	if r.exit == 2 {
		return &s, fmt.Errorf("loadgen: %s", firstLines(s.Error+"\n"+r.stderr, 3))
	}
	if s.Elapsed > 0 {
		s.cpuCores = r.cpu.Seconds() / s.Elapsed
	}
	return &s, nil
}

// redisPID is the local Redis server's pid, for its CPU share.
func (b *bench) redisPID(ctx context.Context) int {
	if b.rdb == nil {
		return 0
	}
	info, err := b.rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ := strconv.Atoi(v)
			return pid
		}
	}
	return 0
}

// batchStats are a service's writes as its /metrics count them.
type batchStats struct {
	writes, votes int64
	seconds       float64
}

func (b batchStats) String() string {
	if b.writes == 0 {
		return "no batch metrics"
	}
	return fmt.Sprintf("mean batch %.1f votes over %s writes, mean write %.2f ms",
		float64(b.votes)/float64(b.writes), num(float64(b.writes)), 1000*b.seconds/float64(b.writes))
}

// scrapeBatches reads the batch histograms (ladder_batch_size_votes,
// ladder_batch_commit_seconds) from a service's /metrics, summed over labels.
func scrapeBatches(ctx context.Context, s *service) batchStats {
	var st batchStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url()+"/metrics", nil)
	if err != nil {
		return st
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st
	}
	for _, line := range strings.Split(string(body), "\n") {
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		if i := strings.LastIndexByte(line, ' '); i >= 0 {
			rest = line[i+1:]
		}
		v, err := strconv.ParseFloat(rest, 64)
		if err != nil {
			continue
		}
		switch name {
		case "ladder_batch_size_votes_count":
			st.writes += int64(v)
		case "ladder_batch_size_votes_sum":
			st.votes += int64(v)
		case "ladder_batch_commit_seconds_sum":
			st.seconds += v
		}
	}
	return st
}

// ---- step 1: vote, queue mode ----------------------------------------------

type queueRun struct {
	load    *loadSummary
	prefix  string
	queued  int64
	cpu     cpuUse
	batches batchStats
}

func (b *bench) stepQueueVote(ctx context.Context, run int) (*queueRun, error) {
	q := &queueRun{prefix: fmt.Sprintf("%sq%d:", b.prefix, run)}
	vote, err := b.start("vote", map[string]string{
		"VOTE_MODE": "queue", "REDIS_URL": b.o.redisURL, "REDIS_KEY_PREFIX": q.prefix,
	})
	if err != nil {
		return nil, err
	}
	defer vote.stop()
	if err := vote.waitReady(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	meter := newCPUMeter(map[string]int{"vote": vote.cmd.Process.Pid, "redis": b.redisPID(ctx)})
	q.load, err = b.loadgen(ctx, "-vote-url", vote.url()+"/", "-rate", "0",
		"-concurrency", strconv.Itoa(b.o.concurrency), "-duration", b.o.duration.String())
	if err != nil {
		return nil, err
	}
	q.cpu = meter.use(q.load.cpuCores)
	q.batches = scrapeBatches(ctx, vote)
	vote.stop()
	if q.queued, err = b.rdb.LLen(ctx, queue.NewKeys(q.prefix).Votes()).Result(); err != nil {
		return nil, fmt.Errorf("count queued votes: %w", err)
	}
	return q, nil
}

// ---- step 2: vote, direct mode -----------------------------------------------

type directRun struct {
	load      *loadSummary
	committed int64
	cpu       cpuUse
	batches   batchStats
}

func (b *bench) stepDirectVote(ctx context.Context, run int) (*directRun, error) {
	if err := b.need("vote"); err != nil {
		return nil, err
	}
	dbURL, err := b.freshDB(ctx, fmt.Sprintf("direct%d", run))
	if err != nil {
		return nil, err
	}
	defer b.dropDB(context.WithoutCancel(ctx), dbURL)
	vote, err := b.start("vote", map[string]string{
		"VOTE_MODE": "direct", "DATABASE_URL": dbURL, "DB_MIGRATE": "false",
		"BATCH_SIZE": strconv.Itoa(b.o.batchSize),
	})
	if err != nil {
		return nil, err
	}
	defer vote.stop()
	if err := vote.waitReady(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	d := &directRun{}
	meter := newCPUMeter(map[string]int{"vote": vote.cmd.Process.Pid})
	d.load, err = b.loadgen(ctx, "-vote-url", vote.url()+"/", "-rate", "0",
		"-concurrency", strconv.Itoa(b.o.concurrency), "-duration", b.o.duration.String())
	if err != nil {
		return nil, err
	}
	d.cpu = meter.use(d.load.cpuCores)
	d.batches = scrapeBatches(ctx, vote)
	vote.stop()
	d.committed, err = tallyTotal(ctx, dbURL)
	return d, err
}

func tallyTotal(ctx context.Context, dbURL string) (int64, error) {
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	var n int64
	if err := c.QueryRow(ctx, "SELECT COALESCE(sum(count), 0)::bigint FROM tallies").Scan(&n); err != nil {
		return 0, fmt.Errorf("read tallies: %w", err)
	}
	return n, nil
}

// ---- step 3: worker drain ----------------------------------------------------

type drainRun struct {
	drained      int64
	elapsed      time.Duration // process start to everything committed
	firstCommit  time.Duration // process start to the first committed batch
	votesPerSec  float64
	steadyPerSec float64 // from the first commit on: without process start-up
	cpu          cpuUse
	batches      batchStats
}

func (b *bench) stepDrain(ctx context.Context, run int, q *queueRun) (*drainRun, error) {
	if err := b.need("worker"); err != nil {
		return nil, err
	}
	if q == nil || q.queued == 0 {
		return nil, errors.New("step 1 queued no votes to drain")
	}
	dbURL, err := b.freshDB(ctx, fmt.Sprintf("drain%d", run))
	if err != nil {
		return nil, err
	}
	defer b.dropDB(context.WithoutCancel(ctx), dbURL)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect to drain database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	const workerID = "bench-drain"
	keys := queue.NewKeys(q.prefix)
	worker, err := b.start("worker", map[string]string{
		"REDIS_URL": b.o.redisURL, "REDIS_KEY_PREFIX": q.prefix, "DATABASE_URL": dbURL,
		"DB_MIGRATE": "false", "WORKER_ID": workerID, "BATCH_SIZE": strconv.Itoa(b.o.batchSize),
	})
	if err != nil {
		return nil, err
	}
	defer worker.stop()
	meter := newCPUMeter(map[string]int{"worker": worker.cmd.Process.Pid, "redis": b.redisPID(ctx)})
	d := &drainRun{drained: q.queued}
	timeout := 60*time.Second + time.Duration(q.queued/1000)*time.Second
	for {
		// Lists empty means acked, and the worker acks only after commit;
		// the tally check also catches a worker that drops votes.
		queued, inFlight, err := b.queueDepth(ctx, keys, workerID)
		if err != nil {
			return nil, err
		}
		var total int64
		if err := conn.QueryRow(ctx, "SELECT COALESCE(sum(count), 0)::bigint FROM tallies").Scan(&total); err != nil {
			return nil, fmt.Errorf("poll tallies: %w", err)
		}
		now := time.Since(worker.started)
		if total > 0 && d.firstCommit == 0 {
			d.firstCommit = now
		}
		if queued == 0 && inFlight == 0 && total >= q.queued {
			d.elapsed = now
			break
		}
		if worker.exited() {
			return nil, fmt.Errorf("worker exited during the drain (%v); log: %s", worker.waitErr, worker.logTail(5))
		}
		if now > timeout {
			return nil, fmt.Errorf("drain not done after %v: queue %d, processing %d, committed %d of %d; worker log: %s",
				timeout, queued, inFlight, total, q.queued, worker.logTail(3))
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	d.cpu = meter.use(0)
	d.batches = scrapeBatches(ctx, worker)
	d.votesPerSec = float64(d.drained) / d.elapsed.Seconds()
	if span := d.elapsed - d.firstCommit; span > 0 {
		d.steadyPerSec = float64(d.drained) / span.Seconds()
	}
	return d, nil
}

// queueDepth returns the length of the votes list and the total of the
// processing lists of every consumer registered in the workers set (a worker
// runs several lanes, each with its own list) and of workerID itself, which
// may not have registered yet.
func (b *bench) queueDepth(ctx context.Context, keys queue.Keys, workerID string) (queued, inFlight int64, err error) {
	pipe := b.rdb.Pipeline()
	lv := pipe.LLen(ctx, keys.Votes())
	members := pipe.SMembers(ctx, keys.Workers())
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("poll queue: %w", err)
	}
	ids := map[string]bool{workerID: true}
	for _, id := range members.Val() {
		ids[id] = true
	}
	pipe = b.rdb.Pipeline()
	var lens []*redis.IntCmd
	for id := range ids {
		lens = append(lens, pipe.LLen(ctx, keys.Processing(id)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("poll processing lists: %w", err)
	}
	for _, l := range lens {
		inFlight += l.Val()
	}
	return lv.Val(), inFlight, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ---- step 4: vote-to-result-page latency -------------------------------------

func (b *bench) stepE2E(ctx context.Context, run int) (*loadSummary, cpuUse, error) {
	if err := b.need("vote", "worker", "result"); err != nil {
		return nil, cpuUse{}, err
	}
	dbURL, err := b.freshDB(ctx, fmt.Sprintf("e2e%d", run))
	if err != nil {
		return nil, cpuUse{}, err
	}
	defer b.dropDB(context.WithoutCancel(ctx), dbURL)
	prefix := fmt.Sprintf("%se2e%d:", b.prefix, run)
	batch := strconv.Itoa(b.o.batchSize)
	worker, err := b.start("worker", map[string]string{
		"REDIS_URL": b.o.redisURL, "REDIS_KEY_PREFIX": prefix, "DATABASE_URL": dbURL,
		"DB_MIGRATE": "false", "WORKER_ID": "bench-e2e", "BATCH_SIZE": batch,
	})
	if err != nil {
		return nil, cpuUse{}, err
	}
	defer worker.stop()
	result, err := b.start("result", map[string]string{"DATABASE_URL": dbURL, "DB_MIGRATE": "false"})
	if err != nil {
		return nil, cpuUse{}, err
	}
	defer result.stop()
	vote, err := b.start("vote", map[string]string{
		"VOTE_MODE": "queue", "REDIS_URL": b.o.redisURL, "REDIS_KEY_PREFIX": prefix,
	})
	if err != nil {
		return nil, cpuUse{}, err
	}
	defer vote.stop()
	for _, s := range []*service{worker, result, vote} {
		if err := s.waitReady(ctx, 30*time.Second); err != nil {
			return nil, cpuUse{}, err
		}
	}
	meter := newCPUMeter(map[string]int{
		"vote": vote.cmd.Process.Pid, "worker": worker.cmd.Process.Pid,
		"result": result.cmd.Process.Pid, "redis": b.redisPID(ctx),
	})
	s, err := b.loadgen(ctx, "-e2e", "-rate", strconv.FormatFloat(b.o.e2eRate, 'f', -1, 64),
		"-concurrency", strconv.Itoa(b.o.concurrency), "-duration", b.o.duration.String(),
		"-vote-url", vote.url()+"/", "-result-url", result.url())
	if err != nil {
		return nil, cpuUse{}, err
	}
	if s.E2E == nil {
		return s, cpuUse{}, fmt.Errorf("loadgen -e2e gave no e2e figures: %s", s.Error)
	}
	return s, meter.use(s.cpuCores), nil
}

// ---- step 5: tally query at a million voters ----------------------------------

type tallyRun struct {
	voters           int
	load             time.Duration
	oursMedian       time.Duration
	oursP99          time.Duration
	originalMedian   time.Duration
	originalSamples  []time.Duration
	tallyA, tallyB   int64
	originalA, origB int64
}

const originalTallySQL = `SELECT vote, COUNT(id) AS count FROM votes GROUP BY vote`

func (b *bench) stepTally(ctx context.Context) (*tallyRun, error) {
	dbURL, err := b.freshDB(ctx, "tally")
	if err != nil {
		return nil, err
	}
	defer b.dropDB(context.WithoutCancel(ctx), dbURL)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect to tally database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t := &tallyRun{voters: b.o.tallyVoters}
	start := time.Now()
	// Loaded in bulk, then the tallies recomputed to match, which is what
	// the app's own path would leave behind, minus hours of upserts.
	for _, q := range []string{
		`INSERT INTO votes (id, vote, cast_at)
		 SELECT lpad(to_hex(g), 16, '0'), CASE WHEN random() < 0.5 THEN 'a' ELSE 'b' END, 1
		 FROM generate_series(1, ` + strconv.Itoa(b.o.tallyVoters) + `) g`,
		`UPDATE tallies t SET count = (SELECT count(*) FROM votes v WHERE v.vote = t.option)`,
		// A live table would have been vacuumed and analysed by autovacuum.
		`VACUUM ANALYZE votes`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("load %d voters: %w", b.o.tallyVoters, err)
		}
	}
	t.load = time.Since(start)

	st, err := store.OpenPostgres(ctx, store.Options{URL: dbURL, AppName: "ladder-bench", MaxConn: 2})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var ours []time.Duration
	for i := -10; i < b.o.tallyCalls; i++ { // 10 warm-up calls open the pool
		s := time.Now()
		tl, err := st.Tally(ctx)
		if err != nil {
			return nil, err
		}
		if i >= 0 {
			ours = append(ours, time.Since(s))
		}
		t.tallyA, t.tallyB = tl.A, tl.B
	}
	t.oursMedian, t.oursP99 = durPercentile(ours, 50), durPercentile(ours, 99)
	for i := -1; i < 5; i++ { // one warm-up run fills the page cache
		s := time.Now()
		rows, err := conn.Query(ctx, originalTallySQL)
		if err != nil {
			return nil, fmt.Errorf("original tally query: %w", err)
		}
		var opt string
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&opt, &n}, func() error {
			if opt == "a" {
				t.originalA = n
			} else {
				t.origB = n
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("original tally query: %w", err)
		}
		if i >= 0 {
			t.originalSamples = append(t.originalSamples, time.Since(s))
		}
	}
	t.originalMedian = durPercentile(t.originalSamples, 50)
	if t.tallyA != t.originalA || t.tallyB != t.origB {
		return t, fmt.Errorf("tallies disagree with the votes table: store a=%d b=%d, GROUP BY a=%d b=%d",
			t.tallyA, t.tallyB, t.originalA, t.origB)
	}
	return t, nil
}
