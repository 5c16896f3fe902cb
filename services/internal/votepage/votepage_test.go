package votepage_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/sink"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/internal/votepage"
)

func TestGetRendersPageAndSetsCookie(t *testing.T) {
	rec := &recordingSink{}
	h, err := votepage.New(votepage.Options{OptionA: "Tabs", OptionB: "Spaces", Hostname: "host-<x>", Sink: rec, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET / = %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		"Tabs", "Spaces",
		`<form class="choices" method="post" action="/">`,
		`name="vote" value="a"`, `name="vote" value="b"`,
		"Processed by <code>host-&lt;x&gt;</code>", // escaped, not raw HTML
		"you can vote only once", "replaces",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if c := chosen(body); c != "" {
		t.Errorf("fresh page marks %q as chosen", c)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	c := voterCookie(t, w)
	if c == nil {
		t.Fatal("no voter_id cookie set")
	}
	if !ballot.ValidVoterID(c.Value) || c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
		c.MaxAge < 365*24*3600 || c.Secure {
		t.Fatalf("cookie %+v", c)
	}

	// A browser that has its cookie keeps it.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(c)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || voterCookie(t, w) != nil {
		t.Fatalf("second GET = %d, Set-Cookie %q", w.Code, w.Header().Values("Set-Cookie"))
	}
	// HEAD works like GET.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("HEAD / = %d", w.Code)
	}
	if n := len(rec.recorded()); n != 0 {
		t.Fatalf("GET recorded %d votes", n)
	}
}

func TestCookieSecureBehindTLS(t *testing.T) {
	h := newPage(t, &recordingSink{})
	viaProxy := httptest.NewRequest(http.MethodGet, "/", nil)
	viaProxy.Header.Set("X-Forwarded-Proto", "https")
	direct := httptest.NewRequest(http.MethodGet, "/", nil)
	direct.TLS = &tls.ConnectionState{}
	plainHTTP := httptest.NewRequest(http.MethodGet, "/", nil)
	plainHTTP.Header.Set("X-Forwarded-Proto", "http")
	for name, tc := range map[string]struct {
		r    *http.Request
		want bool
	}{"forwarded https": {viaProxy, true}, "tls": {direct, true}, "forwarded http": {plainHTTP, false}} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, tc.r)
		if c := voterCookie(t, w); c == nil || c.Secure != tc.want {
			t.Errorf("%s: cookie %+v, want Secure=%v", name, c, tc.want)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	h := newPage(t, &recordingSink{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	m := regexp.MustCompile(`href="(/static/vote/vote\.css\?v=([0-9a-f]{12}))"`).FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatal("page does not reference the stylesheet with a content hash")
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, m[1], nil))
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") ||
		!strings.Contains(w.Header().Get("Cache-Control"), "immutable") || !strings.Contains(w.Body.String(), ".choice") {
		t.Fatalf("GET %s = %d %v", m[1], w.Code, w.Header())
	}
	// The hash in the URL is the hash of the file as it sits on disk, so a
	// CDN upload of the directory serves exactly what the page asks for.
	css, err := io.ReadAll(mustOpen(t, "static/vote.css"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256hex(css)[:12]; got != m[2] {
		t.Fatalf("page hash %s, file hash %s", m[2], got)
	}
	// Unversioned or stale URLs get a short lifetime.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/static/vote/vote.css?v=000000000000", nil))
	if w.Code != http.StatusOK || strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("stale version: %d %q", w.Code, w.Header().Get("Cache-Control"))
	}
	// Revalidation by ETag.
	r := httptest.NewRequest(http.MethodGet, m[1], nil)
	r.Header.Set("If-None-Match", `"`+m[2]+`"`)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match = %d, want 304", w.Code)
	}
}

func TestQueueModeRecordsVotes(t *testing.T) {
	e := newQueueEnv(t)
	const voter = "00000000000000a1"
	w := post(e.page, "vote=a", voter)
	if w.Code != http.StatusOK || chosen(w.Body.String()) != "a" {
		t.Fatalf("POST vote=a = %d, chosen %q", w.Code, chosen(w.Body.String()))
	}
	if voterCookie(t, w) != nil {
		t.Fatal("POST with a valid cookie replaced it")
	}
	w = post(e.page, "vote=b", voter)
	if w.Code != http.StatusOK || chosen(w.Body.String()) != "b" || !strings.Contains(w.Body.String(), "Dogs</strong>") {
		t.Fatalf("POST vote=b = %d, chosen %q", w.Code, chosen(w.Body.String()))
	}
	got := e.payloads(t)
	if len(got) != 2 {
		t.Fatalf("queue holds %d payloads, want 2: %v", len(got), got)
	}
	var prevTS int64
	for i, want := range []string{"a", "b"} {
		// The original worker reads exactly these two fields.
		var orig struct {
			VoterID string `json:"voter_id"`
			Vote    string `json:"vote"`
		}
		if err := json.Unmarshal([]byte(got[i]), &orig); err != nil || orig.VoterID != voter || orig.Vote != want {
			t.Fatalf("payload %d = %s (%v), want voter %s vote %s", i, got[i], err, voter, want)
		}
		v, err := ballot.Decode([]byte(got[i]))
		if err != nil {
			t.Fatal(err)
		}
		if v.CastAt <= prevTS {
			t.Fatalf("ts not increasing: %d after %d", v.CastAt, prevTS)
		}
		prevTS = v.CastAt
		if !strings.Contains(got[i], `"node":"`+testHost+`"`) {
			t.Errorf("payload %s does not name the node", got[i])
		}
	}

	// No cookie on POST: the vote is recorded under a new id, which the
	// response hands to the browser.
	w = post(e.page, "vote=a", "")
	c := voterCookie(t, w)
	if w.Code != http.StatusOK || c == nil || !ballot.ValidVoterID(c.Value) {
		t.Fatalf("cookieless POST = %d, cookie %+v", w.Code, c)
	}
	got = e.payloads(t)
	if v, err := ballot.Decode([]byte(got[len(got)-1])); err != nil || v.VoterID != c.Value || v.Option != "a" {
		t.Fatalf("cookieless vote stored as %+v (%v), cookie %s", v, err, c.Value)
	}
}

func TestDirectModeCommitsBeforeResponding(t *testing.T) {
	e := newDirectEnv(t, 1000, 2*time.Millisecond)
	const voter = "00000000000000d1"
	if w := post(e.page, "vote=a", voter); w.Code != http.StatusOK || chosen(w.Body.String()) != "a" {
		t.Fatalf("POST vote=a = %d", w.Code)
	}
	if rows := e.rows(t); len(rows) != 1 || rows[voter] != "a" {
		t.Fatalf("rows after vote a: %v", rows)
	}
	if tl := e.tally(t); tl != (store.Tally{A: 1}) {
		t.Fatalf("tally %+v", tl)
	}
	if w := post(e.page, "vote=b", voter); w.Code != http.StatusOK || chosen(w.Body.String()) != "b" {
		t.Fatalf("POST vote=b = %d", w.Code)
	}
	if rows := e.rows(t); len(rows) != 1 || rows[voter] != "b" {
		t.Fatalf("rows after re-vote: %v", rows)
	}
	if tl := e.tally(t); tl != (store.Tally{B: 1}) {
		t.Fatalf("tally after re-vote %+v", tl)
	}
}

func TestDirectModeBatchesConcurrentVotes(t *testing.T) {
	// A linger long enough that concurrent requests must share commits.
	e := newDirectEnv(t, 1000, 20*time.Millisecond)
	const voters = 300
	var wg sync.WaitGroup
	codes := make([]int, voters)
	for i := range voters {
		wg.Go(func() {
			opt := "a"
			if i%3 == 0 {
				opt = "b"
			}
			codes[i] = post(e.page, "vote="+opt, fmt.Sprintf("%016x", 0xc000+i)).Code
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("voter %d got %d", i, c)
		}
	}
	if rows := e.rows(t); len(rows) != voters {
		t.Fatalf("%d rows, want %d", len(rows), voters)
	}
	if tl := e.tally(t); tl != (store.Tally{A: voters - voters/3, B: voters / 3}) {
		t.Fatalf("tally %+v", tl)
	}
	s := e.sink.Stats()
	if s.Items != voters || s.Flushes >= voters || s.Failures != 0 {
		t.Fatalf("stats %+v: want %d votes in fewer than %d commits", s, voters, voters)
	}
	t.Logf("%d votes in %d commits", s.Items, s.Flushes)
}

// badRequests are inputs that must be refused without writing anything.
var badRequests = []struct {
	name, method, target, ctype, body, cookie string
	contentLength                             int64 // 0: from body; -1: unknown
	want                                      int
}{
	{name: "put", method: "PUT", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a", want: 405},
	{name: "delete", method: "DELETE", target: "/", want: 405},
	{name: "patch", method: "PATCH", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=b", want: 405},
	{name: "option c", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=c", want: 400},
	{name: "upper case", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=A", want: 400},
	{name: "label not value", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=Cats", want: 400},
	{name: "empty vote", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=", want: 400},
	{name: "padded vote", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a%20", want: 400},
	{name: "empty body", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "", want: 400},
	{name: "other field", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "choice=a", want: 400},
	{name: "vote twice", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a&vote=b", want: 400},
	{name: "semicolon", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a;x=1", want: 400},
	{name: "bad escape", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=%zz", want: 400},
	{name: "vote in query only", method: "POST", target: "/?vote=a", ctype: "application/x-www-form-urlencoded", body: "", want: 400},
	{name: "too large", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a&pad=" + strings.Repeat("x", 2000), want: 413},
	{name: "too large chunked", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a&pad=" + strings.Repeat("x", 2000), contentLength: -1, want: 413},
	{name: "no content type", method: "POST", target: "/", body: "vote=a", want: 415},
	{name: "text/plain", method: "POST", target: "/", ctype: "text/plain", body: "vote=a", want: 415},
	{name: "json", method: "POST", target: "/", ctype: "application/json", body: `{"vote":"a"}`, want: 415},
	{name: "multipart", method: "POST", target: "/", ctype: "multipart/form-data; boundary=x", body: "--x\r\nContent-Disposition: form-data; name=\"vote\"\r\n\r\na\r\n--x--\r\n", want: 415},
	{name: "garbled content type", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded; ;;", body: "vote=a", want: 415},
	{name: "short cookie", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a", cookie: "voter_id=abc", want: 400},
	{name: "upper-case cookie", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a", cookie: "voter_id=00000000000000AB", want: 400},
	{name: "non-hex cookie", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a", cookie: "voter_id=zzzzzzzzzzzzzzzz", want: 400},
	{name: "long cookie", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a", cookie: "voter_id=00000000000000abc", want: 400},
	{name: "empty cookie", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a", cookie: "voter_id=", want: 400},
	{name: "unparsable cookie", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a", cookie: "voter_id=01234567 89abcdef", want: 400},
	{name: "quote in cookie", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a", cookie: `a=1; voter_id="0123456789abcdef`, want: 400},
	{name: "cookie without value", method: "POST", target: "/", ctype: "application/x-www-form-urlencoded", body: "vote=a", cookie: "voter_id", want: 400},
	{name: "get with bad cookie", method: "GET", target: "/", cookie: "voter_id=../../etc", want: 400},
	{name: "unknown path", method: "GET", target: "/vote", want: 404},
	{name: "post to unknown path", method: "POST", target: "/vote", ctype: "application/x-www-form-urlencoded", body: "vote=a", want: 404},
	{name: "index.html", method: "GET", target: "/index.html", want: 404},
	{name: "missing asset", method: "GET", target: "/static/vote/missing.css", want: 404},
	{name: "asset directory", method: "GET", target: "/static/vote/", want: 404},
}

func runBadRequests(t *testing.T, h http.Handler) {
	for _, tc := range badRequests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			if tc.contentLength != 0 {
				r.ContentLength = tc.contentLength
				r.Body = io.NopCloser(r.Body) // hide the length from the server
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%s %s = %d (%s), want %d", tc.method, tc.target, w.Code, strings.TrimSpace(w.Body.String()), tc.want)
			}
			switch tc.want {
			case 405:
				if w.Header().Get("Allow") != "GET, HEAD, POST" {
					t.Errorf("405 without Allow header: %v", w.Header())
				}
			case 400, 413, 415:
				if w.Body.Len() == 0 {
					t.Error("refusal without a message")
				}
			}
			if tc.cookie != "" && w.Code == 400 && strings.Contains(w.Body.String(), "cookie") {
				c := voterCookie(t, w)
				if c == nil || c.MaxAge >= 0 {
					t.Errorf("malformed cookie not expired: %+v", c)
				}
			} else if c := voterCookie(t, w); c != nil {
				t.Errorf("refused request set cookie %+v", c)
			}
		})
	}
}

func TestBadInputsChangeNothing(t *testing.T) {
	t.Run("queue", func(t *testing.T) {
		e := newQueueEnv(t)
		runBadRequests(t, e.page)
		if got := e.payloads(t); len(got) != 0 {
			t.Fatalf("bad requests queued %v", got)
		}
		if s := e.sink.Stats(); s.Items != 0 {
			t.Fatalf("bad requests reached the sink: %+v", s)
		}
	})
	t.Run("direct", func(t *testing.T) {
		e := newDirectEnv(t, 1000, time.Millisecond)
		runBadRequests(t, e.page)
		if rows := e.rows(t); len(rows) != 0 {
			t.Fatalf("bad requests stored %v", rows)
		}
		if tl := e.tally(t); tl != (store.Tally{}) {
			t.Fatalf("tally %+v", tl)
		}
	})
}

// With the backend away, a vote is refused with 503 (never acknowledged),
// while the page itself still renders.
func TestBackendDownIs503(t *testing.T) {
	check := func(t *testing.T, h http.Handler) {
		t.Helper()
		w := post(h, "vote=a", "00000000000000e1")
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Fatalf("POST with backend down = %d %v", w.Code, w.Header())
		}
		w = httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("GET with backend down = %d", w.Code)
		}
	}
	// Port 1 on loopback: nothing listens, connections are refused.
	t.Run("redis", func(t *testing.T) {
		rdb, err := queue.NewClient("redis://127.0.0.1:1/0", "vote-test")
		if err != nil {
			t.Fatal(err)
		}
		defer rdb.Close()
		q := sink.NewQueue(queue.NewProducer(rdb, queue.NewKeys("t:down:")), testHost, 10, quiet)
		defer q.Close(context.Background())
		if q.Check(context.Background()) == nil {
			t.Fatal("check passed with redis down")
		}
		check(t, newPage(t, q))
	})
	t.Run("postgres", func(t *testing.T) {
		pg, err := store.OpenPostgres(context.Background(), store.Options{URL: "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer pg.Close()
		d := sink.NewDatabase(pg, 10, time.Millisecond, quiet)
		defer d.Close(context.Background())
		if d.Check(context.Background()) == nil {
			t.Fatal("check passed with postgres down")
		}
		check(t, newPage(t, d))
	})
}
