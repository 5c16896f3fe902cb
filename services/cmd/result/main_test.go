package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// The tests run the real main in a child process: the test binary re-executes
// itself with runMainEnv set.
const runMainEnv = "LADDER_RESULT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Args = append([]string{"result"}, strings.Fields(os.Getenv(runMainEnv+"_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs main with exactly env (nothing inherited) and args.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Env = append(env, runMainEnv+"=1", runMainEnv+"_ARGS="+strings.Join(args, " "))
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("still running after %s; output:\n%s", d, p.output())
	}
	return -1
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitStatus(t *testing.T, p *proc, url string, code int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == code {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s never answered %d (last %v); output:\n%s", url, code, err, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConfigErrorExits2WithOneLine(t *testing.T) {
	p := start(t, []string{"PORT=8081"})
	if code := p.wait(t, 10*time.Second); code != 2 {
		t.Fatalf("exit %d, want 2; output:\n%s", code, p.output())
	}
	out := strings.TrimSpace(p.output())
	if strings.Count(out, "\n") != 0 || !strings.Contains(out, "DATABASE_URL") {
		t.Fatalf("want one line naming DATABASE_URL, got:\n%s", out)
	}
}

func TestUnknownArgumentExits2(t *testing.T) {
	p := start(t, nil, "serve")
	if code := p.wait(t, 10*time.Second); code != 2 {
		t.Fatalf("exit %d, want 2; output:\n%s", code, p.output())
	}
}

// Starting with DB_MIGRATE=true on an empty database: the schema is applied,
// the service becomes ready, serves the tally, and SIGTERM stops it promptly
// although an SSE stream is open.
func TestMigratesServesAndStops(t *testing.T) {
	u := testenv.Database(t)
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	p := start(t, []string{"PORT=" + strconv.Itoa(port), "DATABASE_URL=" + u, "DB_MIGRATE=true",
		"OPTION_A=Tea", "OPTION_B=Coffee", "SHUTDOWN_TIMEOUT=30s"})
	waitStatus(t, p, base+"/readyz", 200)

	st, err := store.OpenPostgres(context.Background(), store.Options{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.ApplyVotes(context.Background(), []ballot.Vote{
		{VoterID: "00000000000000a1", Option: "a", CastAt: 1}, {VoterID: "00000000000000b1", Option: "b", CastAt: 1},
		{VoterID: "00000000000000b2", Option: "b", CastAt: 1}}); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/api/results")
		if err != nil {
			t.Fatal(err)
		}
		res = nil
		_ = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if fmt.Sprint(res["total"]) == "3" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if fmt.Sprint(res) != "map[a:1 b:2 option_a:Tea option_b:Coffee total:3]" {
		t.Fatalf("/api/results = %v", res)
	}

	hc := start(t, []string{"PORT=" + strconv.Itoa(port)}, "healthcheck")
	if code := hc.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("healthcheck exit %d: %s", code, hc.output())
	}

	resp, err := http.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 512)
	if n, err := resp.Body.Read(buf); err != nil || !strings.Contains(string(buf[:n]), `"total":3`) {
		t.Fatalf("first event %q, %v", buf[:n], err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM; output:\n%s", code, p.output())
	}
	for _, s := range []string{`"msg":"database schema is up to date"`, `"msg":"stopped"`} {
		if !strings.Contains(p.output(), s) {
			t.Fatalf("log lacks %s:\n%s", s, p.output())
		}
	}
}

// With PostgreSQL away the service still starts, is alive but not ready, and
// says what it waits for.
func TestStartsWhilePostgresIsDown(t *testing.T) {
	port := freePort(t)
	deadDB := fmt.Sprintf("postgres://nobody:secret@127.0.0.1:%d/ladder?sslmode=disable", freePort(t))
	p := start(t, []string{"PORT=" + strconv.Itoa(port), "DATABASE_URL=" + deadDB, "DB_MIGRATE=true"})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitStatus(t, p, base+"/healthz", 200)
	waitStatus(t, p, base+"/readyz", 503)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.output(), "waiting for postgres: ") {
		if time.Now().After(deadline) {
			t.Fatalf("no 'waiting for postgres' log line:\n%s", p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, err := http.Get(base + "/api/results"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("/api/results without a database: %v %v", resp, err)
	}
	if strings.Contains(p.output(), "secret") {
		t.Fatalf("log shows the database password:\n%s", p.output())
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM; output:\n%s", code, p.output())
	}
}
