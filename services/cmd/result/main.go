// Command result serves the live result page of the voting app: GET / (the
// page), GET /api/results (JSON) and GET /events (Server-Sent Events pushed
// from PostgreSQL LISTEN/NOTIFY), plus /healthz, /readyz and /metrics.
//
// `result healthcheck` probes a running instance (exit 0 healthy, 1 not):
// the image has no shell or curl.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/ladder-cdk/ladder/services/internal/resultpage"
	"github.com/ladder-cdk/ladder/services/internal/store"
)

func main() {
	if len(os.Args) > 1 {
		if os.Args[1] == "healthcheck" {
			os.Exit(httpserver.Probe(config.ProbePort(config.Result)))
		}
		fmt.Fprintf(os.Stderr, "result: unknown argument %q (the only one is healthcheck)\n", os.Args[1])
		os.Exit(2)
	}
	log := logging.New("result")
	cfg, err := config.Load(config.Result)
	if err != nil {
		log.Error("invalid configuration: " + err.Error())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = run(ctx, cfg, log)
	stop()
	if err != nil {
		log.Error(err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hub := resultpage.NewHub(resultpage.DefaultWindow)
	st, err := store.Open(ctx, cfg, "ladder-result", 0, log)
	if err != nil {
		return err
	}
	defer st.Close()
	migrate, dep := st.Migrate, st.Dependency

	var migrated atomic.Bool
	migrated.Store(migrate == nil)
	var wg sync.WaitGroup
	wg.Go(func() { hub.Run(ctx) })
	wg.Go(func() {
		if migrate != nil {
			if backoff.Retry(ctx, log, "postgres", migrate) != nil {
				return
			}
			migrated.Store(true)
			log.Info("database schema is up to date")
		}
		// One LISTEN connection for the whole process, fanned out by the hub.
		_ = st.WatchTallies(ctx, hub.Publish, hub.WatchDown)
	})

	ready := map[string]httpserver.Check{dep: st.Ping}
	if migrate != nil {
		ready["migrations"] = func(context.Context) error {
			if !migrated.Load() {
				return errors.New("not applied yet")
			}
			return nil
		}
	}
	err = httpserver.Run(ctx, httpserver.Options{
		Addr: ":" + strconv.Itoa(cfg.Port),
		Handler: resultpage.New(resultpage.Options{
			OptionA: cfg.OptionA, OptionB: cfg.OptionB, Store: st, Hub: hub, Log: log,
			StaticBaseURL: cfg.StaticBaseURL,
		}),
		Ready:           ready,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Log:             log,
	})
	// Also stops the watcher if the listener failed rather than ctx ending.
	cancel()
	wg.Wait()
	return err
}
