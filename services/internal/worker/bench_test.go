package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/worker"
)

// BenchmarkWorkerDrain measures how fast one worker moves a backlog of
// b.N votes (distinct voters, so every vote inserts a row) from Redis into
// PostgreSQL with BATCH_SIZE 1000; it reports votes/s.
//
//	go test -run '^$' -bench WorkerDrain -benchtime 200000x ./internal/worker
func BenchmarkWorkerDrain(b *testing.B) {
	e := newEnv(b)
	e.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	stamp := time.Now().UnixNano()
	votes := make([]ballot.Vote, b.N)
	for i := range votes {
		// Spread like real random voter ids: inserts land all over the
		// primary key index, not at its right edge.
		votes[i] = ballot.Vote{VoterID: fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15), Option: ballot.Options[i%2], CastAt: stamp + int64(i)}
	}
	e.push(votes...)

	w := e.newWorker("bench", func(o *worker.Options) { o.BatchSize = 1000 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- w.Run(ctx) }()
	for w.Stats().Drained < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "votes/s")
}
