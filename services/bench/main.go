// Command bench is the services benchmark driver behind `make bench-services`.
//
// In one run on loopback it builds native vote, worker, result and loadgen
// binaries, measures
//
//  1. vote POST requests/s in queue mode, beside redis-benchmark RPUSH with
//     the same connection count;
//  2. vote POST requests/s in direct mode, beside pgbench running the very
//     upsert the store runs (store.BatchUpsertSQL) at the same batch size;
//  3. how fast one worker drains the votes step 1 queued into PostgreSQL,
//     beside the same pgbench figure;
//  4. vote-to-result-page latency at a steady rate (vote + worker + result);
//  5. the result page's tally query at a million voters, beside the
//     original app's GROUP BY over the votes table;
//
// then prints a summary table (medians over -runs) with each figure's ratio
// to its limit and to the team's targets. Everything it creates (processes,
// databases, Redis keys, temporary files) is removed when it ends, also on
// error or Ctrl-C.
//
// It reads LADDER_TEST_DATABASE_URL (a role that may CREATE DATABASE) and
// LADDER_TEST_REDIS_URL, as printed by scripts/test-deps.sh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Targets the services are built to meet on this kind of box.
const (
	targetVoteRPS     = 20_000
	targetWorkerVPS   = 50_000
	targetE2EP99Milli = 100
)

type options struct {
	duration      time.Duration
	concurrency   int
	batchSize     int
	pgbenchTime   time.Duration
	pgbenchMode   string
	redisRequests int
	e2eRate       float64
	tallyVoters   int
	tallyCalls    int
	runs          int
	steps         map[int]bool
	databaseURL   string
	redisURL      string
	keepTemp      bool
}

var errFlagsShown = errors.New("bad flags")

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each loadgen run (steps 1, 2 and 4)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "loadgen connections, and redis-benchmark clients for the RPUSH limit")
	fs.IntVar(&o.batchSize, "batch-size", 1000, "BATCH_SIZE of worker and direct-mode vote, and votes per pgbench transaction")
	fs.DurationVar(&o.pgbenchTime, "pgbench-time", 10*time.Second, "pgbench -T for the PostgreSQL limit")
	// Not prepared: pgbench would plan the parameterless script once, on the
	// fresh empty votes table (a hash join over a seq scan), and keep that
	// plan while the table grows, sinking to a third of the rate in 10 s.
	fs.StringVar(&o.pgbenchMode, "pgbench-mode", "extended", "pgbench -M (pipelining needs extended or prepared); extended plans every batch for the table as it is, prepared keeps the plan made on the empty table")
	fs.IntVar(&o.redisRequests, "redis-requests", 300_000, "redis-benchmark -n for the RPUSH limit")
	fs.Float64Var(&o.e2eRate, "e2e-rate", 1000, "steady votes/s for the vote-to-result-page latency (step 4)")
	fs.IntVar(&o.tallyVoters, "tally-voters", 1_000_000, "voters loaded for the tally query timing (step 5)")
	fs.IntVar(&o.tallyCalls, "tally-calls", 200, "timed store.Tally calls (step 5); the original's GROUP BY runs 5 times")
	fs.IntVar(&o.runs, "runs", 3, "repeat steps 1-3 and their limits this many times (the machine is shared, so one run is noisy); the summary shows medians")
	steps := fs.String("steps", "1,2,3,4,5", "comma-separated steps to run (3 needs 1)")
	// No env values as flag defaults: -h would print the password.
	fs.StringVar(&o.databaseURL, "database-url", "", "admin PostgreSQL URL whose role may create databases (default $LADDER_TEST_DATABASE_URL)")
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis URL (default $LADDER_TEST_REDIS_URL)")
	fs.BoolVar(&o.keepTemp, "keep-temp", false, "keep the temporary directory with binaries and service logs")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: bench [flags]   (run from services/, normally via `make bench-services`)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			err = errFlagsShown // the flag package already printed it with the usage
		}
		return o, err
	}
	if o.databaseURL == "" {
		o.databaseURL = os.Getenv("LADDER_TEST_DATABASE_URL")
	}
	if o.redisURL == "" {
		o.redisURL = os.Getenv("LADDER_TEST_REDIS_URL")
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (all options are flags)", fs.Arg(0))
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.duration <= 0 {
		bad("-duration must be > 0")
	}
	if o.concurrency < 1 || o.concurrency > 10_000 {
		bad("-concurrency must be between 1 and 10000")
	}
	if o.batchSize < 1 || o.batchSize > 100_000 {
		bad("-batch-size must be between 1 and 100000 (the services' BATCH_SIZE range)")
	}
	if o.pgbenchTime < time.Second {
		bad("-pgbench-time must be at least 1s")
	}
	if o.pgbenchMode != "prepared" && o.pgbenchMode != "extended" {
		bad("-pgbench-mode must be prepared or extended (pipelining needs one of them)")
	}
	if o.redisRequests < 1 {
		bad("-redis-requests must be > 0")
	}
	if o.e2eRate <= 0 {
		bad("-e2e-rate must be > 0")
	}
	if o.tallyVoters < 1 {
		bad("-tally-voters must be > 0")
	}
	if o.tallyCalls < 1 {
		bad("-tally-calls must be > 0")
	}
	if o.runs < 1 {
		bad("-runs must be >= 1")
	}
	o.steps = map[int]bool{}
	for _, s := range strings.Split(*steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 5 {
			bad("-steps: %q is not a step number 1-5", s)
			continue
		}
		o.steps[n] = true
	}
	if o.steps[3] && !o.steps[1] {
		bad("-steps: step 3 drains the votes step 1 queued, so it needs step 1 too")
	}
	if o.databaseURL == "" && (o.steps[2] || o.steps[3] || o.steps[4] || o.steps[5]) {
		bad("no PostgreSQL: set LADDER_TEST_DATABASE_URL (eval \"$(scripts/test-deps.sh)\") or -database-url")
	}
	if o.redisURL == "" && (o.steps[1] || o.steps[3] || o.steps[4]) {
		bad("no Redis: set LADDER_TEST_REDIS_URL (eval \"$(scripts/test-deps.sh)\") or -redis-url")
	}
	return o, errors.Join(errs...)
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if errors.Is(err, errFlagsShown) {
			os.Exit(2)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(os.Stderr, "bench: %s\n", line)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run returns the exit status; it is separate from main so the deferred
// cleanup runs before os.Exit.
func run(ctx context.Context, o options, stdout, stderr io.Writer) int {
	start := time.Now()
	b, err := newBench(ctx, o, stdout)
	if b != nil {
		defer b.cleanup(stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	res := &results{disturbed: map[int]int{}}
	err = b.runAll(ctx, res)
	printSummary(stdout, o, res)
	fmt.Fprintf(stdout, "\nbench took %s; load average now %s\n", time.Since(start).Round(time.Second), loadAvg())
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "bench: interrupted; cleaning up")
		} else {
			fmt.Fprintf(stderr, "bench: %v\n", err)
		}
		return 1
	}
	return 0
}
