package chaos_test

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/worker"
	"github.com/ladder-cdk/ladder/services/testenv"
)

const (
	defaultVoters = 20000
	revoteShare   = 0.2
	producers     = 4
	// pushFor spreads the votes over this long so the chaos lands while
	// votes are flowing, whatever N is (a larger N pushes faster).
	pushFor = 5 * time.Second
	// chaosEvery is the pause between two chaos actions.
	chaosEvery = 400 * time.Millisecond
)

// TestChaos casts N votes from N voters (some voting twice) while it
// SIGKILLs the worker and cuts Redis and PostgreSQL connections mid-run:
// afterwards exactly N rows with the right last votes, and tallies equal
// to a recount.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: builds the worker and runs it for several seconds; skipped under -short")
	}
	// Not migrated: the workers run with DB_MIGRATE=true, together.
	dbURL := testenv.Database(t)
	dbName := testenv.DatabaseName(t, dbURL)
	admin := testenv.Conn(t, os.Getenv("LADDER_TEST_DATABASE_URL"))
	var c *cluster
	runChaos(t, chaosStore{
		env:   []string{"DATABASE_URL=" + dbURL, "DB_MIGRATE=true"},
		cut:   func() { c.terminateBackends(admin, dbName) },
		check: func(last map[string]ballot.Vote) { checkVotes(t, dbURL, last) },
	}, defaultVoters, &c)
}

// chaosStore is what differs between the stores under the chaos test: the
// workers' settings, how to cut their connections to the store, and the
// final check against a recount.
type chaosStore struct {
	env   []string
	cut   func()
	check func(last map[string]ballot.Vote)
}

func chaosVoters(t *testing.T, def int) int {
	n := def
	if s := os.Getenv("LADDER_CHAOS_VOTES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("LADDER_CHAOS_VOTES=%q: want a positive number of voters", s)
		}
		n = v
	}
	return n
}

func runChaos(t *testing.T, st chaosStore, defVoters int, cp **cluster) {
	n := chaosVoters(t, defVoters)
	redisURL, prefix := testenv.Redis(t)
	rdb := testenv.RedisClient(t, redisURL)
	keys := queue.NewKeys(prefix)

	c := &cluster{t: t, bin: buildWorker(t), dir: t.TempDir(), token: testenv.Token(), env: append([]string{
		"REDIS_URL=" + redisURL, "REDIS_KEY_PREFIX=" + prefix,
		"WORKER_HEARTBEAT_TTL=1s", "PORT=0", "BATCH_SIZE=50",
		"SHUTDOWN_TIMEOUT=5s", "LOG_LEVEL=info",
	}, st.env...)}
	*cp = c
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
	})
	t.Cleanup(c.killAll) // runs first: no worker outlives the test
	slots := []*proc{c.start(c.newID()), c.start(c.newID())}

	seed := uint64(time.Now().UnixNano())
	plan := newPlan(n, rand.New(rand.NewPCG(seed, 7)))
	t.Logf("%d voters cast %d votes through 2 workers (seed %d)", n, plan.votes(), seed)

	ctx, stopChaos := context.WithCancel(context.Background())
	defer stopChaos()
	var pushed sync.WaitGroup
	start := time.Now()
	for g := range producers {
		pushed.Go(func() { plan.cast(t, queue.NewProducer(rdb, keys), g, start) })
	}
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		c.chaos(ctx, slots, rdb, keys, st.cut)
	}()
	pushed.Wait()
	t.Logf("all votes queued after %s", time.Since(start).Round(time.Millisecond))
	stopChaos()
	<-chaosDone
	if t.Failed() {
		return
	}

	// Every vote is committed once it left Redis: commit comes before ack.
	waitDrained(t, rdb, keys, 60*time.Second)
	t.Logf("drained %s after the start", time.Since(start).Round(time.Millisecond))
	for _, p := range c.live() {
		p.terminate(t, 15*time.Second)
	}
	c.report()
	if left, _ := rdb.Keys(context.Background(), keys.Heartbeat("*")).Result(); len(left) > 0 {
		t.Errorf("heartbeats left after every worker stopped cleanly: %v", left)
	}
	st.check(plan.last)
}

