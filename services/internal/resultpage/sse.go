package resultpage

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/metrics"
)

// events streams the tally as Server-Sent Events: the current value at once,
// then one event per broadcast of the hub, ": ping" comments in between.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	// Read the value to send first and subscribe second: every broadcast
	// made after the read carries a newer value, so the stream never steps
	// back from its first event.
	t, err := h.current(r.Context())
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	_, changed := h.o.Hub.Watch()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx and friends: do not buffer
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}

	metrics.SSEClients.Inc()
	defer metrics.SSEClients.Dec()

	// A jittered reconnect delay spreads the reconnects of a replica's
	// clients when it goes away.
	retry := time.Second + rand.N(2*time.Second)
	first := fmt.Appendf(nil, "retry: %d\n", retry.Milliseconds())
	if !send(append(first, sseData(h.body(t))...)) {
		return
	}
	sent := t

	heartbeat := time.NewTicker(h.o.Heartbeat)
	defer heartbeat.Stop()
	life := h.o.MaxStream
	life = life - life/10 + rand.N(life/5+1)
	end := time.NewTimer(life)
	defer end.Stop()
	for {
		select {
		case <-changed:
			var u Update
			u, changed = h.o.Hub.Watch()
			if u.Tally == sent {
				continue
			}
			if !send(sseData(h.encode(u))) {
				return
			}
			sent = u.Tally
		case <-heartbeat.C:
			if !send([]byte(": ping\n\n")) {
				return
			}
		case <-end.C:
			return
		case <-h.o.Hub.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}
