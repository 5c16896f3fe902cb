package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer mimics only the HTTP surface of the vote and result services:
// it counts form posts per voter (a later vote replaces the earlier one) and
// serves the tally on /api/results and /events. No Redis, no PostgreSQL: it
// tests loadgen's client, not the backends.
type fakeServer struct {
	*httptest.Server
	countDelay   time.Duration // a vote shows in the tally this long after its response
	failEvery    int           // every n-th POST answers 503 (0 = never)
	dropEvery    int           // every n-th accepted vote is never counted (0 = never)
	firstWins    bool          // bug mode: a revote does not replace the first vote
	slow         time.Duration // response delay
	voterIDRegex *regexp.Regexp

	queue   chan delayed
	mu      sync.Mutex
	posts   int
	bad     int
	votes   map[string]string
	changed chan struct{}
}

func newFakeServer(t *testing.T, countDelay time.Duration, opts ...func(*fakeServer)) *fakeServer {
	f := &fakeServer{
		countDelay:   countDelay,
		voterIDRegex: regexp.MustCompile(`^[0-9a-f]{16}$`),
		votes:        map[string]string{},
		changed:      make(chan struct{}),
	}
	for _, o := range opts {
		o(f)
	}
	f.queue = make(chan delayed, 1<<16)
	go func() {
		for d := range f.queue {
			time.Sleep(time.Until(d.at))
			d.apply()
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", f.vote)
	mux.HandleFunc("GET /api/results", f.results)
	mux.HandleFunc("GET /events", f.events)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

type delayed struct {
	at    time.Time
	apply func()
}

func (f *fakeServer) tally() tally {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := tally{OptionA: "Cats", OptionB: "Dogs"}
	for _, v := range f.votes {
		if v == "a" {
			t.A++
		} else {
			t.B++
		}
	}
	t.Total = t.A + t.B
	return t
}

func (f *fakeServer) vote(w http.ResponseWriter, r *http.Request) {
	if f.slow > 0 {
		time.Sleep(f.slow)
	}
	c, err := r.Cookie("voter_id")
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || err != nil ||
		!f.voterIDRegex.MatchString(c.Value) || r.ParseForm() != nil ||
		(r.PostForm.Get("vote") != "a" && r.PostForm.Get("vote") != "b") {
		f.mu.Lock()
		f.bad++
		f.mu.Unlock()
		http.Error(w, "bad vote", http.StatusBadRequest)
		return
	}
	id, choice := c.Value, r.PostForm.Get("vote")
	f.mu.Lock()
	f.posts++
	n := f.posts
	f.mu.Unlock()
	if f.failEvery > 0 && n%f.failEvery == 0 {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	apply := func() {
		f.mu.Lock()
		if _, had := f.votes[id]; !(had && f.firstWins) && !(f.dropEvery > 0 && n%f.dropEvery == 0) {
			f.votes[id] = choice
		}
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	}
	if f.countDelay > 0 {
		// Count in response order, like a FIFO queue and its worker.
		f.queue <- delayed{at: time.Now().Add(f.countDelay), apply: apply}
	} else {
		apply()
	}
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, "<html><body>thanks "+strings.Repeat("x", 2000)+"</body></html>")
}

func (f *fakeServer) results(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(f.tally())
}

func (f *fakeServer) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	io.WriteString(w, ": hello\n\n")
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		b, _ := json.Marshal(f.tally())
		fmt.Fprintf(w, "event: tally\ndata: %s\n\n", b)
		fl.Flush()
		select {
		case <-ch:
			time.Sleep(2 * time.Millisecond) // coalesce like the real service
		case <-r.Context().Done():
			return
		}
	}
}

func runJSON(t *testing.T, args ...string) (*summary, int, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(append(args, "-json", "-progress", "0"), &out, &errOut)
	var s summary
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s\nstderr: %s", err, out.String(), errOut.String())
	}
	return &s, code, errOut.String()
}

func TestAgainstFakeServerFastWithCheck(t *testing.T) {
	f := newFakeServer(t, 20*time.Millisecond)
	// Pre-existing votes: the check must work from the baseline.
	f.votes["00000000000000aa"] = "a"
	f.votes["00000000000000bb"] = "b"
	s, code, stderr := runJSON(t, "-vote-url", f.URL+"/", "-result-url", f.URL, "-votes", "2000",
		"-concurrency", "16", "-revote", "0.2", "-settle", "5s")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s, summary %+v check %+v", code, stderr, s, s.Check)
	}
	if s.Sent != 2000 || s.Accepted != 2000 || s.Failed != 0 {
		t.Errorf("sent %d accepted %d failed %d", s.Sent, s.Accepted, s.Failed)
	}
	// 2000 votes with 20% of voters revoting: v + 0.2v = 2000.
	if s.Voters+s.Revotes != 2000 || s.Revotes < 300 || s.Revotes > 340 {
		t.Errorf("voters %d revotes %d", s.Voters, s.Revotes)
	}
	if f.bad != 0 {
		t.Errorf("server saw %d malformed votes", f.bad)
	}
	if !s.Check.OK || s.Check.CountedTotal != 2+s.Voters || !strings.Contains(s.Check.Message, "accepted == counted") {
		t.Errorf("check %+v", s.Check)
	}
	if s.Latency.P50 <= 0 || s.Latency.P99 < s.Latency.P50 || s.Latency.Max < s.Latency.P99 {
		t.Errorf("latency %+v", s.Latency)
	}
	if s.Throughput <= 0 {
		t.Errorf("throughput %v", s.Throughput)
	}
}