// plan is the votes to cast: one stream per producer, each voter's votes
// in one stream, so the stamps order them the way the voter cast them.
type plan struct {
	streams [producers][]event
	mu      sync.Mutex
	last    map[string]ballot.Vote // voter -> the vote with the highest stamp
}

type event struct {
	voter  string
	option string
}

// newPlan gives n voters one vote each and ~20% of them a second one, cast
// a little later by the same producer, usually for the other option, so a
// voter's two votes tend to land in different batches and workers.
func newPlan(n int, rng *rand.Rand) *plan {
	p := &plan{last: make(map[string]ballot.Vote, n)}
	type placed struct {
		at float64
		e  event
	}
	var byProducer [producers][]placed
	for i := range n {
		// Distinct ids, spread over the whole key space like random ones.
		e := event{voter: fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15), option: ballot.Options[rng.IntN(2)]}
		g, at := i%producers, float64(i/producers)
		byProducer[g] = append(byProducer[g], placed{at, e})
		if rng.Float64() < revoteShare {
			again := e
			if rng.Float64() < 0.8 {
				again.option = other(e.option)
			}
			byProducer[g] = append(byProducer[g], placed{at + 0.5 + float64(rng.IntN(300)), again})
		}
	}
	for g, ps := range byProducer {
		slices.SortStableFunc(ps, func(a, b placed) int { return cmp.Compare(a.at, b.at) })
		for _, x := range ps {
			p.streams[g] = append(p.streams[g], x.e)
		}
	}
	return p
}

func (p *plan) votes() int {
	n := 0
	for _, s := range p.streams {
		n += len(s)
	}
	return n
}

func other(o string) string {
	if o == ballot.OptionA {
		return ballot.OptionB
	}
	return ballot.OptionA
}

