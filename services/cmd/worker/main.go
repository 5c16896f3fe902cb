// Command worker moves votes from the Redis queue into the store
// (PostgreSQL, or DynamoDB with STORE=dynamodb): batches of up to
// BATCH_SIZE, each acknowledged only after it is committed (in PostgreSQL
// in one round trip), so a vote survives the worker, Redis connections or
// the store going away at any moment. It serves /healthz, /readyz and
// /metrics on PORT (default 8082).
//
// `worker healthcheck` probes a running instance (exit 0 healthy, 1 not):
// the image has no shell or curl.
//
// `worker tallies check` compares the running tallies with a recount of
// the stored votes and prints one JSON line (store, ok, stored, recount,
// drift = stored - recount per option, pending DynamoDB intents); exit 0
// when they are equal and nothing is pending, 1 when not, 2 on an error.
// It reads the store's variables only (STORE, DATABASE_URL... or
// DYNAMODB_TABLE...), no Redis, and reads the whole votes table.
//
// `worker tallies repair [-force]` rewrites the tallies from the recount
// and prints {"store", "before", "after"} (two checks); exit 0 when the
// tallies now equal the recount, 1 when it refused or they still differ
// after it, 2 on an error (on DynamoDB: run it again before any worker
// writes, the tallies may be inconsistent until one succeeds).
// PostgreSQL: safe online, it holds the writers' lock for a recount's
// duration. DynamoDB: ONLY SAFE WITH EVERY WRITER STOPPED, in every region
// (workers and direct-mode vote services): last-writer-wins between the
// regions of a global table is what makes tallies drift, and the repair
// has no lock to take. It therefore refuses while this region's Redis
// (REDIS_URL, REDIS_KEY_PREFIX) holds a live worker heartbeat, unless
// -force; it cannot see other regions. Queue-mode vote services may keep
// running: votes wait in Redis until the workers start again.
//
// Tier 4 (two regions, one DynamoDB global table, a queue and workers per
// region) fences the writers with a writer region kept in the table's
// control item. With DYNAMODB_DEFAULT_WRITER_REGION set, a worker applies
// votes only while that item names its AWS_REGION (or, while there is no
// item, while DYNAMODB_DEFAULT_WRITER_REGION does); otherwise it stands by
// (ladder_worker_standby 1, still healthy and ready) and its region's
// votes wait in its queue. It rereads the item every 5 s; see
// internal/worker's Gate for the window in which an old writer may still
// apply a batch. Unset, every worker writes (Tiers 1-3).
//
// `worker writer` prints the writer region as one JSON line,
// {"writer": "<region>", "source": "table"|"default"}, and exits 0; with
// neither an item nor DYNAMODB_DEFAULT_WRITER_REGION it prints
// {"writer": "", "source": "none"} and exits 1. `worker writer set
// <region>` writes the item (works while the old writer region is
// unreachable) and prints the same line read back. Exit 2 on bad input
// (a region must be lowercase letters, digits and hyphens; nothing is
// written), a STORE other than dynamodb, or an I/O failure. It reads the
// store's variables only (STORE, DYNAMODB_TABLE, AWS_REGION...). To switch
// without any overlap of writers, set a region where no worker runs
// ("none"), wait until every worker reports standby, then the new region.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ladder-cdk/ladder/services/internal/backoff"
	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/httpserver"
	"github.com/ladder-cdk/ladder/services/internal/logging"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/internal/worker"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "healthcheck":
			os.Exit(httpserver.Probe(config.ProbePort(config.Worker)))
		case "tallies":
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			code := runTallies(ctx, os.Args[2:], config.FromOS(), os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		case "writer":
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			code := runWriter(ctx, os.Args[2:], config.FromOS(), os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		}
		fmt.Fprintf(os.Stderr, "worker: unknown argument %q (want healthcheck, tallies check|repair [-force], or writer [set <region>])\n", os.Args[1])
		os.Exit(2)
	}
	log := logging.New("worker")
	cfg, err := config.Load(config.Worker)
	if err != nil {
		log.Error("invalid configuration: " + err.Error())
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		log.Error(fmt.Sprintf("listen on port %d: %v", cfg.Port, err))
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = run(ctx, cfg, log, ln)
	stop()
	if err != nil {
		log.Error(err.Error())
		os.Exit(1)
	}
}

// run drains the queue and serves HTTP on ln until ctx ends, then finishes
// the batch in hand within cfg.ShutdownTimeout.
func run(ctx context.Context, cfg config.Config, log *slog.Logger, ln net.Listener) error {
	// go-redis reports dial failures through its own logger; keep them in
	// the JSON log stream rather than as bare lines on stderr.
	queue.LogTo(log)
	// The client name carries the worker id so an operator (or the chaos
	// test) can find this worker's connections in CLIENT LIST.
	rdb, err := queue.NewClient(cfg.RedisURL, "ladder-worker:"+cfg.WorkerID)
	if err != nil {
		return fmt.Errorf("redis %s: %w", config.Redact(cfg.RedisURL), err)
	}
	defer rdb.Close()
	// A connection per lane, one more for /readyz.
	st, err := store.Open(ctx, cfg, "ladder-worker", worker.DefaultLanes+1, log)
	if err != nil {
		return err
	}
	defer st.Close()
	migrate, dep := st.Migrate, st.Dependency

	var gate *worker.Gate
	if cfg.DynamoDefaultWriterRegion != "" {
		flag, ok := st.Store.(worker.WriterFlag)
		if !ok {
			return fmt.Errorf("DYNAMODB_DEFAULT_WRITER_REGION: the %s store keeps no writer region", cfg.Store)
		}
		gate = worker.NewGate(flag, cfg.AWSRegion, cfg.DynamoDefaultWriterRegion, 0, log)
	}
	w := worker.New(worker.Options{
		Redis:           rdb,
		Keys:            queue.NewKeys(cfg.RedisKeyPrefix),
		ID:              cfg.WorkerID,
		Store:           st,
		StoreName:       cfg.Store,
		BatchSize:       cfg.BatchSize,
		HeartbeatTTL:    cfg.HeartbeatTTL,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Gate:            gate,
		Log:             log,
	})

	var migrated atomic.Bool
	migrated.Store(migrate == nil)
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	// The HTTP server outlives ctx until the worker has committed its last
	// batch, so /metrics and /healthz answer during the shutdown.
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	var wg sync.WaitGroup
	var workErr error
	wg.Go(func() {
		defer stopHTTP()
		if migrate != nil {
			// Before the first vote: without the schema every batch would
			// fail. Migrations take an advisory lock, so several workers
			// starting together apply them once.
			if backoff.Retry(workCtx, log, "postgres", migrate) != nil {
				return
			}
			migrated.Store(true)
			log.Info("database schema is up to date")
		}
		workErr = w.Run(workCtx)
	})

	ready := map[string]httpserver.Check{"redis": w.Ping, dep: st.Ping}
	if migrate != nil {
		ready["migrations"] = func(context.Context) error {
			if !migrated.Load() {
				return errors.New("not applied yet")
			}
			return nil
		}
	}
	httpErr := httpserver.Serve(httpCtx, ln, httpserver.Options{
		Ready:           ready,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Log:             log,
	})
	// Normally a no-op (the worker already stopped); if the listener
	// failed, stop the worker cleanly too rather than run unobservable.
	stopWork()
	wg.Wait()
	return errors.Join(workErr, httpErr)
}
