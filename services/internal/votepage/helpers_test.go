package votepage_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/internal/sink"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/internal/votepage"
	"github.com/ladder-cdk/ladder/services/testenv"
)

const testHost = "vote-test-7f3a"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recordingSink keeps every vote it is given. It stands in for the sink
// interface (ours), not for Redis or PostgreSQL.
type recordingSink struct {
	mu    sync.Mutex
	votes []ballot.Vote
}

func (s *recordingSink) Cast(_ context.Context, v ballot.Vote) error {
	s.mu.Lock()
	s.votes = append(s.votes, v)
	s.mu.Unlock()
	return nil
}

func (s *recordingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.votes)
}

func (s *recordingSink) since(n int) []ballot.Vote {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ballot.Vote(nil), s.votes[n:]...)
}

func (s *recordingSink) recorded() []ballot.Vote {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ballot.Vote(nil), s.votes...)
}

func newPage(t testing.TB, s sink.Sink) http.Handler {
	t.Helper()
	h, err := votepage.New(votepage.Options{OptionA: "Cats", OptionB: "Dogs", Hostname: testHost, Sink: s, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// queueEnv is a page wired to the real Redis under a private key prefix.
type queueEnv struct {
	page http.Handler
	rdb  *redis.Client
	key  string
	sink *sink.Queue
}

func newQueueEnv(t testing.TB) *queueEnv {
	t.Helper()
	url, prefix := testenv.Redis(t)
	rdb := testenv.RedisClient(t, url)
	keys := queue.NewKeys(prefix)
	q := sink.NewQueue(queue.NewProducer(rdb, keys), testHost, 1000, quiet)
	t.Cleanup(func() { q.Close(context.Background()) })
	return &queueEnv{page: newPage(t, q), rdb: rdb, key: keys.Votes(), sink: q}
}

func (e *queueEnv) payloads(t testing.TB) []string {
	t.Helper()
	got, err := e.rdb.LRange(context.Background(), e.key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// directEnv is a page wired to a fresh, migrated PostgreSQL database.
type directEnv struct {
	page  http.Handler
	dbURL string
	store *store.Postgres
	sink  *sink.Database
}

func newDirectEnv(t testing.TB, size int, linger time.Duration) *directEnv {
	t.Helper()
	u := testenv.MigratedDatabase(t)
	pg, err := store.OpenPostgres(context.Background(), store.Options{URL: u, AppName: "vote-test", MaxConn: 4, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	d := sink.NewDatabase(pg, size, linger, quiet)
	t.Cleanup(func() {
		d.Close(context.Background())
		pg.Close()
	})
	return &directEnv{page: newPage(t, d), dbURL: u, store: pg, sink: d}
}

// rows returns the votes table as voter -> option.
func (e *directEnv) rows(t testing.TB) map[string]string {
	t.Helper()
	c := testenv.Conn(t, e.dbURL)
	rows, err := c.Query(context.Background(), "SELECT id, vote FROM votes")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		m[id] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *directEnv) tally(t testing.TB) store.Tally {
	t.Helper()
	tl, err := e.store.Tally(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func post(h http.Handler, body, cookie string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != "" {
		r.Header.Set("Cookie", votepage.CookieName+"="+cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func voterCookie(t testing.TB, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == votepage.CookieName {
			return c
		}
	}
	return nil
}

// chosen reports which option the page marks as the voter's choice.
func chosen(body string) string {
	a := strings.Contains(body, `class="choice choice-a chosen"`)
	b := strings.Contains(body, `class="choice choice-b chosen"`)
	switch {
	case a && b:
		return "both"
	case a:
		return "a"
	case b:
		return "b"
	}
	return ""
}

func mustOpen(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
