package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/store"
)

// ---- Redis: RPUSH with the vote service's connection count ----------------

var redisRPSRe = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?) requests per second`)

// parseRedisBenchmark reads the final figure of `redis-benchmark -q`, whose
// output also holds \r-separated progress lines.
func parseRedisBenchmark(out string) (float64, error) {
	m := redisRPSRe.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0, fmt.Errorf("no \"requests per second\" in redis-benchmark output: %q", firstLines(out, 2))
	}
	return strconv.ParseFloat(m[len(m)-1][1], 64)
}

// samplePayload is a queue payload of the size the vote service pushes.
func samplePayload() (string, error) {
	b, err := ballot.Encode(ballot.Vote{VoterID: "0123456789abcdef", Option: ballot.OptionA, CastAt: time.Now().UnixNano()}, "bench-host")
	return string(b), err
}

type redisLimit struct {
	rps     float64
	command string
	cpu     cpuUse
}

// redisRPUSH runs redis-benchmark RPUSH with c clients. It pushes to a key
// under the bench prefix (instead of -t rpush's shared "mylist") with a
// payload of the real size, then deletes the key.
func (b *bench) redisRPUSH(ctx context.Context, clients int) (redisLimit, error) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return redisLimit{}, errors.New("redis-benchmark not found on PATH (apt-get install redis-tools)")
	}
	opt, err := redis.ParseURL(b.o.redisURL)
	if err != nil {
		return redisLimit{}, fmt.Errorf("parse redis url: %w", err)
	}
	if opt.TLSConfig != nil {
		return redisLimit{}, errors.New("redis-benchmark limit not measured over TLS (rediss://)")
	}
	host, port, err := splitHostPort(opt.Addr, "6379")
	if err != nil {
		return redisLimit{}, err
	}
	payload, err := samplePayload()
	if err != nil {
		return redisLimit{}, err
	}
	key := b.prefix + "redis-benchmark"
	args := []string{"-h", host, "-p", port, "-c", strconv.Itoa(clients), "-n", strconv.Itoa(b.o.redisRequests), "-q"}
	if opt.DB != 0 {
		args = append(args, "--dbnum", strconv.Itoa(opt.DB))
	}
	if opt.Username != "" {
		args = append(args, "--user", opt.Username)
	}
	if opt.Password != "" {
		args = append(args, "-a", opt.Password, "--no-auth-warning")
	}
	args = append(args, "RPUSH", key, payload)
	shown := fmt.Sprintf("redis-benchmark -c %d -n %d -q RPUSH %s <%d-byte vote payload>", clients, b.o.redisRequests, key, len(payload))
	meter := newCPUMeter(map[string]int{"redis": b.redisPID(ctx)})
	r, err := runTool(ctx, os.Environ(), bin, args...)
	cpu := meter.use(r.cpu.Seconds() / time.Since(meter.start).Seconds())
	cpu.tool = "redis-benchmark"
	if b.rdb != nil {
		b.rdb.Del(context.WithoutCancel(ctx), key)
	}
	if err != nil {
		return redisLimit{command: shown}, err
	}
	if r.exit != 0 {
		return redisLimit{command: shown}, fmt.Errorf("redis-benchmark exited %d: %s", r.exit, firstLines(r.stderr+r.stdout, 3))
	}
	rps, err := parseRedisBenchmark(r.stdout)
	return redisLimit{rps: rps, command: shown, cpu: cpu}, err
}

func splitHostPort(addr, defPort string) (string, string, error) {
	if !strings.Contains(addr, ":") {
		return addr, defPort, nil
	}
	i := strings.LastIndexByte(addr, ':')
	host, port := strings.Trim(addr[:i], "[]"), addr[i+1:]
	if host == "" || port == "" {
		return "", "", fmt.Errorf("bad address %q", addr)
	}
	return host, port, nil
}

// ---- PostgreSQL: the store's upsert in pgbench -----------------------------

// unnestSource is how store.BatchUpsertSQL reads its batch: three parallel
// array parameters. The pgbench script replaces it with generated rows.
const unnestSource = "unnest($1::text[], $2::text[], $3::bigint[]) AS t(id, vote, cast_at)"

// pgVarRe finds pgbench variable references (:name); a `::cast` is not one.
var pgVarRe = regexp.MustCompile(`(^|[^:]):[A-Za-z_]`)

// pgbenchScript turns the store's batch upsert into a pgbench script: the
// same statement, fed by batch random new voters (random a/b, a nanosecond
// cast_at stamp like the vote service's) instead of array parameters, after
// the same advisory lock. With pipeline the two statements go out in one
// pipeline with one Sync, i.e. one round trip and one implicit transaction,
// exactly what pgx sends for ApplyVotes' batch; without it they run in an
// explicit BEGIN/COMMIT (two round trips more).
func pgbenchScript(upsert string, batch int, pipeline bool) (string, error) {
	if n := strings.Count(upsert, unnestSource); n != 1 {
		return "", fmt.Errorf("store.BatchUpsertSQL reads its batch from %q %d times, expected once: update bench/limits.go", unnestSource, n)
	}
	gen := fmt.Sprintf("(SELECT substr(md5(random()::text), 1, 16), "+
		"CASE WHEN random() < 0.5 THEN 'a' ELSE 'b' END, "+
		"(extract(epoch FROM clock_timestamp()) * 1e9)::bigint "+
		"FROM generate_series(1, %d)) AS t(id, vote, cast_at)", batch)
	sql := strings.TrimSpace(strings.Replace(upsert, unnestSource, gen, 1))
	switch {
	case strings.Contains(sql, "$"):
		return "", errors.New("store.BatchUpsertSQL has parameters besides the three arrays: update bench/limits.go")
	case strings.Contains(sql, ";"):
		return "", errors.New("store.BatchUpsertSQL contains ';', which ends a pgbench command early")
	case pgVarRe.MatchString(sql):
		return "", fmt.Errorf("store.BatchUpsertSQL contains %q, which pgbench reads as a variable", pgVarRe.FindString(sql))
	}
	var s strings.Builder
	s.WriteString("-- generated by services/bench from store.BatchUpsertSQL()\n")
	if pipeline {
		s.WriteString("\\startpipeline\n")
	} else {
		s.WriteString("BEGIN;\n")
	}
	fmt.Fprintf(&s, "SELECT pg_advisory_xact_lock(%d);\n%s;\n", store.WriteLockKey(), sql)
	if pipeline {
		s.WriteString("\\endpipeline\n")
	} else {
		s.WriteString("COMMIT;\n")
	}
	return s.String(), nil
}

var (
	pgTPSRe       = regexp.MustCompile(`tps = ([0-9]+(?:\.[0-9]+)?) \(without initial connection time\)`)
	pgLatRe       = regexp.MustCompile(`latency average = ([0-9]+(?:\.[0-9]+)?) ms`)
	pgFailedRe    = regexp.MustCompile(`number of failed transactions: ([0-9]+)`)
	pgProcessedRe = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

type pgbenchOut struct {
	tps, latencyMS    float64
	processed, failed int64
}

func parsePgbench(out string) (pgbenchOut, error) {
	var r pgbenchOut
	m := pgTPSRe.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no tps in pgbench output: %q", firstLines(out, 3))
	}
	r.tps, _ = strconv.ParseFloat(m[1], 64)
	if m := pgLatRe.FindStringSubmatch(out); m != nil {
		r.latencyMS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := pgProcessedRe.FindStringSubmatch(out); m != nil {
		r.processed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := pgFailedRe.FindStringSubmatch(out); m != nil {
		r.failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r, nil
}

func findPgbench() (string, error) {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	for _, pat := range []string{"/usr/lib/postgresql/15/bin/pgbench", "/usr/lib/postgresql/*/bin/pgbench"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[len(m)-1], nil
		}
	}
	return "", errors.New("pgbench not found on PATH or in /usr/lib/postgresql/*/bin")
}

// pgEnv passes the connection to pgbench the libpq way, so the password
// never appears in a process listing.
func pgEnv(dbURL string) ([]string, error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	sslmode := "disable"
	if cfg.TLSConfig != nil {
		sslmode = "require"
	}
	return append(env,
		"PGHOST="+cfg.Host, "PGPORT="+strconv.Itoa(int(cfg.Port)), "PGUSER="+cfg.User,
		"PGPASSWORD="+cfg.Password, "PGDATABASE="+cfg.Database, "PGSSLMODE="+sslmode,
		"PGAPPNAME=ladder-bench"), nil
}

type pgLimit struct {
	batch       int
	clients     int
	votesPerSec float64
	out         pgbenchOut
	pipelined   bool
	committed   int64 // voters in the tallies afterwards: proof the upsert ran
	command     string
	cpu         cpuUse
	note        string
}

// pgbenchUpsert runs the store's upsert in pgbench with clients connections
// (1 = the one flusher of a vote instance; a worker has a few lanes) on a
// fresh database.
func (b *bench) pgbenchUpsert(ctx context.Context, suffix string, batch, clients int) (pgLimit, error) {
	bin, err := findPgbench()
	if err != nil {
		return pgLimit{}, err
	}
	dbURL, err := b.freshDB(ctx, suffix)
	if err != nil {
		return pgLimit{}, err
	}
	defer b.dropDB(context.WithoutCancel(ctx), dbURL)
	env, err := pgEnv(dbURL)
	if err != nil {
		return pgLimit{}, err
	}
	lim := pgLimit{batch: batch, clients: clients}
	for _, pipeline := range []bool{true, false} {
		script, err := pgbenchScript(store.BatchUpsertSQL(), batch, pipeline)
		if err != nil {
			return pgLimit{}, err
		}
		path := filepath.Join(b.tmp, fmt.Sprintf("upsert-%s-%v.sql", suffix, pipeline))
		if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
			return pgLimit{}, err
		}
		secs := strconv.Itoa(int(b.o.pgbenchTime.Round(time.Second).Seconds()))
		lim.command = fmt.Sprintf("pgbench -n -c %d -T %s -M %s -f <store.BatchUpsertSQL() %s, %d voters/txn>",
			clients, secs, b.o.pgbenchMode, map[bool]string{true: "after the lock in one \\startpipeline", false: "after the lock in BEGIN/COMMIT"}[pipeline], batch)
		meter := newCPUMeter(nil)
		r, err := runTool(ctx, env, bin, "-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(clients), "-T", secs, "-M", b.o.pgbenchMode, "-f", path)
		lim.cpu = meter.use(r.cpu.Seconds() / time.Since(meter.start).Seconds())
		lim.cpu.tool = "pgbench"
		if err != nil {
			return lim, err
		}
		out, perr := parsePgbench(r.stdout)
		if r.exit == 0 && perr == nil {
			lim.out, lim.pipelined = out, pipeline
			lim.votesPerSec = out.tps * float64(batch)
			break
		}
		msg := firstLines(r.stderr, 3)
		if perr != nil && msg == "" {
			msg = perr.Error()
		}
		if !pipeline {
			return lim, fmt.Errorf("pgbench exited %d: %s", r.exit, msg)
		}
		lim.note = "pipelined script failed (" + msg + "); fell back to BEGIN/COMMIT"
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return lim, fmt.Errorf("connect to check pgbench rows: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, "SELECT COALESCE(sum(count), 0)::bigint FROM tallies").Scan(&lim.committed); err != nil {
		return lim, fmt.Errorf("count pgbench rows: %w", err)
	}
	return lim, nil
}
