package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ladder-cdk/ladder/services/sse"
)

// voterSeed names the canary's voter. VoterID is derived from it (the first
// 8 bytes of its SHA-256, as 16 hex digits, the vote service's cookie
// format), so it is fixed forever and documented rather than random: the
// chance that a real browser's random 64-bit id equals it is 2^-64.
const voterSeed = "ladder synthetic canary voter v1"

// VoterID is the canary's one voter id. Every run ends with this voter's
// vote on "b", so the canary adds exactly one vote to the total, ever.
var VoterID = func() string {
	sum := sha256.Sum256([]byte(voterSeed))
	return hex.EncodeToString(sum[:8])
}()

// Config is what one run needs.
type Config struct {
	// VoteURL receives POST vote=a|b with the voter_id cookie.
	VoteURL string
	// ResultURL is the result service's base: ResultURL/events is the SSE
	// stream of tallies.
	ResultURL string
	// Wait is how long each step waits for the result side to show a new
	// tally after a vote.
	Wait time.Duration
	// Client makes the requests; it must not follow redirects (a POST
	// redirected to a GET would "succeed" without voting).
	Client *http.Client
}

// Outcome is one run's verdict.
type Outcome struct {
	Success bool
	// Latency is from the start of the deciding vote's POST to the arrival
	// of the first new tally on the result side (0 on failure).
	Latency time.Duration
	// Reason says what failed, for the log line next to the metric.
	Reason string
	// Steps records what each vote saw, for the log.
	Steps []Step
}

// Step is one vote and what followed it.
type Step struct {
	Vote    string        `json:"vote"`
	Seen    bool          `json:"seen"`
	Latency time.Duration `json:"latencyNs"`
	Before  Tally         `json:"before"`
	After   Tally         `json:"after"`
}

// Tally is the result service's JSON (GET /api/results and each /events data line).
type Tally struct {
	OptionA string `json:"option_a"`
	OptionB string `json:"option_b"`
	A       int64  `json:"a"`
	B       int64  `json:"b"`
	Total   int64  `json:"total"`
}

// NewClient is the HTTP client runs use: no redirects, bounded connection setup.
func NewClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 15 * time.Second,
			MaxIdleConnsPerHost:   2,
		},
	}
}

// Run is one synthetic check. How it decides that a vote "reached the
// result side", robustly whatever the canary voter's stored vote is and
// whatever real traffic does meanwhile:
//
//  1. Open ResultURL/events before voting; its first event is the current
//     tally. The result service sends an event only when the tally changes.
//  2. Vote "a" and wait up to Wait for a new tally. This step sets the
//     voter's state: after a healthy previous run the voter is on "b", so
//     the tally moves b->a; after a failed run the voter may already be on
//     "a", the vote changes nothing and no event comes, which is not a
//     failure by itself. Waiting here also keeps the two votes from landing
//     in one worker batch, where only the later one would count.
//  3. Vote "b" and wait up to Wait for a new tally. The voter is now on "a"
//     (step 2 committed, or it already was), so this vote must move a
//     count; no new tally within Wait is a failure. Latency is measured
//     here, from the start of the POST to the event's arrival.
//
// In a quiet period the only change is the canary's own, so the check is
// exact. Under real traffic, other votes also produce events and one may be
// taken for the canary's: then the run proves the pipeline is committing
// and publishing after the canary's vote was accepted (a stalled worker or
// a dead LISTEN/NOTIFY still fails it), and its latency may read low. The
// voter always ends on "b", so the canary never grows the total.
func Run(ctx context.Context, cfg Config) Outcome {
	if cfg.Client == nil {
		cfg.Client = NewClient()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWatcher()
	go w.follow(ctx, cfg.Client, strings.TrimSuffix(cfg.ResultURL, "/")+"/events")
	if _, ok := w.waitBeyond(ctx, 0, time.Now().Add(cfg.Wait)); !ok {
		return Outcome{Reason: fmt.Sprintf("result side: no tally from %s/events within %s: %v", strings.TrimSuffix(cfg.ResultURL, "/"), cfg.Wait, w.lastError())}
	}
	var out Outcome
	for i, option := range []string{"a", "b"} {
		st, err := step(ctx, cfg, w, option)
		out.Steps = append(out.Steps, st)
		if err != nil {
			out.Reason = err.Error()
			return out
		}
		if i == 1 {
			if !st.Seen {
				out.Reason = fmt.Sprintf("vote %q was accepted but the result side showed no new tally within %s (stream: %v)", option, cfg.Wait, w.lastError())
				return out
			}
			out.Success, out.Latency = true, st.Latency
		}
	}
	return out
}

// step casts one vote and waits for the next tally that arrives after the
// POST started.
func step(ctx context.Context, cfg Config, w *watcher, option string) (Step, error) {
	st := Step{Vote: option}
	seq, before, _ := w.current()
	st.Before = before
	start := time.Now()
	if err := vote(ctx, cfg, option); err != nil {
		return st, err
	}
	ev, ok := w.waitBeyond(ctx, seq, start.Add(cfg.Wait))
	if ok {
		st.Seen, st.After, st.Latency = true, ev.tally, ev.at.Sub(start)
	}
	return st, nil
}

func vote(ctx context.Context, cfg Config, option string) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.VoteURL, strings.NewReader(url.Values{"vote": {option}}.Encode()))
	if err != nil {
		return fmt.Errorf("vote %q: %w", option, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "voter_id", Value: VoterID})
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("vote %q: POST %s: %w", option, cfg.VoteURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("vote %q: POST %s answered %s", option, cfg.VoteURL, resp.Status)
		if loc := resp.Header.Get("Location"); loc != "" {
			msg += " redirecting to " + loc + " (set the vote URL to the final address)"
		} else if len(body) > 0 {
			msg += fmt.Sprintf(": %.200s", strings.TrimSpace(string(body)))
		}
		return errors.New(msg)
	}
	return nil
}

// event is one distinct tally and when it arrived.
type event struct {
	seq   int
	tally Tally
	at    time.Time
}

// watcher follows the SSE stream, reconnecting, and numbers each distinct
// tally. A reconnect's first event repeats the current tally and so does
// not count as a change.
type watcher struct {
	mu      sync.Mutex
	last    event
	changed chan struct{}
	err     error
}

func newWatcher() *watcher { return &watcher{changed: make(chan struct{})} }

func (w *watcher) current() (int, Tally, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last.seq, w.last.tally, w.changed
}

func (w *watcher) lastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		return errors.New("connected, no error")
	}
	return w.err
}

func (w *watcher) add(t Tally, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last.seq > 0 && t == w.last.tally {
		return
	}
	w.last = event{seq: w.last.seq + 1, tally: t, at: at}
	close(w.changed)
	w.changed = make(chan struct{})
}

// waitBeyond waits until a tally numbered above seq arrives, or until deadline.
func (w *watcher) waitBeyond(ctx context.Context, seq int, deadline time.Time) (event, bool) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		w.mu.Lock()
		last, ch := w.last, w.changed
		w.mu.Unlock()
		if last.seq > seq {
			return last, true
		}
		select {
		case <-ch:
		case <-timer.C:
			return event{}, false
		case <-ctx.Done():
			return event{}, false
		}
	}
}

func (w *watcher) follow(ctx context.Context, c *http.Client, eventsURL string) {
	sse.Follow(ctx, c, eventsURL, func(data string) {
		var t Tally
		if json.Unmarshal([]byte(data), &t) == nil {
			w.add(t, time.Now())
		}
	}, func(err error) {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	})
}
