package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeApp behaves like the vote and result services as the canary sees
// them: POST / records one vote per voter_id cookie (last vote wins, a
// repeated choice changes nothing), and after a pipeline delay the result
// side's /events stream publishes the new tally, only when it changed.
type fakeApp struct {
	mu      sync.Mutex
	votes   map[string]string
	tally   Tally
	subs    map[chan Tally]bool
	delay   time.Duration // vote accepted -> tally published
	stalled bool          // votes accepted, nothing ever published (a dead worker)
	voteErr int           // status to answer votes with instead of recording them
	posts   []string      // every vote received, "voter=option"
}

func newFakeApp() *fakeApp {
	return &fakeApp{votes: map[string]string{}, subs: map[chan Tally]bool{}, delay: 30 * time.Millisecond,
		tally: Tally{OptionA: "Cats", OptionB: "Dogs"}}
}

func (f *fakeApp) cast(voter, option string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts = append(f.posts, voter+"="+option)
	old, had := f.votes[voter]
	if had && old == option {
		return
	}
	f.votes[voter] = option
	apply := func(t *Tally, opt string, d int64) {
		if opt == "a" {
			t.A += d
		} else {
			t.B += d
		}
	}
	next := f.tally
	if had {
		apply(&next, old, -1)
	}
	apply(&next, option, 1)
	next.Total = next.A + next.B
	f.tally = next
	if f.stalled {
		return
	}
	time.AfterFunc(f.delay, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for ch := range f.subs {
			select {
			case ch <- next:
			default:
			}
		}
	})
}

func (f *fakeApp) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /vote/{$}", func(w http.ResponseWriter, r *http.Request) {
		if f.voteErr != 0 {
			http.Error(w, "your vote could not be recorded right now", f.voteErr)
			return
		}
		c, err := r.Cookie("voter_id")
		if err != nil || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(c.Value) {
			http.Error(w, "bad cookie", http.StatusBadRequest)
			return
		}
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad content type", http.StatusUnsupportedMediaType)
			return
		}
		opt := r.PostFormValue("vote")
		if opt != "a" && opt != "b" {
			http.Error(w, "bad option", http.StatusBadRequest)
			return
		}
		f.cast(c.Value, opt)
		fmt.Fprint(w, "<html>voted</html>")
	})
	mux.HandleFunc("GET /result/events", func(w http.ResponseWriter, r *http.Request) {
		ch := make(chan Tally, 16)
		f.mu.Lock()
		cur := f.tally
		f.subs[ch] = true
		f.mu.Unlock()
		defer func() { f.mu.Lock(); delete(f.subs, ch); f.mu.Unlock() }()
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(t Tally) {
			b, _ := json.Marshal(t)
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "retry: 1500\n: hello\n")
		send(cur)
		for {
			select {
			case t := <-ch:
				send(t)
			case <-r.Context().Done():
				return
			}
		}
	})
	return mux
}

func (f *fakeApp) start(t *testing.T) Config {
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return Config{VoteURL: srv.URL + "/vote/", ResultURL: srv.URL + "/result", Wait: 2 * time.Second, Client: NewClient()}
}

func (f *fakeApp) state() (string, Tally) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.votes[VoterID], f.tally
}

func TestVoterIDIsFixedForever(t *testing.T) {
	// Pinned: a changed id would leave the old one's vote in the total.
	if VoterID != "a9cddb8508e89d57" {
		t.Fatalf("VoterID = %q; it must never change", VoterID)
	}
}

func TestRunSucceedsAndNeverGrowsTheTotal(t *testing.T) {
	app := newFakeApp()
	cfg := app.start(t)
	for run := 1; run <= 3; run++ {
		o := Run(context.Background(), cfg)
		if !o.Success {
			t.Fatalf("run %d failed: %s", run, o.Reason)
		}
		if o.Latency < app.delay || o.Latency > cfg.Wait {
			t.Errorf("run %d latency %s, want between the pipeline delay %s and the wait", run, o.Latency, app.delay)
		}
		v, tally := app.state()
		if v != "b" || tally.Total != 1 {
			t.Errorf("after run %d the canary voter is on %q and the total is %d; want b and 1", run, v, tally.Total)
		}
		// From the second run on, the voter starts on b: both votes flip it.
		if run > 1 && (len(o.Steps) != 2 || !o.Steps[0].Seen) {
			t.Errorf("run %d steps %+v: vote a should have moved the tally", run, o.Steps)
		}
	}
}

// After a failed run the voter may be left on "a": vote a then changes
// nothing, and the run must still succeed on vote b.
func TestRunSucceedsWhenTheVoterIsAlreadyOnA(t *testing.T) {
	app := newFakeApp()
	app.cast(VoterID, "a")
	cfg := app.start(t)
	cfg.Wait = 500 * time.Millisecond
	o := Run(context.Background(), cfg)
	if !o.Success || len(o.Steps) != 2 || o.Steps[0].Seen || !o.Steps[1].Seen {
		t.Fatalf("outcome %+v; want success decided by vote b alone", o)
	}
	if v, tally := app.state(); v != "b" || tally.Total != 1 {
		t.Errorf("voter on %q, total %d", v, tally.Total)
	}
}

