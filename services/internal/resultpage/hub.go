// Package resultpage serves the result service: the live result page, its
// JSON API, the Server-Sent Events stream and the page's static files.
package resultpage

import (
	"context"
	"sync"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/metrics"
	"github.com/ladder-cdk/ladder/services/internal/store"
)

// DefaultWindow is the hub's default coalescing window.
const DefaultWindow = 50 * time.Millisecond

// Update is one broadcast tally. Seq grows by one per broadcast; 0 means
// nothing has been broadcast yet.
type Update struct {
	Tally store.Tally
	Seq   uint64
}

// Hub fans tallies from the process's single LISTEN connection out to every
// stream. Instead of a queue per client it keeps only the newest value and a
// channel that is closed when a newer one is broadcast: a client that was
// busy (slow network) wakes up once and reads the newest value, so no client
// can accumulate a backlog or slow the others down.
//
// Broadcasts are throttled to one per window: the first change after a quiet
// spell goes out at once (low latency for a single vote), changes arriving
// within the window are merged into one broadcast at its end, so a burst of
// commits costs each client at most 1/window events per second.
type Hub struct {
	window time.Duration
	kick   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	latest  store.Tally // newest value from the watcher, maybe not broadcast yet
	have    bool
	live    bool // the watch is connected: latest is current
	downs   int  // times the watch was seen down (tests)
	pub     Update
	changed chan struct{}
}

// NewHub returns a hub broadcasting at most once per window (DefaultWindow
// if window <= 0). Run must be running for broadcasts to happen.
func NewHub(window time.Duration) *Hub {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Hub{
		window:  window,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
}

// Publish records a tally from the watcher (store.WatchTallies' callback) and
// schedules a broadcast. It never blocks on clients.
func (h *Hub) Publish(t store.Tally) {
	metrics.TallyUpdates.Inc()
	h.mu.Lock()
	h.latest, h.have, h.live = t, true, true
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default: // a broadcast is already pending; it will carry this value
	}
}

// WatchDown marks the cached tally as possibly stale: the LISTEN connection
// failed, and changes made until it reconnects (and WatchTallies publishes a
// fresh read) would be missed. Readers query the database meanwhile.
func (h *Hub) WatchDown(error) {
	h.mu.Lock()
	if h.live {
		h.downs++
	}
	h.live = false
	h.mu.Unlock()
}

// Cached returns the newest tally from the watcher, whether there is one,
// and whether the watch is live (so the value is current).
func (h *Hub) Cached() (t store.Tally, have, live bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.latest, h.have, h.live
}

// Watch returns the last broadcast and a channel closed when the next one
// is made.
func (h *Hub) Watch() (Update, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pub, h.changed
}

// Done is closed when Run has returned (the service is shutting down):
// streams must end so the HTTP server's graceful shutdown does not wait for
// them until its timeout.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Run broadcasts published tallies until ctx ends, then closes Done.
func (h *Hub) Run(ctx context.Context) {
	defer close(h.done)
	var last time.Time
	var flush <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
			if flush != nil {
				continue // the pending flush will carry the newest value
			}
			if wait := h.window - time.Since(last); wait > 0 {
				flush = time.After(wait)
				continue
			}
			h.broadcast()
			last = time.Now()
		case <-flush:
			flush = nil
			h.broadcast()
			last = time.Now()
		}
	}
}

func (h *Hub) broadcast() {
	h.mu.Lock()
	defer h.mu.Unlock()
	// A reconnect re-reads the tally; if nothing changed meanwhile there is
	// nothing to tell the clients.
	if h.pub.Seq > 0 && h.pub.Tally == h.latest {
		return
	}
	h.pub = Update{Tally: h.latest, Seq: h.pub.Seq + 1}
	close(h.changed)
	h.changed = make(chan struct{})
}
