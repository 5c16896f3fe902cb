package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/metrics"
)

// WriterFlag is where the writer region is kept: store.DynamoDB's control
// item, which a global table replicates to every region.
type WriterFlag interface {
	// WriterRegion is the region named by the flag; found is false while
	// nothing is set.
	WriterRegion(ctx context.Context) (region string, found bool, err error)
}

// DefaultGateTTL is how long a Gate trusts one read of the flag.
const DefaultGateTTL = 5 * time.Second

// gateReadTimeout bounds one read of the flag, so a hung endpoint cannot
// hold the lanes longer than this.
const gateReadTimeout = 5 * time.Second

// Gate is the writer-region fence of Tier 4 (two regions, one DynamoDB
// global table, a queue and workers per region): the worker applies votes
// only while the flag names its own region, or, while no flag is set, the
// default region. In standby a lane fetches nothing, so votes wait in its
// region's queue, and it returns any batch it holds to that queue; dead
// peers' batches are still reclaimed (that only moves them back into the
// queue). /healthz and /readyz are unaffected: standby is healthy.
//
// The answer is cached for TTL. A failed read keeps the last answer (and
// is logged, then tried again after TTL): a region that cannot read its
// replica of the table can normally not write it either, and flipping to
// "allowed" on an error would defeat the fence. Until one read has
// succeeded the gate is closed.
//
// Window: a lane starts a write (each attempt of it) only when the gate
// says yes (BeginWrite), and a write in progress is not interrupted. After
// the flag is flipped away from region A, A's workers may therefore still
// write for up to: the global table's replication lag to A (usually under
// a second, no upper bound promised) + TTL (the cached answer) + the
// ApplyVotes calls already under way, one per lane (a DynamoDB batch of n
// votes runs 32 at a time, each bounded by the store's 20 s operation
// timeout: n/32 x 20 s at the very worst). A longer overlap needs A's
// reads of the flag to fail while its writes succeed.
//
// "standby" (the log line and ladder_worker_standby = 1) is reported only
// once the gate is closed AND no write it let in is still running, so an
// operator waiting for it knows this worker has stopped writing. For a
// switch without any overlap, set the flag to a region where no worker
// runs ("none"), wait for standby in every worker of both regions, then
// name the new region.
type Gate struct {
	flag          WriterFlag
	region, deflt string
	ttl           time.Duration
	log           *slog.Logger

	mu      sync.Mutex
	readAt  time.Time // last read attempt, successful or not
	known   bool      // a read has succeeded
	writer  string    // the writer region per the last successful read
	allowed bool
	// inflight counts the writes BeginWrite let in that have not ended.
	inflight int
	// state is what was last logged, so each change is logged once.
	state string
}

// NewGate returns the gate of a worker in region (AWS_REGION) that writes
// by default, while the flag is unset, when region == defaultRegion
// (DYNAMODB_DEFAULT_WRITER_REGION). ttl <= 0 means DefaultGateTTL.
func NewGate(flag WriterFlag, region, defaultRegion string, ttl time.Duration, log *slog.Logger) *Gate {
	if ttl <= 0 {
		ttl = DefaultGateTTL
	}
	if log == nil {
		log = slog.Default()
	}
	metrics.WorkerStandby.Set(1) // closed until the first read
	return &Gate{flag: flag, region: region, deflt: defaultRegion, ttl: ttl, log: log}
}

// TTL is how long one read of the flag is trusted.
func (g *Gate) TTL() time.Duration { return g.ttl }

// Allowed reports whether this worker may apply votes now, reading the
// flag when the cached answer is older than TTL.
func (g *Gate) Allowed(ctx context.Context) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.allowedLocked(ctx)
}

// BeginWrite is Allowed for a write about to start: when it returns true
// the caller must call EndWrite once the write has returned, so standby is
// reported only when no write is running.
func (g *Gate) BeginWrite(ctx context.Context) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.allowedLocked(ctx) {
		return false
	}
	g.inflight++
	return true
}

// EndWrite ends a write BeginWrite let in.
func (g *Gate) EndWrite() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	g.report()
}

func (g *Gate) allowedLocked(ctx context.Context) bool {
	if !g.readAt.IsZero() && time.Since(g.readAt) < g.ttl {
		return g.allowed
	}
	g.readAt = time.Now()
	rctx, cancel := context.WithTimeout(ctx, gateReadTimeout)
	region, found, err := g.flag.WriterRegion(rctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			g.log.Warn("waiting for dynamodb (writer region): "+err.Error()+"; keeping the last answer",
				"dependency", "dynamodb", "error", err.Error(), "writing", g.allowed, "known", g.known, "retry_in", g.ttl.String())
		}
		g.report()
		return g.allowed
	}
	if !found {
		region = g.deflt
	}
	g.known, g.writer, g.allowed = true, region, region == g.region
	g.report()
	return g.allowed
}

// report logs a change of state once and keeps the gauge current.
func (g *Gate) report() {
	writer := "unknown"
	if g.known {
		writer = g.writer
	}
	// Standby only once no write let in is still running.
	draining := !g.allowed && g.inflight > 0
	state := fmt.Sprintf("%s allowed=%t draining=%t", writer, g.allowed, draining)
	if state == g.state {
		return
	}
	g.state = state
	switch {
	case g.allowed:
		metrics.WorkerStandby.Set(0)
		g.log.Info("writing: writer region is "+g.writer, "writer_region", g.writer, "region", g.region)
	case draining:
		metrics.WorkerStandby.Set(0)
		g.log.Warn(fmt.Sprintf("stopping: writer region is %s; %d write(s) in progress finish first", writer, g.inflight),
			"writer_region", writer, "region", g.region, "writes_in_progress", g.inflight)
	case g.known:
		metrics.WorkerStandby.Set(1)
		g.log.Warn("standby: writer region is "+g.writer+"; votes stay in this region's queue",
			"writer_region", g.writer, "region", g.region)
	default:
		metrics.WorkerStandby.Set(1)
		g.log.Warn("standby: writer region not known yet; votes stay in this region's queue", "region", g.region)
	}
}
