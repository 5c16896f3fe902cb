package store_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/store"
)

// backend is one Store implementation under the shared behaviour tests,
// with its ground truth: a full recount of the stored votes, the
// expensive read the services never do.
type backend struct {
	name string
	open func(t *testing.T) (store.Store, func(t *testing.T) (store.Tally, map[string]ballot.Vote))
}

var backends = []backend{
	{"postgres", func(t *testing.T) (store.Store, func(*testing.T) (store.Tally, map[string]ballot.Vote)) {
		s, u := open(t)
		return s, func(t *testing.T) (store.Tally, map[string]ballot.Vote) { return recount(t, u) }
	}},
	{"dynamodb", func(t *testing.T) (store.Store, func(*testing.T) (store.Tally, map[string]ballot.Vote)) {
		s, _ := openDynamo(t)
		return s, func(t *testing.T) (store.Tally, map[string]ballot.Vote) { return recountDynamo(t, s) }
	}},
}

func forEachBackend(t *testing.T, f func(t *testing.T, s store.Store, recount func(*testing.T) (store.Tally, map[string]ballot.Vote))) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, rc := b.open(t)
			f(t, s, rc)
		})
	}
}

func TestLastVoteWins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store.Store, recount func(*testing.T) (store.Tally, map[string]ballot.Vote)) {
		ctx := context.Background()
		// Voter 1 votes a@10 then b@20, delivered out of order; voter 2 is in
		// the same batch twice; voter 3's vote is redelivered.
		must := func(vs ...ballot.Vote) {
			t.Helper()
			if err := s.ApplyVotes(ctx, vs); err != nil {
				t.Fatal(err)
			}
		}
		must(ballot.Vote{VoterID: id(1), Option: "b", CastAt: 20},
			ballot.Vote{VoterID: id(2), Option: "a", CastAt: 5},
			ballot.Vote{VoterID: id(2), Option: "b", CastAt: 6},
			ballot.Vote{VoterID: id(3), Option: "a", CastAt: 1})
		must(ballot.Vote{VoterID: id(1), Option: "a", CastAt: 10}, // stale
			ballot.Vote{VoterID: id(3), Option: "a", CastAt: 1}) // redelivery
		tl, err := s.Tally(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := store.Tally{A: 1, B: 2}
		if tl != want {
			t.Fatalf("tally = %+v, want %+v", tl, want)
		}
		rc, votes := recount(t)
		if rc != want || votes[id(1)].Option != "b" || votes[id(2)].Option != "b" || votes[id(3)].Option != "a" {
			t.Fatalf("stored votes %v (recount %+v)", votes, rc)
		}
		// A newer change moves the tally; same-option newer vote does not.
		must(ballot.Vote{VoterID: id(3), Option: "b", CastAt: 2}, ballot.Vote{VoterID: id(1), Option: "b", CastAt: 30})
		if tl, _ = s.Tally(ctx); tl != (store.Tally{A: 0, B: 3}) {
			t.Fatalf("after change tally = %+v, want a=0 b=3", tl)
		}
		if _, votes = recount(t); votes[id(1)].CastAt != 30 {
			t.Fatalf("cast_at = %d; want 30", votes[id(1)].CastAt)
		}
		// Redelivering everything changes nothing.
		must(ballot.Vote{VoterID: id(1), Option: "b", CastAt: 20}, ballot.Vote{VoterID: id(2), Option: "b", CastAt: 6},
			ballot.Vote{VoterID: id(3), Option: "b", CastAt: 2}, ballot.Vote{VoterID: id(1), Option: "b", CastAt: 30})
		if tl, _ = s.Tally(ctx); tl != (store.Tally{A: 0, B: 3}) {
			t.Fatalf("after redelivery tally = %+v, want a=0 b=3", tl)
		}
	})
}

func TestRejectsInvalidVotes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store.Store, recount func(*testing.T) (store.Tally, map[string]ballot.Vote)) {
		err := s.ApplyVotes(context.Background(), []ballot.Vote{{VoterID: id(2), Option: "a", CastAt: 1}, {VoterID: id(1), Option: "c", CastAt: 1}})
		if err == nil {
			t.Fatal("invalid option accepted")
		}
		if tl, votes := recount(t); tl != (store.Tally{}) || len(votes) != 0 {
			t.Fatalf("a rejected batch changed something: %+v %v", tl, votes)
		}
	})
}

// Concurrent writers with random, overlapping, out-of-order votes, each
// batch delivered twice: tallies must equal a recount and each voter must
// hold their newest vote.
func TestTalliesEqualRecount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store.Store, recount func(*testing.T) (store.Tally, map[string]ballot.Vote)) {
		ctx := context.Background()
		const voters, writers, batches = 300, 6, 30
		var mu sync.Mutex
		newest := map[string]ballot.Vote{}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 99))
				for range batches {
					n := 1 + r.IntN(80)
					batch := make([]ballot.Vote, n)
					for i := range batch {
						batch[i] = ballot.Vote{VoterID: id(r.IntN(voters)), Option: ballot.Options[r.IntN(2)], CastAt: 1 + r.Int64N(1_000_000)}
					}
					for range 1 + r.IntN(2) { // at-least-once: sometimes twice
						if err := s.ApplyVotes(ctx, batch); err != nil {
							t.Error(err)
							return
						}
					}
					mu.Lock()
					for _, v := range batch {
						cur, ok := newest[v.VoterID]
						if !ok || v.CastAt > cur.CastAt || (v.CastAt == cur.CastAt && v.Option > cur.Option) {
							newest[v.VoterID] = v
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		tl, err := s.Tally(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rc, stored := recount(t)
		if tl != rc {
			t.Fatalf("tally %+v != recount %+v", tl, rc)
		}
		if len(stored) != len(newest) {
			t.Fatalf("%d rows, want %d", len(stored), len(newest))
		}
		for vid, v := range newest {
			if stored[vid].Option != v.Option {
				t.Fatalf("voter %s: stored %q, newest vote %q", vid, stored[vid].Option, v.Option)
			}
		}
	})
}

func recvTally(t *testing.T, got chan store.Tally) store.Tally {
	t.Helper()
	select {
	case tl := <-got:
		return tl
	case <-time.After(5 * time.Second):
		t.Fatal("no tally received")
	}
	return store.Tally{}
}

func TestWatchTallies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store.Store, _ func(*testing.T) (store.Tally, map[string]ballot.Vote)) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		got := make(chan store.Tally, 16)
		go s.WatchTallies(ctx, func(tl store.Tally) { got <- tl }, nil)
		if tl := recvTally(t, got); tl != (store.Tally{}) {
			t.Fatalf("initial tally %+v", tl)
		}
		if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(1), Option: "a", CastAt: 1}, {VoterID: id(2), Option: "b", CastAt: 1}, {VoterID: id(3), Option: "b", CastAt: 1}}); err != nil {
			t.Fatal(err)
		}
		if tl := recvTally(t, got); tl != (store.Tally{A: 1, B: 2}) {
			t.Fatalf("notified tally %+v, want a=1 b=2", tl)
		}
		// A no-op batch (stale) sends no notification.
		if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(1), Option: "a", CastAt: 1}}); err != nil {
			t.Fatal(err)
		}
		select {
		case tl := <-got:
			t.Fatalf("unexpected notification %+v for a no-op batch", tl)
		case <-time.After(2 * store.PollInterval):
		}
	})
}
