package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/httpserver"
	"github.com/ladder-cdk/ladder/services/internal/logging"
	"github.com/ladder-cdk/ladder/services/internal/sink"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// TestMain lets a test run the real main in a child process: the child
// gets its arguments from VOTE_TEST_MAIN_ARGS.
func TestMain(m *testing.M) {
	if args := os.Getenv("VOTE_TEST_MAIN_ARGS"); args != "" {
		os.Args = strings.Fields(args)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type server struct {
	url     string
	backend sink.Backend
	stop    context.CancelFunc
	done    chan error // Serve's result
	logs    *testenv.Logs
	client  *http.Client
}

// start loads the configuration from env (as the service does) and serves
// it on a loopback port until the test ends or stop is called.
func start(t *testing.T, env map[string]string) *server {
	t.Helper()
	cfg, err := config.LoadFrom(config.Vote, config.Env{
		Getenv:   func(k string) string { return env[k] },
		ReadFile: os.ReadFile,
		Hostname: func() (string, error) { return "test", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Logs{}
	log := logging.NewTo(logs, "vote", "debug")
	ctx, cancel := context.WithCancel(context.Background())
	opts, backend, err := setup(ctx, cfg, "test-host", log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &server{url: "http://" + ln.Addr().String(), backend: backend, stop: cancel, done: make(chan error, 1), logs: logs,
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}}
	go func() { s.done <- httpserver.Serve(ctx, ln, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	})
	return s
}

func (s *server) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := s.client.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *server) vote(voter, option string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, s.url+"/", strings.NewReader(url.Values{"vote": {option}}.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "voter_id="+voter)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (s *server) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := s.get(t, "/readyz")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countVotes(t *testing.T, dbURL string) int {
	t.Helper()
	var n int
	if err := testenv.Conn(t, dbURL).QueryRow(context.Background(), "SELECT count(*) FROM votes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// SIGTERM (here: the context ending) while votes wait in the group commit:
// the requests complete with 200 and their votes are in PostgreSQL.
func TestGracefulShutdownDirectModeCommitsInFlightVotes(t *testing.T) {
	dbURL := testenv.MigratedDatabase(t)
	s := start(t, map[string]string{
		"VOTE_MODE": "direct", "DATABASE_URL": dbURL,
		// A long linger holds the votes in the batcher while we stop.
		"BATCH_LINGER": "400ms", "BATCH_SIZE": "1000", "SHUTDOWN_TIMEOUT": "15s",
	})
	s.waitReady(t)
	const n = 25
	codes := make(chan error, n)
	for i := range n {
		go func() {
			code, err := s.vote(fmt.Sprintf("%016x", 0x5000+i), []string{"a", "b"}[i%2])
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("status %d", code)
			}
			codes <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.backend.Stats().Pending != n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d votes reached the batcher", s.backend.Stats().Pending)
		}
		time.Sleep(time.Millisecond)
	}
	if got := countVotes(t, dbURL); got != 0 {
		t.Fatalf("%d votes committed before the linger ended; the test would prove nothing", got)
	}
	s.stop()
	for range n {
		if err := <-codes; err != nil {
			t.Fatalf("in-flight vote during shutdown: %v", err)
		}
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop")
	}
	s.done <- nil // for the cleanup
	if got := countVotes(t, dbURL); got != n {
		t.Fatalf("%d votes committed, want %d", got, n)
	}
	if st := s.backend.Stats(); st.Items != n || st.Pending != 0 {
		t.Fatalf("stats after shutdown %+v", st)
	}
	if _, err := s.vote("0000000000000fff", "a"); err == nil {
		t.Fatal("server still accepting after shutdown")
	}
}

// Redis away at start: the service serves, says why it is not ready, and
// refuses votes with 503 instead of acknowledging them.
func TestStartsWithoutRedis(t *testing.T) {
	s := start(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"})
	if code, body := s.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d %s", code, body)
	}
	if code, body := s.get(t, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"redis"`) {
		t.Fatalf("readyz %d %s", code, body)
	}
	if code, body := s.get(t, "/"); code != http.StatusOK || !strings.Contains(body, "Cats") {
		t.Fatalf("GET / %d", code)
	}
	if code, err := s.vote("00000000000000aa", "a"); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("POST with redis down = %d, %v; want 503", code, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.logs.String(), `"msg":"waiting for redis: `) {
		if time.Now().After(deadline) {
			t.Fatalf("no waiting-for-redis log line in:\n%s", s.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Queue mode end to end over HTTP, including the metrics endpoint.
func TestQueueModeOverHTTP(t *testing.T) {
	redisURL, prefix := testenv.Redis(t)
	s := start(t, map[string]string{"REDIS_URL": redisURL, "REDIS_KEY_PREFIX": prefix, "OPTION_A": "Tea", "OPTION_B": "Coffee"})
	s.waitReady(t)
	if code, body := s.get(t, "/"); code != http.StatusOK || !strings.Contains(body, "Tea") || !strings.Contains(body, "Coffee") ||
		!strings.Contains(body, "test-host") {
		t.Fatalf("GET / %d %s", code, body)
	}
	if code, err := s.vote("00000000000000ab", "b"); err != nil || code != http.StatusOK {
		t.Fatalf("POST = %d, %v", code, err)
	}
	n, err := testenv.RedisClient(t, redisURL).LLen(context.Background(), prefix+"votes").Result()
	if err != nil || n != 1 {
		t.Fatalf("LLEN %svotes = %d, %v", prefix, n, err)
	}
	_, metrics := s.get(t, "/metrics")
	for _, want := range []string{`ladder_votes_accepted_total{option="b"}`, `ladder_batch_size_votes_count{source="vote_queue"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// DB_MIGRATE=true on an empty database: the service applies the schema,
// becomes ready, and votes land.
func TestDirectModeMigratesAtStart(t *testing.T) {
	dbURL := testenv.Database(t)
	s := start(t, map[string]string{"VOTE_MODE": "direct", "DATABASE_URL": dbURL, "DB_MIGRATE": "true"})
	s.waitReady(t)
	if code, err := s.vote("00000000000000ac", "a"); err != nil || code != http.StatusOK {
		t.Fatalf("POST = %d, %v", code, err)
	}
	if got := countVotes(t, dbURL); got != 1 {
		t.Fatalf("%d votes stored", got)
	}
}

func runMain(t *testing.T, args string, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append([]string{"VOTE_TEST_MAIN_ARGS=" + args}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

func TestConfigErrorExits2WithOneLine(t *testing.T) {
	code, stderr := runMain(t, "vote", "VOTE_MODE=sideways")
	if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "VOTE_MODE") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, stderr = runMain(t, "vote") // queue mode without REDIS_URL
	if code != 2 || !strings.Contains(stderr, "REDIS_URL") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestHealthcheckArgument(t *testing.T) {
	redisURL, prefix := testenv.Redis(t)
	s := start(t, map[string]string{"REDIS_URL": redisURL, "REDIS_KEY_PREFIX": prefix})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.url, "http://"))
	if code, stderr := runMain(t, "vote healthcheck", "PORT="+port, "REDIS_URL="+redisURL); code != 0 {
		t.Fatalf("healthcheck of a running server: exit %d %s", code, stderr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	if code, _ := runMain(t, "vote healthcheck", "PORT="+free, "REDIS_URL="+redisURL); code != 1 {
		t.Fatalf("healthcheck with nothing listening: exit %d, want 1", code)
	}
}
