package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/logging"
	"github.com/ladder-cdk/ladder/services/internal/store"
)

const writerUsage = "usage: worker writer | worker writer set <region>"

// writerJSON is the writer region as printed: source is "table" (the
// control item), "default" (no item; DYNAMODB_DEFAULT_WRITER_REGION) or
// "none" (neither: no gate, every region writes).
type writerJSON struct {
	Writer string `json:"writer"`
	Source string `json:"source"`
}

// runWriter runs `worker writer [set <region>]` (args after "writer") and
// returns the exit code: one JSON line on stdout, logs on stderr.
func runWriter(ctx context.Context, args []string, env config.Env, stdout, stderr io.Writer) int {
	log := logging.NewTo(stderr, "worker", env.Getenv("LOG_LEVEL")).With("command", "writer")
	var set string
	switch {
	case len(args) == 0:
	case len(args) == 2 && args[0] == "set":
		set = args[1]
		if !config.ValidRegion(set) {
			fmt.Fprintf(stderr, "worker writer set: invalid region %q: want a region name like us-east-1 (lowercase letters, digits, hyphens)\n", set)
			return exitError
		}
	default:
		fmt.Fprintln(stderr, writerUsage)
		return exitError
	}
	// Checked before the rest of the configuration, so the message names
	// the real problem rather than a missing DATABASE_URL.
	if s := strings.TrimSpace(env.Getenv("STORE")); s != config.StoreDynamoDB {
		fmt.Fprintf(stderr, "worker writer: STORE must be %q (the writer region is kept in the DynamoDB table), got %q\n", config.StoreDynamoDB, s)
		return exitError
	}
	// The store's variables only, as for `worker tallies`: no Redis.
	cfg, err := config.LoadFrom(config.Result, env)
	if err != nil {
		log.Error("invalid configuration: " + err.Error())
		return exitError
	}
	d, err := store.OpenDynamoDB(ctx, store.DynamoOptions{Table: cfg.DynamoTable, Region: cfg.AWSRegion, Endpoint: cfg.DynamoEndpoint, Log: log})
	if err != nil {
		log.Error(err.Error())
		return exitError
	}
	defer d.Close()

	if set != "" {
		prev, found, err := d.WriterRegion(ctx)
		if err != nil {
			// Only for the log line: a failover may have to overwrite a
			// flag it cannot read.
			log.Warn("could not read the previous writer region: "+err.Error(), "dependency", "dynamodb")
		}
		if err := d.SetWriterRegion(ctx, set); err != nil {
			log.Error(err.Error(), "dependency", "dynamodb")
			return exitError
		}
		log.Info("writer region set to "+set, "writer_region", set, "previous", prev, "previous_found", found)
	}
	region, found, err := d.WriterRegion(ctx)
	if err != nil && set != "" {
		// The write succeeded; only the read-back failed.
		log.Warn("writer region set, but reading it back failed: "+err.Error(), "dependency", "dynamodb")
		region, found, err = set, true, nil
	}
	if err != nil {
		log.Error(err.Error(), "dependency", "dynamodb")
		return exitError
	}
	out, code := writerJSON{Writer: region, Source: "table"}, exitOK
	switch {
	case found:
	case cfg.DynamoDefaultWriterRegion != "":
		out = writerJSON{Writer: cfg.DynamoDefaultWriterRegion, Source: "default"}
	default:
		out, code = writerJSON{Source: "none"}, exitDiffers
		log.Warn("no writer region: the table holds none and DYNAMODB_DEFAULT_WRITER_REGION is not set here " +
			"(workers without it write in every region)")
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		return exitError
	}
	return code
}
