// Package testdb gives the Lambda handlers' integration tests a fresh
// database on the real PostgreSQL started by scripts/test-deps.sh
// (LADDER_TEST_DATABASE_URL, a role with CREATEDB), dropped when the test
// ends. Without that variable a test is skipped, or fails under CI=true so
// a CI run can never pass by skipping it.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	dbEnv    = "LADDER_TEST_DATABASE_URL"
	redisEnv = "LADDER_TEST_REDIS_URL"
)

// Need returns the environment variable name's value or skips (fails in CI).
func Need(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := name + " is not set: run `eval \"$(scripts/test-deps.sh)\"` first (or `make test`)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// RedisURL is the test Redis (LADDER_TEST_REDIS_URL).
func RedisURL(t testing.TB) string { return Need(t, redisEnv) }

// Token is a short random name part.
func Token() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Create makes an empty database named prefix_<random> and returns its URL
// (with the test role's credentials).
func Create(t testing.TB, prefix string) *url.URL {
	t.Helper()
	admin := Need(t, dbEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ac, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test postgres: %v", err)
	}
	defer ac.Close(ctx)
	name := prefix + "_" + Token()
	if _, err := ac.Exec(ctx, "CREATE DATABASE "+name); err != nil {
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
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u
}

// Conn opens a connection to u, closed when the test ends.
func Conn(t testing.TB, u *url.URL) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
