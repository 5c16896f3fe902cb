package votepage_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/batcher"
	"github.com/ladder-cdk/ladder/services/internal/httpserver"
)

// benchConcurrency is requests in flight per GOMAXPROCS; a public page
// has many browsers waiting at once, which is what lets the group commit
// batch.
const benchConcurrency = 32

// BenchmarkVotePost measures POST / throughput through the real handler
// into the real Redis (queue) and PostgreSQL (direct): in-process (handler
// called directly) and over loopback HTTP with keep-alive connections
// (server wrapped like the service, client in the same process).
//
//	go test -run '^$' -bench VotePost -benchtime 3s ./internal/votepage/
func BenchmarkVotePost(b *testing.B) {
	b.Run("queue", func(b *testing.B) {
		e := newQueueEnv(b)
		benchInProcess(b, e.page, e.sink.Stats)
	})
	b.Run("direct", func(b *testing.B) {
		e := newDirectEnv(b, 1000, 2*time.Millisecond)
		benchInProcess(b, e.page, e.sink.Stats)
	})
	b.Run("queue-http", func(b *testing.B) {
		e := newQueueEnv(b)
		benchHTTP(b, e.page, e.sink.Stats)
	})
	b.Run("direct-http", func(b *testing.B) {
		e := newDirectEnv(b, 1000, 2*time.Millisecond)
		benchHTTP(b, e.page, e.sink.Stats)
	})
}

var benchVoter atomic.Uint64

func nextVoter() string { return fmt.Sprintf("%016x", 0xbe00000000000000+benchVoter.Add(1)) }

func report(b *testing.B, stats func() batcher.Stats) {
	s := stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "votes/s")
	if s.Flushes > 0 {
		b.ReportMetric(float64(s.Items)/float64(s.Flushes), "votes/commit")
	}
}

func benchInProcess(b *testing.B, h http.Handler, stats func() batcher.Stats) {
	b.SetParallelism(benchConcurrency)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		voter := nextVoter()
		bodies := []string{"vote=a", "vote=b"}
		i := 0
		for pb.Next() {
			i++
			w := post(h, bodies[i&1], voter)
			if w.Code != http.StatusOK {
				b.Errorf("POST = %d: %s", w.Code, w.Body.String())
				return
			}
		}
	})
	b.StopTimer()
	report(b, stats)
}

func benchHTTP(b *testing.B, page http.Handler, stats func() batcher.Stats) {
	srv := httptest.NewServer(httpserver.Mux(httpserver.Options{Handler: page}))
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetParallelism(benchConcurrency)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		voter := nextVoter()
		bodies := []string{"vote=a", "vote=b"}
		i := 0
		for pb.Next() {
			i++
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(bodies[i&1]))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", "voter_id="+voter)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("POST = %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	report(b, stats)
}
