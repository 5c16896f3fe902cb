package main

// The canary against the REAL voting services (built from services/ and run
// as processes, as their images run them) on the real PostgreSQL and Redis
// of scripts/test-deps.sh: direct mode (vote commits to PostgreSQL, Tier 2)
// and queue mode (vote -> Redis -> worker -> PostgreSQL). The services'
// internal packages cannot be imported from this module, so the binaries
// are the way in; that also tests the protocol the canary really speaks.

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/testenv"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// serviceBinaries builds vote, worker and result once per test binary.
func serviceBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		services := filepath.Join(filepath.Dir(file), "..", "..", "services")
		binDir, buildErr = os.MkdirTemp("", "ladder-canary-services-")
		if buildErr != nil {
			return
		}
		for _, svc := range []string{"vote", "worker", "result"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, svc), "./cmd/"+svc)
			cmd.Dir = services
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = &buildError{svc: svc, out: string(out), err: err}
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

type buildError struct {
	svc, out string
	err      error
}

func (e *buildError) Error() string { return "build " + e.svc + ": " + e.err.Error() + "\n" + e.out }

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startService runs one service until the test ends and waits for /readyz.
func startService(t *testing.T, bin string, env ...string) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), append(env, "PORT="+strconv.Itoa(port), "LOG_LEVEL=warn", "DB_MIGRATE=true")...)
	var logs syncWriter
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", filepath.Base(bin), logs.String())
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30s (last: %v)\n%s", bin, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  []byte
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

func TestCanaryAgainstTheRealServices(t *testing.T) {
	for _, mode := range []string{"direct", "queue"} {
		t.Run(mode, func(t *testing.T) {
			bin := serviceBinaries(t)
			db := testenv.Database(t)
			env := []string{"DATABASE_URL=" + db, "VOTE_MODE=" + mode}
			if mode == "queue" {
				redisURL, prefix := testenv.Redis(t)
				env = append(env, "REDIS_URL="+redisURL, "REDIS_KEY_PREFIX="+prefix, "WORKER_ID=canary-test")
			}
			result := startService(t, filepath.Join(bin, "result"), env...)
			vote := startService(t, filepath.Join(bin, "vote"), env...)
			if mode == "queue" {
				startService(t, filepath.Join(bin, "worker"), env...)
			}
			cfg := Config{VoteURL: vote + "/", ResultURL: result, Wait: 5 * time.Second, Client: NewClient()}
			conn := testenv.Conn(t, db)
			for run := 1; run <= 3; run++ {
				o := Run(context.Background(), cfg)
				if !o.Success {
					t.Fatalf("run %d failed: %s (steps %+v)", run, o.Reason, o.Steps)
				}
				t.Logf("run %d: latency %s, steps %+v", run, o.Latency, o.Steps)
				var stored string
				var total int64
				if err := conn.QueryRow(context.Background(), `SELECT (SELECT vote FROM votes WHERE id = $1), (SELECT sum(count) FROM tallies)`, VoterID).Scan(&stored, &total); err != nil {
					t.Fatal(err)
				}
				if stored != "b" || total != 1 {
					t.Errorf("after run %d: canary voter stored %q, total %d; want b and 1", run, stored, total)
				}
			}
		})
	}
}
