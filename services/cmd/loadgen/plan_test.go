package main

import (
	"context"
	"regexp"
	"testing"
	"time"
)

func TestScheduleDueTimes(t *testing.T) {
	start := time.Unix(1000, 0)
	s := newSchedule(start, 1000, 0, 0)
	if s.interval != time.Millisecond {
		t.Fatalf("interval %v", s.interval)
	}
	for _, i := range []int64{0, 1, 999, 1_000_000} {
		want := start.Add(time.Duration(i) * time.Millisecond)
		if got := s.due(i); !got.Equal(want) {
			t.Errorf("due(%d) = %v, want %v", i, got, want)
		}
	}
	// Due times never drift: slot i is at start + i*interval, not the sum of
	// per-send sleeps.
	s = newSchedule(start, 3, 0, 0)
	if got, want := s.due(3000), start.Add(1000*time.Second); got.Sub(want).Abs() > time.Microsecond {
		t.Errorf("due(3000) = %v, want ~%v", got, want)
	}
	// Unscheduled: everything due at once.
	s = newSchedule(start, 0, time.Second, 0)
	if !s.due(12345).Equal(start) {
		t.Errorf("unscheduled due %v", s.due(12345))
	}
}

func TestSchedulePlan(t *testing.T) {
	start := time.Unix(0, 0)
	cases := []struct {
		rate    float64
		dur     time.Duration
		votes   int64
		planned int64
		last    int64 // last slot in plan, -1 = unbounded check skipped
	}{
		{1000, time.Second, 0, 1000, 999},
		{1000, time.Second, 10, 10, 9},
		{1000, time.Second, 5000, 1000, 999},
		{0, time.Second, 0, -1, -1},
		{0, 0, 7, 7, 6},
		{3, time.Second, 0, 3, 2},
		{2.5, time.Second, 0, 3, 2}, // slots at 0, 0.4s, 0.8s
	}
	for _, c := range cases {
		s := newSchedule(start, c.rate, c.dur, c.votes)
		if got := s.planned(); got != c.planned {
			t.Errorf("rate %v dur %v votes %d: planned %d, want %d", c.rate, c.dur, c.votes, got, c.planned)
		}
		if c.last >= 0 {
			if !s.inPlan(c.last) || s.inPlan(c.last+1) {
				t.Errorf("rate %v dur %v votes %d: slot %d should be the last in plan", c.rate, c.dur, c.votes, c.last)
			}
		}
	}
}

// TestRunnerKeepsRate drives the real worker loop against a sender that
// takes no time and checks the open-loop rate: 200 votes at 1000/s take
// ~200ms whatever the concurrency.
func TestRunnerKeepsRate(t *testing.T) {
	srv := newFakeServer(t, 0)
	cfg := &config{voteURL: srv.URL + "/", rate: 1000, votes: 200, concurrency: 8, timeout: 5 * time.Second, settle: time.Second}
	start := time.Now()
	r := newRunner(cfg, start)
	done := make(chan struct{})
	for range cfg.concurrency {
		go func() { r.work(context.Background(), newHist()); done <- struct{}{} }()
	}
	for range cfg.concurrency {
		<-done
	}
	el := time.Since(start)
	if r.sent.Load() != 200 || r.accepted.Load() != 200 {
		t.Fatalf("sent %d accepted %d", r.sent.Load(), r.accepted.Load())
	}
	if el < 195*time.Millisecond || el > 2*time.Second {
		t.Errorf("200 votes at 1000/s took %v, want ~200ms", el)
	}
}

func TestPlannerRevotesAndVoterIDs(t *testing.T) {
	p := newPlanner(1000, 0.25)
	idRe := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := map[uint64]byte{}
	var firsts, revotes, designated int
	var inflight []vote
	for {
		v, kind := p.next()
		if kind == nextDone {
			break
		}
		if kind == nextWait {
			// Resolve one in-flight first vote: the revote becomes ready.
			if len(inflight) == 0 {
				t.Fatal("planner waits with nothing in flight")
			}
			p.firstResolved(inflight[0], true)
			inflight = inflight[1:]
			continue
		}
		if !idRe.MatchString(v.voterID()) {
			t.Fatalf("voter id %q", v.voterID())
		}
		if v.choice != 'a' && v.choice != 'b' {
			t.Fatalf("choice %q", v.choice)
		}
		if v.revote {
			revotes++
			first, ok := seen[v.voter]
			if !ok {
				t.Fatal("revote for a voter who never voted")
			}
			if first == v.choice {
				t.Fatal("revote must switch option")
			}
			continue
		}
		firsts++
		if _, dup := seen[v.voter]; dup {
			t.Fatal("duplicate voter id")
		}
		seen[v.voter] = v.choice
		if v.revoter {
			designated++
			// Resolve every other one immediately, the rest later.
			if designated%2 == 0 {
				p.firstResolved(v, true)
			} else {
				inflight = append(inflight, v)
			}
		}
	}
	if firsts != 1000 || designated != 250 || revotes != 250 {
		t.Errorf("firsts %d designated %d revotes %d, want 1000/250/250", firsts, designated, revotes)
	}
	if p.unsent() != 0 {
		t.Errorf("unsent %d", p.unsent())
	}
}

func TestPlannerFailedFirstVoteNoRevote(t *testing.T) {
	p := newPlanner(2, 1)
	v1, _ := p.next()
	v2, _ := p.next()
	if !v1.revoter || !v2.revoter {
		t.Fatal("with -revote 1 every voter is a revoter")
	}
	if _, k := p.next(); k != nextWait {
		t.Fatalf("want wait, got %v", k)
	}
	p.firstResolved(v1, false) // rejected: no revote
	p.firstResolved(v2, true)
	r, k := p.next()
	if k != nextVote || !r.revote || r.voter != v2.voter {
		t.Fatalf("want v2's revote, got %+v %v", r, k)
	}
	if _, k := p.next(); k != nextDone {
		t.Fatalf("want done, got %v", k)
	}
}
