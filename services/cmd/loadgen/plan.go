package main

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// schedule is the open-loop timetable: slot i is due at start + i/rate. With
// rate 0 there is no timetable and every slot is due as soon as a connection
// is free.
type schedule struct {
	start    time.Time
	rate     float64       // votes/s; 0 = unscheduled
	interval time.Duration // 1/rate rounded, 0 = unscheduled
	end      time.Time     // zero = no time bound
	limit    int64         // 0 = no count bound
}

func newSchedule(start time.Time, rate float64, duration time.Duration, votes int64) schedule {
	s := schedule{start: start, limit: votes, rate: rate}
	if rate > 0 {
		s.interval = time.Duration(float64(time.Second) / rate)
		if s.interval <= 0 {
			s.interval = 1
		}
	}
	if duration > 0 {
		s.end = start.Add(duration)
	}
	return s
}

// due returns when slot i is due (start itself when unscheduled).
func (s schedule) due(i int64) time.Time {
	if s.interval == 0 {
		return s.start
	}
	// Computed from the start each time (no accumulated rounding drift).
	return s.start.Add(time.Duration(math.Round(float64(i) * float64(time.Second) / s.rate)))
}

// inPlan reports whether slot i belongs to the run at all: below the count
// bound and, with a timetable, due before the time bound.
func (s schedule) inPlan(i int64) bool {
	if s.limit > 0 && i >= s.limit {
		return false
	}
	if s.interval > 0 && !s.end.IsZero() && !s.due(i).Before(s.end) {
		return false
	}
	return true
}

// planned is the number of slots in the plan, or -1 if it is only bounded by
// time at an unscheduled rate (or by -voters).
func (s schedule) planned() int64 {
	n := int64(-1)
	if s.interval > 0 && !s.end.IsZero() {
		n = int64(math.Ceil(s.end.Sub(s.start).Seconds() * s.rate))
		for n > 0 && !s.due(n-1).Before(s.end) {
			n--
		}
		for s.due(n).Before(s.end) {
			n++
		}
	}
	if s.limit > 0 && (n < 0 || s.limit < n) {
		n = s.limit
	}
	return n
}

// vote is one request: a voter and the option it votes for.
type vote struct {
	voter   uint64
	choice  byte // 'a' or 'b'
	revote  bool // the voter's second vote (for the other option)
	revoter bool // a first vote whose voter is designated to revote
}

func (v vote) voterID() string { return fmt.Sprintf("%016x", v.voter) }

type nextKind int

const (
	nextVote nextKind = iota // a vote to send
	nextWait                 // nothing to send yet: revoters' first votes still in flight
	nextDone                 // every voter has voted (and revoted)
)

// planner decides who votes in each slot. A new voter is created for each
// first vote (up to -voters), voting a or b at random; a -revote fraction of
// them is designated to vote a and then, once that first vote has been
// accepted (so "the later vote wins" is well defined), b. Ready revotes go
// before new voters.
type planner struct {
	mu         sync.Mutex
	rng        *rand.Rand
	maxVoters  int64 // 0 = unlimited
	revote     float64
	created    int64
	designated int64  // revoters designated so far
	pending    int64  // designated revoters whose first vote is unresolved
	ready      []vote // revotes that may be sent now
	readyHead  int
}

func newPlanner(maxVoters int64, revote float64) *planner {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back anyway.
		binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
	}
	return &planner{rng: rand.New(rand.NewChaCha8(seed)), maxVoters: maxVoters, revote: revote}
}

// next returns the vote for the next slot.
func (p *planner) next() (vote, nextKind) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readyHead < len(p.ready) {
		v := p.ready[p.readyHead]
		p.ready[p.readyHead] = vote{}
		p.readyHead++
		if p.readyHead == len(p.ready) {
			p.ready, p.readyHead = p.ready[:0], 0
		}
		return v, nextVote
	}
	if p.maxVoters == 0 || p.created < p.maxVoters {
		p.created++
		v := vote{voter: p.rng.Uint64(), choice: 'a'}
		// Designate exactly round(revote * created) revoters so far, spread
		// evenly over the run. Revoters always vote a, then b: if a revote
		// were lost (or the first vote won), a would end up too high by
		// exactly the number lost, where random directions could cancel out.
		if want := int64(math.Floor(p.revote*float64(p.created) + 0.5)); want > p.designated {
			p.designated++
			p.pending++
			v.revoter = true
		} else if p.rng.IntN(2) == 1 {
			v.choice = 'b'
		}
		return v, nextVote
	}
	if p.pending > 0 {
		return vote{}, nextWait
	}
	return vote{}, nextDone
}

// firstResolved is called once a designated revoter's first vote has an
// outcome; if it was accepted, the revote for the other option becomes ready.
func (p *planner) firstResolved(v vote, accepted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending--
	if accepted {
		other := byte('a')
		if v.choice == 'a' {
			other = 'b'
		}
		p.ready = append(p.ready, vote{voter: v.voter, choice: other, revote: true})
	}
}

// unsent returns revotes that were ready but never sent (the run ended first).
func (p *planner) unsent() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.ready)-p.readyHead) + p.pending
}
