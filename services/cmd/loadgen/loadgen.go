package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// newVoteClient returns the HTTP client for votes: one keep-alive HTTP/1.1
// connection per concurrent request, no redirects followed (a 3xx is not a
// success), no transparent gzip.
func newVoteClient(concurrency int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          concurrency,
		MaxIdleConnsPerHost:   concurrency,
		MaxConnsPerHost:       concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func newResultClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeout,
		// No ResponseHeaderTimeout/Client.Timeout: /events is a long stream;
		// polls are bounded by their context instead.
	}
	return &http.Client{Transport: tr}
}

// outcome of one vote request.
type outcome int

const (
	accepted  outcome = iota // 2xx
	rejected                 // non-2xx status: the vote was not taken
	refused                  // never reached the server (connection refused)
	ambiguous                // transport error after sending: it may have been taken
)

// runner holds the state of one load run.
type runner struct {
	cfg    *config
	client *http.Client
	plan   *planner
	sched  schedule

	slot     atomic.Int64 // next slot to claim
	sent     atomic.Int64
	accepted atomic.Int64
	failed   atomic.Int64
	lateStop atomic.Bool // a worker stopped because the time bound passed with due slots left

	mu          sync.Mutex
	statuses    map[int]int64    // non-2xx responses by status
	errs        map[string]int64 // transport errors by class
	errExample  map[string]string
	firstOK     int64 // distinct voters with an accepted vote
	revoteOK    int64
	ambFirst    int64 // first votes whose fate is unknown (transport error)
	ambRevote   int64
	deltaA      int64 // expected change of the A count
	deltaB      int64
	acceptedDue []time.Time // e2e: due time of every accepted vote
	lastDone    time.Time
}

func newRunner(cfg *config, start time.Time) *runner {
	return &runner{
		cfg:        cfg,
		client:     newVoteClient(cfg.concurrency, cfg.timeout),
		plan:       newPlanner(cfg.voters, cfg.revote),
		sched:      newSchedule(start, cfg.rate, cfg.duration, cfg.votes),
		statuses:   map[int]int64{},
		errs:       map[string]int64{},
		errExample: map[string]string{},
	}
}

// sleepUntil sleeps until t or until ctx ends; it reports whether t was reached.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// work is one worker: it claims slots in order, waits until each is due,
// sends the vote and records the latency from the due time (open loop), so
// time a slot spent waiting for a free connection counts against the server.
func (r *runner) work(ctx context.Context, h *hist) {
	s := r.sched
	for ctx.Err() == nil {
		i := r.slot.Add(1) - 1
		if !s.inPlan(i) {
			return
		}
		if !s.end.IsZero() && !time.Now().Before(s.end) {
			if s.interval > 0 {
				r.lateStop.Store(true)
			}
			return
		}
		start := s.due(i)
		if s.interval > 0 {
			if !sleepUntil(ctx, start) {
				return
			}
		} else {
			start = time.Now()
		}
		v, kind := r.plan.next()
		for kind == nextWait {
			// Only revotes are left and their first votes are in flight;
			// that wait is the generator's, not the server's.
			if !sleepUntil(ctx, time.Now().Add(time.Millisecond)) {
				return
			}
			if !s.end.IsZero() && !time.Now().Before(s.end) {
				return
			}
			v, kind = r.plan.next()
			start = time.Now()
		}
		if kind == nextDone {
			return
		}
		r.sent.Add(1)
		out, status, err := r.send(v)
		done := time.Now()
		if out == accepted {
			h.record(done.Sub(start))
		}
		r.record(v, out, status, err, start, done)
	}
}

func (r *runner) send(v vote) (outcome, int, error) {
	body := "vote=" + string(v.choice)
	// Requests are not tied to the run's context: stopping early (Ctrl-C)
	// lets in-flight votes finish, so their outcome is known.
	req, err := http.NewRequest(http.MethodPost, r.cfg.voteURL, strings.NewReader(body))
	if err != nil {
		return refused, 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "voter_id="+v.voterID())
	resp, err := r.client.Do(req)
	if err != nil {
		if isRefused(err) {
			return refused, 0, err
		}
		return ambiguous, 0, err
	}
	// Drain the page so the connection is reused; a 2xx already means the
	// vote was taken, whatever happens to the rest of the body.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return accepted, resp.StatusCode, nil
	}
	return rejected, resp.StatusCode, nil
}

func isRefused(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial" && !opErr.Timeout()
}

// errClass buckets a transport error for the report.
func errClass(err error) string {
	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no local ports left"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "dns"
	}
	return "other"
}

func (r *runner) record(v vote, out outcome, status int, err error, due, done time.Time) {
	r.mu.Lock()
	if done.After(r.lastDone) {
		r.lastDone = done
	}
	switch out {
	case accepted:
		r.accepted.Add(1)
		if v.revote {
			r.revoteOK++
			if v.choice == 'a' {
				r.deltaA++
				r.deltaB--
			} else {
				r.deltaB++
				r.deltaA--
			}
		} else {
			r.firstOK++
			if v.choice == 'a' {
				r.deltaA++
			} else {
				r.deltaB++
			}
		}
		if r.cfg.e2e {
			r.acceptedDue = append(r.acceptedDue, due)
		}
	case rejected:
		r.failed.Add(1)
		r.statuses[status]++
	default:
		r.failed.Add(1)
		c := errClass(err)
		r.errs[c]++
		if _, ok := r.errExample[c]; !ok {
			r.errExample[c] = err.Error()
		}
		if out == ambiguous {
			if v.revote {
				r.ambRevote++
			} else {
				r.ambFirst++
			}
		}
	}
	r.mu.Unlock()
	if v.revoter {
		r.plan.firstResolved(v, out == accepted)
	}
}

// progressLoop prints a line to w every interval until ctx ends.
func (r *runner) progressLoop(ctx context.Context, w io.Writer, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastAcc int64
	last := r.sched.start
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			acc := r.accepted.Load()
			rate := float64(acc-lastAcc) / now.Sub(last).Seconds()
			fmt.Fprintf(w, "loadgen: %5.0fs sent=%d accepted=%d failed=%d (%.0f/s)\n",
				now.Sub(r.sched.start).Seconds(), r.sent.Load(), acc, r.failed.Load(), rate)
			lastAcc, last = acc, now
		}
	}
}

// e2eLatencies pairs the k-th accepted vote (in due-time order) with the
// first event whose total reached base+k. Votes never seen are "missing".
func e2eLatencies(due []time.Time, events []event, base int64) (lat []time.Duration, missing int) {
	due = slices.Clone(due)
	slices.SortFunc(due, func(a, b time.Time) int { return a.Compare(b) })
	j := 0
	var best int64 = -1 << 62
	for k := range due {
		want := base + int64(k+1)
		for best < want && j < len(events) {
			best = max(best, events[j].total)
			j++
		}
		if best < want {
			return lat, len(due) - k
		}
		d := events[j-1].at.Sub(due[k])
		lat = append(lat, max(d, 0))
	}
	return lat, 0
}
