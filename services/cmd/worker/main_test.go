package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/worker"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// The test binary doubles as the worker binary: with this variable set it
// runs main, so exit codes and output are checked without a separate build.
const asMain = "LADDER_TEST_WORKER_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	code := m.Run()
	testenv.StopDynalite()
	os.Exit(code)
}

// runMain runs main in a child process with exactly env (plus asMain).
func runMain(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(env, asMain+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func TestConfigErrorExits2WithOneLine(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		name string // the variable the line must name
	}{
		{[]string{"REDIS_URL=redis://r:6379", "DATABASE_URL=postgres://u@db/x", "BATCH_SIZE=lots"}, "BATCH_SIZE"},
		{[]string{"DATABASE_URL=postgres://u@db/x"}, "REDIS_URL"},
		{[]string{"REDIS_URL=redis://r:6379", "DATABASE_URL=mysql://u:hunter2@db:3306/x"}, "DATABASE_URL"},
	} {
		code, out, errOut := runMain(t, tc.env)
		if code != 2 {
			t.Errorf("%v: exit code %d, want 2; stdout %q stderr %q", tc.env, code, out, errOut)
			continue
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], tc.name) {
			t.Errorf("%v: want one line naming %s, got %q", tc.env, tc.name, out)
		}
		if strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%v: a password was printed: %q", tc.env, out)
		}
	}
}

func TestUnknownArgumentExits2(t *testing.T) {
	if code, _, errOut := runMain(t, nil, "drain"); code != 2 || !strings.Contains(errOut, "healthcheck") {
		t.Fatalf("exit %d, stderr %q; want 2 and a hint", code, errOut)
	}
}

func TestRunDrainsMigratesAndServes(t *testing.T) {
	redisURL, prefix := testenv.Redis(t)
	dbURL := testenv.Database(t) // empty: DB_MIGRATE must create the schema
	vars := map[string]string{
		"REDIS_URL": redisURL, "REDIS_KEY_PREFIX": prefix, "DATABASE_URL": dbURL,
		"WORKER_ID": "main-test", "DB_MIGRATE": "true", "WORKER_HEARTBEAT_TTL": "1s", "SHUTDOWN_TIMEOUT": "5s",
	}
	cfg, err := config.LoadFrom(config.Worker, config.Env{
		Getenv:   func(k string) string { return vars[k] },
		ReadFile: os.ReadFile,
		Hostname: os.Hostname,
		Pid:      os.Getpid(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.NewJSONHandler(t.Output(), nil)), ln) }()

	rdb := testenv.RedisClient(t, redisURL)
	keys := queue.NewKeys(prefix)
	p := queue.NewProducer(rdb, keys)
	want := map[string]string{}
	for i := range 100 { // 50 voters voting twice; the second vote wins
		v := ballot.Vote{VoterID: fmt.Sprintf("%016x", i%50), Option: ballot.Options[(i/50+i/7)%2], CastAt: int64(i + 1)}
		want[v.VoterID] = v.Option
		b, err := ballot.Encode(v, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Push(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := rdb.LLen(ctx, keys.Votes()).Result()
		m, err2 := rdb.LLen(ctx, keys.Processing("main-test")).Result()
		m2, _ := rdb.LLen(ctx, keys.Processing(worker.LaneID("main-test", 1))).Result()
		m += m2
		if err == nil && err2 == nil && n+m == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("votes not drained: %d queued, %d in processing (%v, %v)", n, m, err, err2)
		}
		time.Sleep(20 * time.Millisecond)
	}

	db := testenv.Conn(t, dbURL)
	rows, err := db.Query(ctx, "SELECT id, vote FROM votes")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var id, vote string
		if err := rows.Scan(&id, &vote); err != nil {
			t.Fatal(err)
		}
		got[id] = vote
	}
	if !maps.Equal(got, want) {
		t.Errorf("votes table %v, want %v", got, want)
	}

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	code, body := get(t, base+"/readyz")
	var ready map[string]string
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 200 ||
		ready["redis"] != "ok" || ready["postgres"] != "ok" || ready["migrations"] != "ok" {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "ladder_worker_drained_votes_total 100") {
		t.Error("/metrics does not report 100 drained votes")
	}
	if code, _, _ := runMain(t, []string{"PORT=" + strconv.Itoa(port)}, "healthcheck"); code != 0 {
		t.Errorf("healthcheck of a running worker exited %d", code)
	}

	cancel() // SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of SIGTERM")
	}
	if n, _ := rdb.Exists(context.Background(), keys.Heartbeat("main-test"), keys.Heartbeat(worker.LaneID("main-test", 1))).Result(); n != 0 {
		t.Error("heartbeat left after a clean stop")
	}
	if code, _, _ := runMain(t, []string{"PORT=" + strconv.Itoa(port)}, "healthcheck"); code != 1 {
		t.Errorf("healthcheck of a stopped worker exited %d, want 1", code)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
