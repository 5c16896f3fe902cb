package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// service is one running vote, worker or result process.
type service struct {
	name    string
	cmd     *exec.Cmd
	port    int
	logPath string
	started time.Time
	done    chan struct{}
	waitErr error
}

// configKeys are the variables the services read; inherited values are
// dropped so a developer's shell cannot change what is measured.
var configKeys = map[string]bool{
	"PORT": true, "OPTION_A": true, "OPTION_B": true, "VOTE_MODE": true,
	"REDIS_URL": true, "REDIS_PASSWORD_FILE": true, "REDIS_KEY_PREFIX": true,
	"DATABASE_URL": true, "DATABASE_PASSWORD_FILE": true, "DATABASE_SECRET_FILE": true, "DATABASE_READ_URL": true,
	"WORKER_ID": true, "BATCH_SIZE": true, "BATCH_LINGER": true, "WORKER_HEARTBEAT_TTL": true,
	"DB_MIGRATE": true, "SHUTDOWN_TIMEOUT": true,
}

func serviceEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !configKeys[k] {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+set[k])
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start launches a service binary with env on a free port, in its own
// process group so cleanup can signal it and nothing else.
func (b *bench) start(name string, env map[string]string) (*service, error) {
	if err := b.need(name); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	env["PORT"] = strconv.Itoa(port)
	env["SHUTDOWN_TIMEOUT"] = "5s"
	logPath := filepath.Join(b.tmp, fmt.Sprintf("%s-%d.log", name, port))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	cmd := exec.Command(b.bins[name])
	cmd.Env = serviceEnv(env)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s := &service{name: name, cmd: cmd, port: port, logPath: logPath, done: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	s.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	b.procs = append(b.procs, s)
	go func() {
		s.waitErr = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	return s, nil
}

func (s *service) url() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

func (s *service) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// waitReady polls GET /readyz until it answers 200.
func (s *service) waitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		if s.exited() {
			return fmt.Errorf("%s exited before it was ready (%v); log: %s", s.name, s.waitErr, s.logTail(5))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url()+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body[:n])))
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (last /readyz: %s); log: %s", s.name, timeout, last, s.logTail(5))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM to the process group and SIGKILL if it has not exited
// within its shutdown timeout.
func (s *service) stop() {
	if s.exited() {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(8 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
	}
}

func (s *service) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(empty)"
	}
	return strings.Join(lines, " | ")
}

// toolResult is the output of a command-line tool run to completion.
type toolResult struct {
	stdout, stderr string
	cpu            time.Duration // user+system CPU the tool used
	exit           int
}

// runTool runs a tool (loadgen, pgbench, redis-benchmark) and kills its
// process group if ctx ends. A non-zero exit is returned in exit, not as an
// error: loadgen exits 1 with a useful report.
func runTool(ctx context.Context, env []string, name string, args ...string) (toolResult, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := toolResult{stdout: out.String(), stderr: errb.String()}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		r.exit = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return r, fmt.Errorf("run %s: %w", filepath.Base(name), err)
	}
	return r, nil
}

// procCPU is the CPU time a process has used so far, from /proc; ok is
// false where that cannot be read (another OS, a remote Redis).
func procCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name may contain spaces; fields resume after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	// USER_HZ is 100 on every Linux the services run on.
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}