func TestRunUnderConcurrentTraffic(t *testing.T) {
	app := newFakeApp()
	cfg := app.start(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			app.cast(fmt.Sprintf("%016x", i%50), []string{"a", "b"}[i%3%2])
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for run := 0; run < 3; run++ {
		if o := Run(context.Background(), cfg); !o.Success {
			t.Errorf("run %d failed under traffic: %s", run, o.Reason)
		}
	}
	cancel()
	wg.Wait()
	if v, _ := app.state(); v != "b" {
		t.Errorf("canary voter on %q, want b", v)
	}
}

func TestRunFailures(t *testing.T) {
	cases := []struct {
		name  string
		setup func(*fakeApp, *Config)
		want  string
	}{
		{"vote endpoint down", func(a *fakeApp, _ *Config) { a.voteErr = http.StatusServiceUnavailable },
			`answered 503 Service Unavailable`},
		{"pipeline stalled", func(a *fakeApp, _ *Config) { a.stalled = true },
			`vote "b" was accepted but the result side showed no new tally within 400ms`},
		{"no result stream", func(_ *fakeApp, c *Config) { c.ResultURL += "/missing" },
			"result side: no tally from"},
		{"redirected vote", func(_ *fakeApp, c *Config) { c.VoteURL = strings.TrimSuffix(c.VoteURL, "/") },
			"redirecting to /vote/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := newFakeApp()
			cfg := app.start(t)
			cfg.Wait = 400 * time.Millisecond
			c.setup(app, &cfg)
			o := Run(context.Background(), cfg)
			if o.Success {
				t.Fatalf("run succeeded; steps %+v", o.Steps)
			}
			if !strings.Contains(o.Reason, c.want) {
				t.Errorf("reason %q\nwant it to contain %q", o.Reason, c.want)
			}
			if o.Latency != 0 {
				t.Errorf("a failed run reports latency %s", o.Latency)
			}
		})
	}
}

// The metric line is valid CloudWatch Embedded Metric Format.
func TestWriteEMF(t *testing.T) {
	s := Settings{Namespace: "Ladder/Tier2", Name: "Ladder-Tier2-CanaryFunction"}
	now := time.UnixMilli(1700000000123)
	parse := func(o Outcome) map[string]any {
		var buf bytes.Buffer
		if err := WriteEMF(&buf, s, o, now); err != nil {
			t.Fatal(err)
		}
		if strings.Count(buf.String(), "\n") != 1 || !strings.HasSuffix(buf.String(), "\n") {
			t.Fatalf("want exactly one line, got %q", buf.String())
		}
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	metricNames := func(m map[string]any) []string {
		aws := m["_aws"].(map[string]any)
		if aws["Timestamp"].(float64) != 1700000000123 {
			t.Errorf("timestamp %v", aws["Timestamp"])
		}
		d := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if d["Namespace"] != "Ladder/Tier2" || fmt.Sprint(d["Dimensions"]) != "[[Canary]]" {
			t.Errorf("directive %v", d)
		}
		var names []string
		for _, x := range d["Metrics"].([]any) {
			names = append(names, x.(map[string]any)["Name"].(string))
		}
		return names
	}
	ok := parse(Outcome{Success: true, Latency: 1234567 * time.Microsecond})
	if n := metricNames(ok); fmt.Sprint(n) != "[Success Latency]" || ok["Success"] != 1.0 || ok["Latency"] != 1234.567 || ok["Canary"] != s.Name {
		t.Errorf("success line: metrics %v, %v", n, ok)
	}
	bad := parse(Outcome{Reason: "vote \"a\": POST x answered 503"})
	if n := metricNames(bad); fmt.Sprint(n) != "[Success]" || bad["Success"] != 0.0 || bad["Latency"] != nil || !strings.Contains(bad["reason"].(string), "503") {
		t.Errorf("failure line: metrics %v, %v", n, bad)
	}
}

func TestSettingsFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	s, err := SettingsFromEnv(env(map[string]string{"VOTE_URL": "https://d1.cloudfront.net/", "RESULT_URL": "https://d1.cloudfront.net/result",
		"METRIC_NAMESPACE": "Ladder/Tier2", "AWS_LAMBDA_FUNCTION_NAME": "fn", "CANARY_WAIT": "3s"}))
	if err != nil || s.Wait != 3*time.Second || s.Name != "fn" || s.Namespace != "Ladder/Tier2" {
		t.Fatalf("%+v %v", s, err)
	}
	_, err = SettingsFromEnv(env(map[string]string{"VOTE_URL": "d1.cloudfront.net", "CANARY_WAIT": "soon"}))
	for _, want := range []string{"VOTE_URL must be an http(s) URL", "RESULT_URL must be", "METRIC_NAMESPACE is required", "CANARY_WAIT must be"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// A misconfigured canary still reports Success=0 (so the alarm fires) and
// returns the error; a failed check returns nil (no Lambda retry casting
// more votes) with Success=0.
func TestHandle(t *testing.T) {
	var buf bytes.Buffer
	cfgErr := errors.New("canary configuration: METRIC_NAMESPACE is required")
	if err := handle(context.Background(), Settings{}, cfgErr, &buf); err != cfgErr || !strings.Contains(buf.String(), `"Success":0`) {
		t.Errorf("misconfigured: err %v, line %s", err, buf.String())
	}
	buf.Reset()
	app := newFakeApp()
	app.voteErr = http.StatusBadGateway
	cfg := app.start(t)
	cfg.Wait = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := handle(ctx, Settings{Config: cfg, Namespace: "N", Name: "fn"}, nil, &buf); err != nil || !strings.Contains(buf.String(), `"Success":0`) || !strings.Contains(buf.String(), "502") {
		t.Errorf("failed check: err %v, line %s", err, buf.String())
	}
}
