package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/store"
)

func TestPgbenchScriptRunsTheStoresUpsert(t *testing.T) {
	for _, pipeline := range []bool{true, false} {
		s, err := pgbenchScript(store.BatchUpsertSQL(), 1000, pipeline)
		if err != nil {
			t.Fatalf("pipeline=%v: %v", pipeline, err)
		}
		if strings.Contains(s, "unnest(") || strings.Contains(s, "$1") {
			t.Errorf("array parameters left in script:\n%s", s)
		}
		for _, want := range []string{"generate_series(1, 1000)", "ON CONFLICT (id) DO UPDATE", "pg_notify(", "SELECT pg_advisory_xact_lock(7809633611198627842);"} {
			if !strings.Contains(s, want) {
				t.Errorf("pipeline=%v: script lacks %q", pipeline, want)
			}
		}
		first, last := "BEGIN;", "COMMIT;"
		if pipeline {
			first, last = `\startpipeline`, `\endpipeline`
		}
		lines := strings.Split(strings.TrimSpace(s), "\n")
		if lines[1] != first || lines[len(lines)-1] != last {
			t.Errorf("pipeline=%v: script not wrapped in %s ... %s:\n%s", pipeline, first, last, s)
		}
		// pgbench ends a command at ';': exactly the lock and the upsert
		// (and BEGIN/COMMIT) may end in one.
		want := 2
		if !pipeline {
			want = 4
		}
		if n := strings.Count(s, ";"); n != want {
			t.Errorf("pipeline=%v: %d semicolons, want %d", pipeline, n, want)
		}
	}
}

func TestPgbenchScriptRefusesAChangedStatement(t *testing.T) {
	for name, sql := range map[string]string{
		"no unnest":     "INSERT INTO votes SELECT * FROM other",
		"extra param":   "SELECT $4 FROM " + unnestSource,
		"semicolon":     "SELECT 1 FROM " + unnestSource + "; SELECT 2",
		"pgbench var":   "SELECT :scale FROM " + unnestSource,
		"unnest twice":  "SELECT 1 FROM " + unnestSource + ", " + unnestSource,
		"unnest reform": "SELECT 1 FROM unnest($1::text[],$2::text[],$3::bigint[]) AS t(id, vote, cast_at)",
	} {
		if _, err := pgbenchScript(sql, 10, true); err == nil {
			t.Errorf("%s: accepted %q", name, sql)
		}
	}
	if _, err := pgbenchScript("SELECT x::bigint FROM "+unnestSource, 10, true); err != nil {
		t.Errorf("a ::cast is not a pgbench variable: %v", err)
	}
}

func TestParsePgbench(t *testing.T) {
	out := `pgbench (15.10 (Debian 15.10-0+deb12u1))
transaction type: /tmp/upsert.sql
scaling factor: 1
query mode: prepared
number of clients: 1
number of threads: 1
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 379
number of failed transactions: 0 (0.000%)
latency average = 13.281 ms
initial connection time = 8.017 ms
tps = 75.297465 (without initial connection time)
`
	r, err := parsePgbench(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.tps != 75.297465 || r.latencyMS != 13.281 || r.processed != 379 || r.failed != 0 {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parsePgbench("pgbench: error: connection refused"); err == nil {
		t.Error("no error for output without tps")
	}
}

func TestParseRedisBenchmark(t *testing.T) {
	out := "RPUSH k {\"v\":1}: rps=0.0 (overall: -nan) avg_msec=-nan (overall: -nan)\r" +
		"RPUSH k {\"v\":1}: rps=69772.9 (overall: 69772.9) avg_msec=0.618 (overall: 0.618)\r" +
		"RPUSH k {\"v\":1}: 66934.41 requests per second, p50=0.607 msec\n"
	v, err := parseRedisBenchmark(out)
	if err != nil || v != 66934.41 {
		t.Errorf("got %v, %v; want 66934.41", v, err)
	}
	if _, err := parseRedisBenchmark("Could not connect to Redis at 127.0.0.1:1: Connection refused"); err == nil {
		t.Error("no error for output without a figure")
	}
}

func TestSamplePayloadIsTheRealSize(t *testing.T) {
	p, err := samplePayload()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p, `"voter_id":"0123456789abcdef"`) || len(p) < 60 {
		t.Errorf("payload %q does not look like a queue payload", p)
	}
}

func TestMedianAndPercentile(t *testing.T) {
	if m := median([]float64{5, 1, 3}); m != 3 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	if i := medianIndex([]float64{30, 10, 20}); i != 2 {
		t.Errorf("medianIndex = %d, want 2", i)
	}
	if i := medianIndex([]float64{4, 1, 3, 2}); i != 3 {
		t.Errorf("medianIndex even = %d, want 3 (the lower median)", i)
	}
	d := []time.Duration{}
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p := durPercentile(d, 50); p != 50*time.Millisecond {
		t.Errorf("p50 = %v", p)
	}
	if p := durPercentile(d, 99); p != 99*time.Millisecond {
		t.Errorf("p99 = %v", p)
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", 12.34: "12.3", -4500: "-4,500"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	// make test exports these; the flags must be what is checked here.
	t.Setenv("LADDER_TEST_DATABASE_URL", "")
	t.Setenv("LADDER_TEST_REDIS_URL", "")
	o, err := parseFlags([]string{"-database-url", "postgres://x/y", "-redis-url", "redis://x", "-steps", "1,3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.steps[1] || !o.steps[3] || o.steps[2] || o.duration != 10*time.Second || o.concurrency != 64 || o.batchSize != 1000 || o.tallyVoters != 1_000_000 || o.runs != 3 {
		t.Errorf("parsed %+v", o)
	}
	for _, args := range [][]string{
		{"-database-url", "postgres://x/y", "-redis-url", "redis://x", "-steps", "3"},
		{"-database-url", "postgres://x/y", "-redis-url", "redis://x", "-steps", "6"},
		{"-database-url", "", "-redis-url", "redis://x", "-steps", "5"},
		{"-database-url", "postgres://x/y", "-redis-url", "redis://x", "-pgbench-mode", "simple"},
		{"-database-url", "postgres://x/y", "-redis-url", "redis://x", "-concurrency", "0"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("accepted %q", args)
		}
	}
}

func TestServiceEnvDropsInheritedConfig(t *testing.T) {
	t.Setenv("VOTE_MODE", "direct")
	t.Setenv("DATABASE_URL", "postgres://elsewhere/db")
	env := serviceEnv(map[string]string{"VOTE_MODE": "queue"})
	var modes []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "VOTE_MODE=") {
			modes = append(modes, kv)
		}
		if strings.HasPrefix(kv, "DATABASE_URL=") {
			t.Errorf("inherited %s", kv)
		}
	}
	if len(modes) != 1 || modes[0] != "VOTE_MODE=queue" {
		t.Errorf("VOTE_MODE entries %q", modes)
	}
}
