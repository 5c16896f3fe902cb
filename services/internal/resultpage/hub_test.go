package resultpage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/store"
)

func runHub(t *testing.T, window time.Duration) (*Hub, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := NewHub(window)
	go h.Run(ctx)
	t.Cleanup(func() {
		cancel()
		<-h.Done()
	})
	return h, cancel
}

// waitUpdate waits for the next broadcast after ch and returns it.
func waitUpdate(t *testing.T, h *Hub, ch <-chan struct{}) (Update, <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		return h.Watch()
	case <-time.After(5 * time.Second):
		t.Fatal("no broadcast within 5s")
	}
	return Update{}, nil
}

func TestHubFirstChangeGoesOutAtOnceAndBurstsMerge(t *testing.T) {
	// A window far longer than the test: the first change must not wait for
	// it, the second must.
	h, _ := runHub(t, time.Hour)
	_, ch := h.Watch()
	h.Publish(store.Tally{A: 1})
	u, ch := waitUpdate(t, h, ch)
	if u.Tally != (store.Tally{A: 1}) || u.Seq != 1 {
		t.Fatalf("first broadcast %+v, want a=1 seq 1", u)
	}
	h.Publish(store.Tally{A: 2})
	h.Publish(store.Tally{A: 3})
	if c, have, live := h.Cached(); c != (store.Tally{A: 3}) || !have || !live {
		t.Fatalf("Cached() = %+v %v %v, want the newest value, live", c, have, live)
	}
	select {
	case <-ch:
		t.Fatalf("second broadcast inside the coalescing window: %+v", u)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestHubSkipsUnchangedValue(t *testing.T) {
	h, _ := runHub(t, time.Millisecond)
	_, ch := h.Watch()
	h.Publish(store.Tally{A: 1, B: 1})
	u, ch := waitUpdate(t, h, ch)
	// A reconnect re-reads the same tally: clients hear nothing.
	time.Sleep(5 * time.Millisecond)
	h.Publish(store.Tally{A: 1, B: 1})
	select {
	case <-ch:
		t.Fatalf("broadcast of an unchanged tally: %+v after %+v", func() Update { u, _ := h.Watch(); return u }(), u)
	case <-time.After(50 * time.Millisecond):
	}
	h.Publish(store.Tally{A: 1, B: 2})
	if u2, _ := waitUpdate(t, h, ch); u2.Seq != u.Seq+1 || u2.Tally != (store.Tally{A: 1, B: 2}) {
		t.Fatalf("got %+v after %+v, want the change as the next broadcast", u2, u)
	}
}

// A client that stops reading (stuck network) holds no queue in the hub and
// cannot delay the others; when it wakes it reads the newest value at once.
func TestHubSlowClientGetsLatestAndDoesNotBlockOthers(t *testing.T) {
	const window = 5 * time.Millisecond
	h, _ := runHub(t, window)
	_, slow := h.Watch() // subscribed, then never reads during the burst

	const n = 10000
	var wg sync.WaitGroup
	var fastSaw []int64
	wg.Go(func() {
		_, ch := h.Watch()
		for {
			select {
			case <-ch:
				var u Update
				u, ch = h.Watch()
				fastSaw = append(fastSaw, u.Tally.A)
				if u.Tally.A == n {
					return
				}
			case <-time.After(5 * time.Second):
				t.Errorf("fast client stuck; saw %d updates, last %v", len(fastSaw), fastSaw[max(0, len(fastSaw)-1):])
				return
			}
		}
	})
	start := time.Now()
	for i := int64(1); i <= n; i++ {
		h.Publish(store.Tally{A: i, B: 0})
	}
	wg.Wait()
	elapsed := time.Since(start)

	for i := 1; i < len(fastSaw); i++ {
		if fastSaw[i] <= fastSaw[i-1] {
			t.Fatalf("fast client saw values go backwards: %v", fastSaw)
		}
	}
	// Coalescing: at most one broadcast per window (+1 for the leading edge).
	if limit := int(elapsed/window) + 2; len(fastSaw) > limit {
		t.Fatalf("fast client got %d events for %d changes in %s; want at most %d", len(fastSaw), n, elapsed, limit)
	}
	select {
	case <-slow:
	default:
		t.Fatal("slow client's channel not closed")
	}
	if u, _ := h.Watch(); u.Tally.A != n {
		t.Fatalf("slow client reads %+v, want the newest a=%d", u, n)
	}
}

func TestHubDoneAfterCancel(t *testing.T) {
	h, cancel := runHub(t, 0)
	cancel()
	select {
	case <-h.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the context ended")
	}
}

func TestWatchDownMarksTheCacheStaleUntilThenNextPublish(t *testing.T) {
	h := NewHub(0)
	h.Publish(store.Tally{A: 5})
	if _, _, live := h.Cached(); !live {
		t.Fatal("not live after a publish")
	}
	h.WatchDown(errors.New("connection reset"))
	if c, have, live := h.Cached(); live || !have || c.A != 5 {
		t.Fatalf("after the watch was lost Cached() = %+v %v %v, want the stale value, not live", c, have, live)
	}
	h.Publish(store.Tally{A: 6}) // WatchTallies reconnected and re-read
	if _, _, live := h.Cached(); !live {
		t.Fatal("watch not live again after a publish")
	}
}

func TestPercentages(t *testing.T) {
	for _, c := range []struct {
		a, b   int64
		pa, pb int
	}{
		{0, 0, 50, 50}, {1, 0, 100, 0}, {0, 3, 0, 100}, {2, 1, 67, 33}, {1, 2, 33, 67},
		{1, 1, 50, 50}, {1, 7, 13, 87}, {7, 1, 88, 12}, {1, 199, 1, 99}, {1, 201, 0, 100},
	} {
		pa, pb := Percentages(c.a, c.b)
		if pa != c.pa || pb != c.pb {
			t.Errorf("Percentages(%d, %d) = %d/%d, want %d/%d", c.a, c.b, pa, pb, c.pa, c.pb)
		}
	}
}

func TestVotesText(t *testing.T) {
	for n, want := range map[int64]string{0: "No votes yet", 1: "1 vote", 2: "2 votes", 1234567: "1234567 votes"} {
		if got := VotesText(n); got != want {
			t.Errorf("VotesText(%d) = %q, want %q", n, got, want)
		}
	}
}