// machineCPU returns busy and total jiffies of all CPUs from /proc/stat.
func machineCPU() (busy, total int64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		// guest and guest_nice (fields 9, 10) are already in user and nice.
		if i >= 8 {
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, true
}

// postgresCPU sums the CPU time of every process named postgres: the server
// and its backends, whoever started them.
func postgresCPU() map[int]time.Duration {
	out := map[int]time.Duration{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if c, ok := procCPU(pid); ok {
			out[pid] = c
		}
	}
	return out
}

// cpuMeter measures cores used by a few processes, by PostgreSQL, and by the
// whole machine over an interval; what is left is other work on the box,
// which disturbs the figures.
type cpuMeter struct {
	start         time.Time
	pids          map[string]int
	before        map[string]time.Duration
	pgBefore      map[int]time.Duration
	busy0, total0 int64
	machineOK     bool

	// A sampler keeps the last CPU time seen of every PostgreSQL process,
	// so a backend that exits before the end (pgbench's) still counts.
	mu     sync.Mutex
	pgSeen map[int]time.Duration
	stop   chan struct{}
	done   chan struct{}
}

func newCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{
		start: time.Now(), pids: pids, before: map[string]time.Duration{}, pgBefore: postgresCPU(),
		pgSeen: map[int]time.Duration{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	for k, pid := range pids {
		if c, ok := procCPU(pid); ok {
			m.before[k] = c
		}
	}
	m.busy0, m.total0, m.machineOK = machineCPU()
	go func() {
		defer close(m.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.samplePostgres()
			}
		}
	}()
	return m
}

func (m *cpuMeter) samplePostgres() {
	now := postgresCPU()
	m.mu.Lock()
	defer m.mu.Unlock()
	for pid, c := range now {
		m.pgSeen[pid] = c
	}
}

// cpuUse is what a cpuMeter saw, in cores (1 = one CPU busy throughout).
type cpuUse struct {
	procs     map[string]float64 // per measured process
	loadgen   float64            // the load generator (or benchmark tool)
	tool      string             // its name, if not loadgen
	postgres  float64            // PostgreSQL server and backends (those that exited meanwhile are missed)
	machine   float64            // fraction of all CPUs busy, if machineOK
	machineOK bool
}

// use returns the average use since newCPUMeter and stops the meter (call
// it once); loadgen's comes from its exit status, as it is not running any
// more.
func (m *cpuMeter) use(loadgen float64) cpuUse {
	el := time.Since(m.start).Seconds()
	u := cpuUse{procs: map[string]float64{}, loadgen: loadgen}
	if el <= 0 {
		return u
	}
	for k, pid := range m.pids {
		b, ok1 := m.before[k]
		a, ok2 := procCPU(pid)
		if ok1 && ok2 {
			u.procs[k] = (a - b).Seconds() / el
		}
	}
	close(m.stop)
	<-m.done
	m.samplePostgres()
	var pg time.Duration
	for pid, c := range m.pgSeen {
		pg += max(0, c-m.pgBefore[pid]) // a backend started meanwhile counts whole
	}
	u.postgres = pg.Seconds() / el
	if busy, total, ok := machineCPU(); ok && m.machineOK && total > m.total0 {
		u.machine, u.machineOK = float64(busy-m.busy0)/float64(total-m.total0), true
	}
	return u
}

func (u cpuUse) toolName() string {
	if u.tool != "" {
		return u.tool
	}
	return "loadgen"
}

// listed is the cores used by the processes measured one by one.
func (u cpuUse) listed() float64 {
	t := u.loadgen + u.postgres
	for _, v := range u.procs {
		t += v
	}
	return t
}

// other is the machine's busy time not accounted for by the bench's own
// processes: other work sharing the box during the step.
func (u cpuUse) other() float64 {
	if !u.machineOK {
		return 0
	}
	return max(0, u.machine*float64(nproc())-u.listed())
}

// disturbed is true when other work took a noticeable share of the CPUs.
func (u cpuUse) disturbed() bool { return u.other() >= 0.3 }

func (u cpuUse) String() string {
	var parts []string
	for _, k := range []string{"vote", "worker", "result", "redis"} {
		if v, ok := u.procs[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
		}
	}
	parts = append(parts, fmt.Sprintf("postgres %.2f", u.postgres))
	if u.loadgen > 0 {
		parts = append(parts, fmt.Sprintf("%s %.2f", u.toolName(), u.loadgen))
	}
	s := "CPU cores used: " + strings.Join(parts, ", ")
	if u.machineOK {
		s += fmt.Sprintf("; machine %.0f%% busy (%.2f of %d cores), other work %.2f (outside the processes listed: other tenants of this machine, kernel)",
			100*u.machine, u.machine*float64(nproc()), nproc(), u.other())
		if u.disturbed() {
			s += " - DISTURBED: other work on this machine competed with this step"
		}
	}
	return s
}

// saturated reports whether the CPUs were (nearly) all busy.
func (u cpuUse) saturated() bool {
	if u.machineOK {
		return u.machine >= 0.85
	}
	return u.listed() >= 0.85*float64(nproc())
}

func (u cpuUse) short() string {
	if u.machineOK {
		return fmt.Sprintf("machine CPU %.0f%% busy, other work %.2f cores", 100*u.machine, u.other())
	}
	return fmt.Sprintf("measured processes used %.2f of %d cores", u.listed(), nproc())
}