// cast pushes producer g's stream in small multi-vote pushes spread over
// pushFor, encoded as the vote service does, with stamps taken at push
// time and strictly increasing, so a revote outranks its voter's first vote.
func (p *plan) cast(t *testing.T, prod *queue.Producer, g int, start time.Time) {
	const chunk = 50
	stream := p.streams[g]
	chunks := (len(stream) + chunk - 1) / chunk
	last := map[string]ballot.Vote{}
	var stamp int64
	for k := range chunks {
		if d := time.Until(start.Add(pushFor * time.Duration(k) / time.Duration(chunks))); d > 0 {
			time.Sleep(d)
		}
		evs := stream[k*chunk : min((k+1)*chunk, len(stream))]
		payloads := make([][]byte, 0, len(evs))
		cast := make([]ballot.Vote, 0, len(evs))
		for _, e := range evs {
			stamp = max(time.Now().UnixNano(), stamp+1)
			v := ballot.Vote{VoterID: e.voter, Option: e.option, CastAt: stamp}
			b, err := ballot.Encode(v, fmt.Sprintf("chaos-producer-%d", g))
			if err != nil {
				t.Error(err)
				return
			}
			payloads = append(payloads, b)
			cast = append(cast, v)
		}
		if err := prod.PushMany(context.Background(), payloads); err != nil {
			t.Errorf("producer %d: %v", g, err)
			return
		}
		for _, v := range cast {
			last[v.VoterID] = v
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, v := range last {
		p.last[id] = v
	}
}

// chaos cycles through its actions every chaosEvery until ctx ends and at
// least one full cycle ran: SIGKILL a worker and restart it with the same
// id (it must finish its own processing lists), kill the workers' Redis
// connections, cut their store connections (when the store has a way),
// SIGKILL a worker and replace it with a new id (a peer must reclaim the
// dead one's lists).
func (c *cluster) chaos(ctx context.Context, slots []*proc, rdb *redis.Client, keys queue.Keys, cut func()) {
	actions := []func(){
		func() { slots[0] = c.kill(slots[0], rdb, keys, true) },
		func() { c.killRedisClients(rdb) },
		cut,
		func() { slots[1] = c.kill(slots[1], rdb, keys, false) },
	}
	for i := 0; ctx.Err() == nil || i < len(actions); i++ {
		time.Sleep(chaosEvery)
		actions[i%len(actions)]()
	}
}

// kill SIGKILLs p, preferably while it holds votes it fetched but has not
// acknowledged, and starts its replacement under the same or a new id.
func (c *cluster) kill(p *proc, rdb *redis.Client, keys queue.Keys, sameID bool) *proc {
	ctx := context.Background()
	inHand := func() int64 {
		var n int64
		for lane := range worker.DefaultLanes {
			m, _ := rdb.LLen(ctx, keys.Processing(worker.LaneID(p.id, lane))).Result()
			n += m
		}
		return n
	}
	for deadline := time.Now().Add(500 * time.Millisecond); inHand() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	held := inHand()
	id := p.id
	if !sameID {
		id = c.newID()
	}
	c.mu.Lock()
	c.kills++
	if held > 0 {
		c.inHand++
	}
	c.mu.Unlock()
	c.t.Logf("SIGKILLed worker %s holding %d unacknowledged votes; restarting as %s", p.id, held, id)
	return c.start(id)
}

// killRedisClients kills this test's workers' Redis connections (found by
// client name), leaving other tests sharing the server alone.
func (c *cluster) killRedisClients(rdb *redis.Client) {
	ctx := context.Background()
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		c.t.Errorf("client list: %v", err)
		return
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		var id, name string
		for _, f := range strings.Fields(line) {
			switch k, v, _ := strings.Cut(f, "="); k {
			case "id":
				id = v
			case "name":
				name = v
			}
		}
		if id != "" && strings.HasPrefix(name, c.clientPrefix()) {
			if rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err() == nil {
				n++
			}
		}
	}
	c.mu.Lock()
	c.redisKills += n
	c.mu.Unlock()
}

// terminateBackends ends every connection to the test database, as a
// PostgreSQL restart or failover would.
func (c *cluster) terminateBackends(admin *pgx.Conn, dbName string) {
	var n int
	err := admin.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, dbName).Scan(&n)
	if err != nil {
		c.t.Errorf("terminate backends: %v", err)
		return
	}
	c.mu.Lock()
	c.pgKills += n
	c.mu.Unlock()
}

