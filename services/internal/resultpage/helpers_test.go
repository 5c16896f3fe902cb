package resultpage

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

// replica is one result service instance: its own store (pools and LISTEN
// connection), hub and handler, like one container.
type replica struct {
	app   string // application_name of its connections
	store *store.Postgres
	hub   *Hub
	h     *Handler
	srv   *httptest.Server
	reads atomic.Int64 // tally queries made by the handler
}

type countingTallier struct {
	*store.Postgres
	n *atomic.Int64
}

func (c countingTallier) Tally(ctx context.Context) (store.Tally, error) {
	c.n.Add(1)
	return c.Postgres.Tally(ctx)
}

type replicaOpts struct {
	labels    [2]string
	noWatch   bool
	heartbeat time.Duration
	maxStream time.Duration
	// staticBase is Options.StaticBaseURL.
	staticBase string
}

func newReplica(t *testing.T, dbURL string, o replicaOpts) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{app: "rt-" + testenv.Token(), hub: NewHub(0)}
	st, err := store.OpenPostgres(ctx, store.Options{URL: dbURL, AppName: r.app,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r.store = st
	if o.labels == [2]string{} {
		o.labels = [2]string{"Cats", "Dogs"}
	}
	r.h = New(Options{OptionA: o.labels[0], OptionB: o.labels[1], Store: countingTallier{st, &r.reads}, Hub: r.hub,
		Heartbeat: o.heartbeat, MaxStream: o.maxStream, StaticBaseURL: o.staticBase})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !o.noWatch {
			_ = st.WatchTallies(ctx, r.hub.Publish, r.hub.WatchDown)
		}
	}()
	go r.hub.Run(ctx)
	r.srv = httptest.NewServer(r.h)
	t.Cleanup(func() {
		cancel()
		<-r.hub.Done()
		r.srv.Close()
		<-done
		st.Close()
	})
	return r
}

// waitLive waits until the replica's watcher has published value want.
func (r *replica) waitLive(t *testing.T, want store.Tally) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, live := r.hub.Cached()
		if live && c == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher has %+v (live %v), want %+v", c, live, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var voterSeq atomic.Int64

// vote applies n new voters for option through the real store.
func vote(t *testing.T, st *store.Postgres, a, b int) {
	t.Helper()
	var vs []ballot.Vote
	for i := 0; i < a+b; i++ {
		opt := ballot.OptionA
		if i >= a {
			opt = ballot.OptionB
		}
		vs = append(vs, ballot.Vote{VoterID: fmt.Sprintf("%016x", voterSeq.Add(1)), Option: opt, CastAt: time.Now().UnixNano()})
	}
	if err := st.ApplyVotes(context.Background(), vs); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func getResults(t *testing.T, base string) Results {
	t.Helper()
	resp, body := get(t, base+"/api/results")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/results: %s %s", resp.Status, body)
	}
	var res Results
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("GET /api/results: %v in %q", err, body)
	}
	return res
}

// sseClient follows one /events stream.
type sseClient struct {
	resp   *http.Response
	events chan Results
	lines  chan string // every non-data line (comments, retry)
	closed chan struct{}
	cancel context.CancelFunc
}

func openEvents(t *testing.T, base string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("GET /events: %s", resp.Status)
	}
	c := &sseClient{resp: resp, events: make(chan Results, 100), lines: make(chan string, 100),
		closed: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(c.closed)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				var r Results
				if err := json.Unmarshal([]byte(d), &r); err != nil {
					t.Errorf("bad event data %q: %v", d, err)
				}
				c.events <- r
			} else if line != "" {
				select {
				case c.lines <- line:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return c
}

// next returns the next event, failing after 5 s.
func (c *sseClient) next(t *testing.T) Results {
	t.Helper()
	select {
	case r := <-c.events:
		return r
	case <-c.closed:
		t.Fatal("stream ended")
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return Results{}
}

// waitFor reads events until one has the given counts.
func (c *sseClient) waitFor(t *testing.T, a, b int64) {
	t.Helper()
	for {
		r := c.next(t)
		if r.A == a && r.B == b {
			if r.Total != a+b {
				t.Fatalf("event %+v: total is not a+b", r)
			}
			return
		}
	}
}
