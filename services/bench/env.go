package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/schema"
)

// bench owns everything the run creates, so cleanup can remove it whatever
// step failed.
type bench struct {
	o      options
	out    io.Writer
	tmp    string
	token  string // random part of every name: bench:<token>: keys, bench_<token>_* databases
	prefix string // Redis key prefix all bench keys live under
	bins   map[string]string
	// buildErr says why a service could not be built; steps needing it skip.
	buildErr map[string]error
	rdb      *redis.Client

	mu    sync.Mutex
	procs []*service
	dbs   []string
}

func newBench(ctx context.Context, o options, out io.Writer) (*bench, error) {
	id, err := ballot.NewVoterID()
	if err != nil {
		return nil, err
	}
	b := &bench{
		o: o, out: out, token: id[:10], bins: map[string]string{}, buildErr: map[string]error{},
	}
	b.prefix = "bench:" + b.token + ":"
	if b.tmp, err = os.MkdirTemp("", "ladder-bench-"); err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	fmt.Fprintf(out, "ladder services benchmark  %s\n", time.Now().Format(time.RFC3339))
	fmt.Fprintf(out, "machine: nproc %d, load average %s, %s/%s, %s\n",
		runtime.NumCPU(), loadAvg(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(out, "settings: -duration %s -concurrency %d -batch-size %d -pgbench-time %s -runs %d; Redis prefix %s, databases bench_%s_*\n",
		o.duration, o.concurrency, o.batchSize, o.pgbenchTime, o.runs, b.prefix, b.token)
	if o.redisURL != "" {
		opt, err := redis.ParseURL(o.redisURL)
		if err != nil {
			return b, fmt.Errorf("parse redis url: %w", err)
		}
		b.rdb = redis.NewClient(opt)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = b.rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			return b, fmt.Errorf("redis %s: %w", opt.Addr, err)
		}
	}
	if o.databaseURL != "" {
		c, err := b.admin(ctx)
		if err != nil {
			return b, err
		}
		c.Close(ctx)
	}
	return b, b.build(ctx)
}

// build compiles native binaries once, so the timed runs measure the
// services, not `go run`. A service that does not build only disables the
// steps that need it.
func (b *bench) build(ctx context.Context) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	dir := filepath.Dir(strings.TrimSpace(string(gomod)))
	if _, err := os.Stat(filepath.Join(dir, "cmd", "loadgen")); err != nil {
		return fmt.Errorf("run from the services module (services/bench/run.sh does): no cmd/loadgen under %q", dir)
	}
	start := time.Now()
	for _, svc := range []string{"loadgen", "vote", "worker", "result"} {
		out := filepath.Join(b.tmp, svc)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/"+svc)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.buildErr[svc] = fmt.Errorf("go build ./cmd/%s: %v: %s", svc, err, firstLines(string(msg), 3))
			fmt.Fprintf(b.out, "build: %v\n", b.buildErr[svc])
			continue
		}
		b.bins[svc] = out
	}
	fmt.Fprintf(b.out, "build: native binaries in %s (%s)\n", b.tmp, time.Since(start).Round(100*time.Millisecond))
	if b.buildErr["loadgen"] != nil {
		return b.buildErr["loadgen"]
	}
	return nil
}

// need reports why the listed binaries are unusable, or nil.
func (b *bench) need(svcs ...string) error {
	for _, s := range svcs {
		if err := b.buildErr[s]; err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) admin(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(cctx, b.o.databaseURL)
	if err != nil {
		return nil, fmt.Errorf("connect to admin database: %w", err)
	}
	return c, nil
}

// freshDB creates bench_<token>_<suffix> with the schema applied and
// returns its URL.
func (b *bench) freshDB(ctx context.Context, suffix string) (string, error) {
	name := "bench_" + b.token + "_" + suffix
	c, err := b.admin(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	b.mu.Lock()
	b.dbs = append(b.dbs, name)
	b.mu.Unlock()
	u, err := url.Parse(b.o.databaseURL)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	dbURL := u.String()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := schema.Apply(ctx, conn); err != nil {
		return "", fmt.Errorf("migrate %s: %w", name, err)
	}
	return dbURL, nil
}

// dropDB drops a bench database as soon as its step is done, so later steps
// do not share the page cache with it.
func (b *bench) dropDB(ctx context.Context, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	c, err := b.admin(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if err := dropDatabase(ctx, c, name); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, d := range b.dbs {
		if d == name {
			b.dbs = append(b.dbs[:i], b.dbs[i+1:]...)
			break
		}
	}
	return nil
}

// cleanup stops every process, drops every database and deletes every Redis
// key the run made. It uses its own deadline: the run's context may be the
// cancelled one that got us here.
func (b *bench) cleanup(stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b.mu.Lock()
	procs := append([]*service(nil), b.procs...)
	dbs := append([]string(nil), b.dbs...)
	b.mu.Unlock()
	for _, p := range procs {
		p.stop()
	}
	if len(dbs) > 0 {
		if c, err := b.admin(ctx); err != nil {
			fmt.Fprintf(stderr, "bench: cleanup: %v (left databases %s)\n", err, strings.Join(dbs, ", "))
		} else {
			for _, d := range dbs {
				if err := dropDatabase(ctx, c, d); err != nil {
					fmt.Fprintf(stderr, "bench: cleanup: %v\n", err)
				}
			}
			c.Close(ctx)
		}
	}
	if b.rdb != nil {
		n, err := deletePrefix(ctx, b.rdb, b.prefix)
		if err != nil {
			fmt.Fprintf(stderr, "bench: cleanup: delete Redis keys %s*: %v\n", b.prefix, err)
		} else if n > 0 {
			fmt.Fprintf(stderr, "bench: cleanup: deleted %d Redis keys %s*\n", n, b.prefix)
		}
		b.rdb.Close()
	}
	if b.tmp != "" {
		if b.o.keepTemp {
			fmt.Fprintf(stderr, "bench: kept %s\n", b.tmp)
		} else {
			os.RemoveAll(b.tmp)
		}
	}
}

// dropDatabase drops name, retrying for a while. WITH (FORCE) ends our own
// leftover sessions, but a role without pg_signal_backend may not end an
// autovacuum worker, and a freshly loaded database often has one; a plain
// DROP waits for autovacuum to go, so the two are alternated.
func dropDatabase(ctx context.Context, c *pgx.Conn, name string) error {
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		sql := "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
		if i%2 == 1 {
			sql = "DROP DATABASE IF EXISTS " + name
		}
		if _, err = c.Exec(ctx, sql); err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) (int, error) {
	n := 0
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
			return n, err
		}
		n++
	}
	return n, iter.Err()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}