// waitDrained waits until no vote is queued or in any processing list.
func waitDrained(t *testing.T, rdb *redis.Client, keys queue.Keys, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	for {
		where := map[string]int64{}
		lists, err := rdb.Keys(ctx, keys.Votes()+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range lists {
			if typ, _ := rdb.Type(ctx, k).Result(); typ != "list" {
				continue
			}
			if n, err := rdb.LLen(ctx, k).Result(); err == nil && n > 0 {
				where[k] = n
			}
		}
		if len(where) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("votes still in Redis after %s: %v", within, where)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkVotes asserts one row per voter holding their last vote, and
// tallies equal to a recount.
func checkVotes(t *testing.T, dbURL string, last map[string]ballot.Vote) {
	t.Helper()
	ctx := context.Background()
	db := testenv.Conn(t, dbURL)
	rows, err := db.Query(ctx, "SELECT id, vote, cast_at FROM votes")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ballot.Vote{}
	recount := map[string]int64{}
	for rows.Next() {
		var v ballot.Vote
		if err := rows.Scan(&v.VoterID, &v.Option, &v.CastAt); err != nil {
			t.Fatal(err)
		}
		got[v.VoterID] = v
		recount[v.Option]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(last) {
		t.Errorf("%d rows, want exactly %d (one per voter)", len(got), len(last))
	}
	wrong := 0
	for id, want := range last {
		if g := got[id]; g != want {
			if wrong++; wrong <= 5 {
				t.Errorf("voter %s: row %+v, want their last vote %+v", id, g, want)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d voters have a row other than their last vote", wrong)
	}
	tallies := map[string]int64{}
	trows, err := db.Query(ctx, "SELECT option, count FROM tallies")
	if err != nil {
		t.Fatal(err)
	}
	for trows.Next() {
		var o string
		var n int64
		if err := trows.Scan(&o, &n); err != nil {
			t.Fatal(err)
		}
		tallies[o] = n
	}
	for _, o := range ballot.Options {
		if tallies[o] != recount[o] {
			t.Errorf("tally %s = %d, recount %d", o, tallies[o], recount[o])
		}
	}
	t.Logf("rows %d, tallies %v", len(got), tallies)
}

// buildWorker compiles cmd/worker once for this test run.
func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ladder-cdk/ladder/services/cmd/worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/worker: %v\n%s", err, out)
	}
	return bin
}

// cluster is the worker processes of one test.
type cluster struct {
	t     *testing.T
	bin   string
	dir   string
	token string
	env   []string

	mu    sync.Mutex
	procs []*proc
	ids   int
	// what the chaos did, for the log
	kills, inHand, redisKills, pgKills int
}

type proc struct {
	id   string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (c *cluster) newID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids++
	return fmt.Sprintf("chaos-%s-%d", c.token, c.ids)
}

// clientPrefix starts the names of this test's workers' Redis connections
// (cmd/worker names them ladder-worker:<WORKER_ID>).
func (c *cluster) clientPrefix() string { return "ladder-worker:chaos-" + c.token + "-" }

func (c *cluster) start(id string) *proc {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	logPath := filepath.Join(c.dir, fmt.Sprintf("%02d-%s.log", len(c.procs), id))
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(c.bin)
	cmd.Env = append(append([]string{}, c.env...), "WORKER_ID="+id)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start worker %s: %v", id, err)
	}
	p := &proc{id: id, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	return p
}

func (c *cluster) live() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*proc
	for _, p := range c.procs {
		select {
		case <-p.done:
		default:
			out = append(out, p)
		}
	}
	return out
}

// killAll SIGKILLs whatever still runs; registered with t.Cleanup so no
// worker outlives the test, failed or not.
func (c *cluster) killAll() {
	for _, p := range c.live() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// terminate sends SIGTERM and expects a clean exit (status 0) in time.
func (p *proc) terminate(t *testing.T, within time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("worker %s exited with %v after SIGTERM, want status 0", p.id, p.err)
		}
	case <-time.After(within):
		t.Errorf("worker %s still running %s after SIGTERM", p.id, within)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (c *cluster) dumpLogs() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		b, _ := os.ReadFile(p.log)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		c.t.Logf("--- last log lines of worker %s:\n%s", p.id, strings.Join(lines, "\n"))
	}
}

// report logs how often the workers noticed the chaos.
func (c *cluster) report() {
	counts := map[string]int{}
	marks := []string{"waiting for redis", "waiting for postgres", "re-queued votes of dead workers",
		"finishing votes already in the processing list", "database schema is up to date", `"level":"ERROR"`}
	c.mu.Lock()
	for _, p := range c.procs {
		f, err := os.Open(p.log)
		if err != nil {
			continue
		}
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			for _, m := range marks {
				if strings.Contains(s.Text(), m) {
					counts[m]++
				}
			}
		}
		f.Close()
	}
	c.t.Logf("chaos: %d SIGKILLs (%d with votes in hand), %d redis connections killed, %d postgres backends terminated; %d processes",
		c.kills, c.inHand, c.redisKills, c.pgKills, len(c.procs))
	c.mu.Unlock()
	c.t.Logf("worker log lines: %v", counts)
}
