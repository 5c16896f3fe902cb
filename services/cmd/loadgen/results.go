package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ladder-cdk/ladder/services/sse"
)

// tally is the result service's JSON body (GET /api/results and each /events
// data line).
type tally struct {
	OptionA string `json:"option_a"`
	OptionB string `json:"option_b"`
	A       int64  `json:"a"`
	B       int64  `json:"b"`
	Total   int64  `json:"total"`
}

func fetchTally(ctx context.Context, c *http.Client, base string) (tally, error) {
	var t tally
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/results", nil)
	if err != nil {
		return t, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return t, fmt.Errorf("GET %s/api/results: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return t, fmt.Errorf("GET %s/api/results: %s: %.200s", base, resp.Status, body)
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return t, fmt.Errorf("GET %s/api/results: bad JSON: %w", base, err)
	}
	return t, nil
}

// event is one tally seen on the /events stream and when it arrived.
type event struct {
	at    time.Time
	total int64
}

// sseWatcher follows <base>/events, reconnecting after errors, and records
// every tally it receives with its arrival time.
type sseWatcher struct {
	mu      sync.Mutex
	events  []event
	maxSeen int64
	changed chan struct{} // closed and replaced on every event
	errs    int
	lastErr error
}

func newSSEWatcher() *sseWatcher { return &sseWatcher{changed: make(chan struct{}), maxSeen: -1} }

func (w *sseWatcher) add(t tally, at time.Time) {
	w.mu.Lock()
	w.events = append(w.events, event{at: at, total: t.Total})
	if t.Total > w.maxSeen {
		w.maxSeen = t.Total
	}
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// state returns the highest total seen so far (-1 before the first event)
// and a channel closed on the next event.
func (w *sseWatcher) state() (int64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxSeen, w.changed
}

func (w *sseWatcher) snapshot() []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]event(nil), w.events...)
}

// waitFor blocks until an event with total >= want arrived or ctx ends.
func (w *sseWatcher) waitFor(ctx context.Context, want int64) bool {
	for {
		seen, ch := w.state()
		if seen >= want {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// run follows the stream until ctx ends.
func (w *sseWatcher) run(ctx context.Context, c *http.Client, base string) {
	sse.Follow(ctx, c, base+"/events", func(data string) {
		at := time.Now()
		var t tally
		if json.Unmarshal([]byte(data), &t) == nil {
			w.add(t, at)
		}
	}, func(err error) {
		w.mu.Lock()
		w.errs++
		w.lastErr = err
		w.mu.Unlock()
	})
}
