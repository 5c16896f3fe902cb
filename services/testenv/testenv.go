// Package testenv gives integration tests isolated pieces of the real Redis
// and PostgreSQL servers started by scripts/test-deps.sh: a fresh database
// per test and a unique Redis key prefix, both removed when the test ends.
package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/schema"
)

const (
	dbEnv    = "LADDER_TEST_DATABASE_URL"
	redisEnv = "LADDER_TEST_REDIS_URL"
)

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	msg := fmt.Sprintf("%s is not set: run `eval \"$(scripts/test-deps.sh)\"` first (or `make test`)", name)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// AdminURL is the test server's URL for the test role (CREATEDB,
// CREATEROLE), for tests that manage databases or roles themselves.
func AdminURL(t testing.TB) string {
	t.Helper()
	return need(t, dbEnv)
}

// Token is a short random name part for this test's resources.
func Token() string {
	id, _ := ballot.NewVoterID()
	return id[:12]
}

// Database creates an empty database t_<random>, returns its URL and drops
// it (terminating leftover connections) when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	admin := need(t, dbEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test postgres: %v", err)
	}
	defer conn.Close(ctx)
	name := "t_" + Token()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer c.Close(ctx)
		// FORCE cannot terminate an autovacuum worker for a non-superuser
		// role, so a drop that races one is retried once it has finished. A
		// database still left over is dropped by the next scripts/test-deps.sh
		// (as the superuser); it is not a failure of the test that made it.
		var derr error
		for i := 0; i < 50; i++ {
			if _, derr = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); derr == nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("left test database %s behind: %v", name, derr)
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", dbEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// DatabaseName returns the database name of a URL from Database.
func DatabaseName(t testing.TB, dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path[1:]
}

// MigratedDatabase is Database with the schema applied.
func MigratedDatabase(t testing.TB) string {
	t.Helper()
	u := Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	defer conn.Close(ctx)
	if err := schema.Apply(ctx, conn); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return u
}

// Redis returns the test Redis URL and a unique key prefix whose keys are
// deleted when the test ends.
func Redis(t testing.TB) (redisURL, prefix string) {
	t.Helper()
	redisURL = need(t, redisEnv)
	prefix = "t:" + Token() + ":"
	t.Cleanup(func() {
		opt, err := redis.ParseURL(redisURL)
		if err != nil {
			return
		}
		c := redis.NewClient(opt)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return redisURL, prefix
}

// RedisClient opens a client to the test Redis, closed at test end.
func RedisClient(t testing.TB, redisURL string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// Conn opens a plain connection to dbURL, closed at test end.
func Conn(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