func TestAgainstFakeServerFailuresByStatus(t *testing.T) {
	f := newFakeServer(t, 0, func(f *fakeServer) { f.failEvery = 10 })
	s, code, _ := runJSON(t, "-vote-url", f.URL+"/", "-result-url", f.URL+"/api/results", "-votes", "500", "-concurrency", "4")
	if code != 0 {
		t.Fatalf("exit %d check %+v", code, s.Check)
	}
	if s.Failed != 50 || s.FailedByStatus["503"] != 50 || s.Accepted != 450 {
		t.Errorf("failed %d by status %v accepted %d", s.Failed, s.FailedByStatus, s.Accepted)
	}
	if !s.Check.OK || s.Check.CountedTotal != 450 {
		t.Errorf("check %+v", s.Check)
	}
}

func TestAgainstFakeServerDetectsLostVotes(t *testing.T) {
	f := newFakeServer(t, 0, func(f *fakeServer) { f.dropEvery = 100 })
	s, code, _ := runJSON(t, "-vote-url", f.URL+"/", "-result-url", f.URL, "-votes", "300", "-settle", "500ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1 on lost votes; check %+v", code, s.Check)
	}
	if s.Check.OK || !strings.Contains(s.Check.Message, "MISMATCH") || !strings.Contains(s.Check.Message, "3 missing") {
		t.Errorf("check %+v", s.Check)
	}
}

func TestAgainstFakeServerDetectsRevoteNotWinning(t *testing.T) {
	f := newFakeServer(t, 0, func(f *fakeServer) { f.firstWins = true })
	s, code, _ := runJSON(t, "-vote-url", f.URL+"/", "-result-url", f.URL, "-voters", "100", "-revote", "0.5", "-settle", "500ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1; check %+v", code, s.Check)
	}
	if s.Revotes != 50 || !strings.Contains(s.Check.Message, "50 revotes (a then b) did not replace") {
		t.Errorf("revotes %d check %+v", s.Revotes, s.Check)
	}
}

func TestAgainstFakeServerE2E(t *testing.T) {
	f := newFakeServer(t, 30*time.Millisecond)
	f.votes["0000000000000001"] = "a"
	s, code, stderr := runJSON(t, "-vote-url", f.URL+"/", "-result-url", f.URL, "-e2e", "-rate", "500", "-duration", "500ms", "-concurrency", "8")
	if code != 0 {
		t.Fatalf("exit %d stderr %s summary %+v e2e %+v check %+v", code, stderr, s, s.E2E, s.Check)
	}
	if s.Sent < 240 || s.Sent > 250 {
		t.Errorf("sent %d in 500ms at 500/s, want 250", s.Sent)
	}
	e := s.E2E
	if e == nil || e.Samples != int(s.Accepted) || e.Missing != 0 || e.BaselineTotal != 1 {
		t.Fatalf("e2e %+v", e)
	}
	// Votes are counted 30ms after their response: end-to-end must be >= 30ms.
	if e.P50 < 30 || e.P99 < e.P50 || e.P99 > 1000 {
		t.Errorf("e2e latency %+v", e)
	}
}

func TestUnreachableVoteService(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	s, code, _ := runJSON(t, "-vote-url", url+"/", "-votes", "20", "-concurrency", "2", "-timeout", "1s")
	if code != 1 {
		t.Errorf("exit %d, want 1 when nothing is accepted", code)
	}
	if s.Failed != 20 || s.Errors["connection refused"] != 20 {
		t.Errorf("failed %d errors %v", s.Failed, s.Errors)
	}
}

func TestTimeoutsAreCounted(t *testing.T) {
	f := newFakeServer(t, 0, func(f *fakeServer) { f.slow = 300 * time.Millisecond })
	s, code, _ := runJSON(t, "-vote-url", f.URL+"/", "-votes", "4", "-concurrency", "4", "-timeout", "50ms")
	if code != 1 || s.Errors["timeout"] != 4 {
		t.Errorf("exit %d errors %v", code, s.Errors)
	}
}

func TestBaselineUnreadable(t *testing.T) {
	f := newFakeServer(t, 0)
	_, code, stderr := runJSON(t, "-vote-url", f.URL+"/", "-result-url", f.URL+"/nothing-here", "-votes", "1")
	if code != 2 || !strings.Contains(stderr, "baseline") {
		t.Errorf("exit %d stderr %q", code, stderr)
	}
}

func TestTextOutput(t *testing.T) {
	f := newFakeServer(t, 0)
	var out strings.Builder
	code := run([]string{"-vote-url", f.URL + "/", "-result-url", f.URL, "-votes", "50", "-progress", "0"}, &out, io.Discard)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, want := range []string{"sent         50", "accepted     50", "latency      p50", "accepted == counted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestE2ELatencyPairing(t *testing.T) {
	t0 := time.Unix(100, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	due := []time.Time{ms(20), ms(0), ms(10)} // unordered, as workers finish
	events := []event{{ms(1), 5}, {ms(15), 7}, {ms(40), 6}, {ms(50), 8}}
	lat, missing := e2eLatencies(due, events, 5)
	// vote@0 -> total 6 first at 15ms; vote@10 -> total 7 at 15ms; vote@20 -> total 8 at 50ms.
	want := []time.Duration{15 * time.Millisecond, 5 * time.Millisecond, 30 * time.Millisecond}
	if missing != 0 || fmt.Sprint(lat) != fmt.Sprint(want) {
		t.Errorf("lat %v missing %d, want %v", lat, missing, want)
	}
	lat, missing = e2eLatencies(append(due, ms(30)), events, 5)
	if missing != 1 || len(lat) != 3 {
		t.Errorf("lat %v missing %d", lat, missing)
	}
}
