package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/logging"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/store"
)

const talliesUsage = "usage: worker tallies check | worker tallies repair [-force]"

// Exit codes of `worker tallies`.
const (
	exitOK      = 0 // check: equal, nothing pending; repair: done and verified
	exitDiffers = 1 // check: drift or pending intents; repair: refused (live workers), or not equal after it
	exitError   = 2 // bad arguments or configuration, or an I/O failure
)

// counts is a Tally as it appears in the command's JSON.
type counts struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

func countsOf(t store.Tally) counts { return counts{A: t.A, B: t.B} }

// checkJSON is one check as printed.
type checkJSON struct {
	Store   string `json:"store"`
	OK      bool   `json:"ok"`
	Stored  counts `json:"stored"`
	Recount counts `json:"recount"`
	Drift   counts `json:"drift"` // stored - recount
	Pending int    `json:"pending"`
}

func checkOut(storeName string, c store.TallyCheck) checkJSON {
	return checkJSON{Store: storeName, OK: c.OK(), Stored: countsOf(c.Stored), Recount: countsOf(c.Recount),
		Drift: countsOf(c.Drift()), Pending: c.Pending}
}

// runTallies runs `worker tallies check|repair [-force]` (args after
// "tallies") and returns the exit code. The result is one JSON line on
// stdout; logs go to stderr so stdout stays machine-readable.
func runTallies(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) int {
	log := logging.NewTo(stderr, "worker", env.Getenv("LOG_LEVEL")).With("command", "tallies")
	if len(args) == 0 || (args[0] != "check" && args[0] != "repair") {
		fmt.Fprintln(stderr, talliesUsage)
		return exitError
	}
	fs := flag.NewFlagSet("worker tallies "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	force := false
	if args[0] == "repair" {
		fs.BoolVar(&force, "force", false, "repair a DynamoDB table even though a worker heartbeat is live, or without Redis")
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, talliesUsage)
		return exitError
	}
	// The store's variables only, as the result service reads them: a
	// check needs no Redis (REDIS_URL), and neither does a PostgreSQL repair.
	cfg, err := config.LoadFrom(config.Result, env)
	if err != nil {
		log.Error("invalid configuration: " + err.Error())
		return exitError
	}
	opened, err := store.Open(ctx, cfg, "ladder-worker-tallies", 2, log)
	if err != nil {
		log.Error(err.Error())
		return exitError
	}
	defer opened.Close()
	tc, ok := opened.Store.(store.TallyChecker)
	if !ok {
		log.Error(fmt.Sprintf("the %s store cannot check its tallies", cfg.Store))
		return exitError
	}

	if args[0] == "check" {
		c, err := tc.CheckTallies(ctx)
		if err != nil {
			log.Error(err.Error(), "dependency", opened.Dependency)
			return exitError
		}
		if err := json.NewEncoder(stdout).Encode(checkOut(cfg.Store, c)); err != nil {
			return exitError
		}
		if !c.OK() {
			return exitDiffers
		}
		return exitOK
	}

	// DynamoDB has no lock the repair could take: it is only safe with
	// every writer stopped. Refuse while this region's Redis shows a live
	// worker. (It cannot see the other region's workers or direct-mode
	// vote services: the runbook stops those first.)
	if cfg.Store == config.StoreDynamoDB && !force {
		if code := refuseLiveWorkers(ctx, env, log); code != exitOK {
			return code
		}
	}
	before, err := tc.RepairTallies(ctx)
	if err != nil {
		log.Error(err.Error(), "dependency", opened.Dependency)
		if errors.Is(err, store.ErrRepairRaced) {
			log.Error("stop every worker (in every region) and run the repair again")
		} else if cfg.Store == config.StoreDynamoDB {
			// The repair drops pending intents before it rewrites the
			// shards: stopped in between, the tallies miss those changes
			// until a repair completes.
			log.Error("the tallies may be inconsistent until a repair succeeds: run it again before any worker writes")
		}
		return exitError
	}
	after, err := tc.CheckTallies(ctx)
	if err != nil {
		log.Error("verify the repair: "+err.Error(), "dependency", opened.Dependency)
		return exitError
	}
	out := struct {
		Store  string    `json:"store"`
		Before checkJSON `json:"before"`
		After  checkJSON `json:"after"`
	}{cfg.Store, checkOut(cfg.Store, before), checkOut(cfg.Store, after)}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		return exitError
	}
	if !after.OK() {
		return exitDiffers
	}
	return exitOK
}

// refuseLiveWorkers returns exitOK when no worker heartbeat is live in
// Redis, exitDiffers when one is, exitError when it cannot tell.
func refuseLiveWorkers(ctx context.Context, env config.Env, log *slog.Logger) int {
	// The worker's own configuration: same REDIS_URL and key prefix.
	wcfg, err := config.LoadFrom(config.Worker, env)
	if err != nil {
		log.Error("invalid configuration: " + err.Error() + " (Redis is needed to see live workers; -force skips that)")
		return exitError
	}
	rdb, err := queue.NewClient(wcfg.RedisURL, "ladder-worker-tallies")
	if err != nil {
		log.Error(fmt.Sprintf("redis %s: %v", config.Redact(wcfg.RedisURL), err))
		return exitError
	}
	defer rdb.Close()
	live, err := liveWorkers(ctx, rdb, queue.NewKeys(wcfg.RedisKeyPrefix))
	if err != nil {
		log.Error(err.Error()+" (cannot tell whether workers run; -force skips the check)", "dependency", "redis")
		return exitError
	}
	if len(live) > 0 {
		log.Error(fmt.Sprintf("refusing to repair: %d worker(s) have a live heartbeat (%s); stop the workers, or pass -force if they are stopped",
			len(live), strings.Join(live, ", ")))
		return exitDiffers
	}
	return exitOK
}

// liveWorkers lists the worker ids whose heartbeat key exists: the same
// test of liveness queue.ReclaimDead applies (the key expires with its TTL).
func liveWorkers(ctx context.Context, rdb redis.UniversalClient, keys queue.Keys) ([]string, error) {
	pfx := keys.Heartbeat("")
	var ids []string
	iter := rdb.Scan(ctx, 0, globEscape(pfx)+"*", 500).Iterator()
	for iter.Next(ctx) {
		ids = append(ids, strings.TrimPrefix(iter.Val(), pfx))
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan worker heartbeats: %w", err)
	}
	return ids, nil
}

// globEscape quotes the characters SCAN MATCH treats as a pattern, so a
// key prefix matches only itself.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
