// Command vote is the voting page: it records each browser's choice in the
// Redis queue (VOTE_MODE=queue, as the original app) or straight in
// PostgreSQL (VOTE_MODE=direct). `vote healthcheck` probes a running
// instance, for images without a shell.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/httpserver"
	"github.com/ladder-cdk/ladder/services/internal/logging"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/sink"
	"github.com/ladder-cdk/ladder/services/internal/votepage"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(httpserver.Probe(config.ProbePort(config.Vote)))
	}
	cfg, err := config.Load(config.Vote)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vote: configuration error: %v\n", err)
		os.Exit(2)
	}
	log := logging.New("vote")
	queue.LogTo(log)
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts, _, err := setup(ctx, cfg, host, log)
	if err != nil {
		log.Error("start: "+err.Error(), "error", err.Error())
		os.Exit(1)
	}
	if err := httpserver.Run(ctx, opts); err != nil {
		log.Error(err.Error(), "error", err.Error())
		os.Exit(1)
	}
}

// setup wires the sink and the page into server options; tests serve the
// same options on their own listener.
func setup(ctx context.Context, cfg config.Config, host string, log *slog.Logger) (httpserver.Options, sink.Backend, error) {
	backend, err := sink.Open(ctx, cfg, host, log)
	if err != nil {
		return httpserver.Options{}, nil, err
	}
	page, err := votepage.New(votepage.Options{
		OptionA: cfg.OptionA, OptionB: cfg.OptionB, Hostname: host, Sink: backend, Log: log,
		StaticBaseURL: cfg.StaticBaseURL,
	})
	if err != nil {
		return httpserver.Options{}, nil, err
	}
	where := []any{"redis", config.Redact(cfg.RedisURL), "redis_key_prefix", cfg.RedisKeyPrefix}
	if cfg.VoteMode == config.ModeDirect {
		where = []any{"database", config.Redact(cfg.DatabaseURL), "db_migrate", cfg.DBMigrate}
		if cfg.Store == config.StoreDynamoDB {
			where = []any{"dynamodb_table", cfg.DynamoTable, "aws_region", cfg.AWSRegion}
		}
	}
	log.Info("starting", append([]any{"mode", cfg.VoteMode, "port", cfg.Port, "hostname", host,
		"batch_size", cfg.BatchSize, "batch_linger", cfg.BatchLinger.String(), "static_base_url", cfg.StaticBaseURL}, where...)...)
	// Serve at once and report not-ready until the backend answers.
	go func() { _ = backend.Wait(ctx) }()
	return httpserver.Options{
		Addr:            ":" + strconv.Itoa(cfg.Port),
		Handler:         page,
		Ready:           map[string]httpserver.Check{backend.Dependency(): backend.Check},
		ShutdownTimeout: cfg.ShutdownTimeout,
		// In-flight requests have had their batches committed by now;
		// Close writes anything left and releases the connections.
		OnShutdown: func(ctx context.Context) {
			if err := backend.Close(ctx); err != nil {
				log.Error("closing "+backend.Dependency()+": "+err.Error(), "error", err.Error())
			}
		},
		Log: log,
	}, backend, nil
}
