// Command loadgen is a load generator for the Ladder vote service: it POSTs
// votes from random voters at a fixed open-loop rate (or as fast as the
// connections allow), reports throughput and latency percentiles, and with
// -result-url checks that the result service counted every voter the run
// added, or with -e2e measures how long a vote takes to reach the result page.
//
// Run `loadgen -h` for the flags. Exit status: 0 success, 1 the tally check
// failed (or no vote was accepted, or -e2e saw no events), 2 bad flags or the
// result service could not be read before the run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "loadgen: %s\n", line)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, code := execute(ctx, cfg, stderr)
	if cfg.jsonOut {
		writeJSON(stdout, sum)
	} else {
		writeText(stdout, sum)
	}
	return code
}

// execute runs the load and the optional checks; it returns the summary and
// the exit code.
func execute(ctx context.Context, cfg *config, stderr io.Writer) (*summary, int) {
	sum := &summary{
		VoteURL: cfg.voteURL, ResultURL: cfg.resultURL, Rate: cfg.rate,
		Concurrency: cfg.concurrency, Duration: cfg.duration.Seconds(),
		VotesLimit: cfg.votes, VotersLimit: cfg.voters, Revote: cfg.revote,
	}
	rc := newResultClient(cfg.timeout)
	var base tally
	if cfg.resultURL != "" {
		pctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		t, err := fetchTally(pctx, rc, cfg.resultURL)
		cancel()
		if err != nil {
			sum.Error = fmt.Sprintf("reading the baseline tally: %v", err)
			fmt.Fprintf(stderr, "loadgen: %s\n", sum.Error)
			return sum, 2
		}
		base = t
		sum.Check = &checkSummary{BaselineA: t.A, BaselineB: t.B, BaselineTotal: t.Total}
	}

	var watcher *sseWatcher
	var e2eBase int64
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if cfg.e2e {
		watcher = newSSEWatcher()
		go watcher.run(watchCtx, rc, cfg.resultURL)
		wctx, cancel := context.WithTimeout(ctx, cfg.settle)
		ok := watcher.waitFor(wctx, 0)
		cancel()
		if !ok {
			sum.Error = fmt.Sprintf("no event from %s/events within %v", cfg.resultURL, cfg.settle)
			if watcher.lastErr != nil {
				sum.Error += fmt.Sprintf(" (last error: %v)", watcher.lastErr)
			}
			fmt.Fprintf(stderr, "loadgen: %s\n", sum.Error)
			return sum, 2
		}
		e2eBase, _ = watcher.state()
	}

	start := time.Now()
	r := newRunner(cfg, start)
	hists := make([]*hist, cfg.concurrency)
	var wg sync.WaitGroup
	for i := range hists {
		hists[i] = newHist()
		wg.Add(1)
		go func(h *hist) { defer wg.Done(); r.work(ctx, h) }(hists[i])
	}
	progCtx, stopProg := context.WithCancel(ctx)
	if cfg.progress > 0 {
		go r.progressLoop(progCtx, stderr, cfg.progress)
	}
	wg.Wait()
	stopProg()
	interrupted := ctx.Err() != nil

	h := newHist()
	for _, x := range hists {
		h.merge(x)
	}
	end := r.lastDone
	if end.IsZero() {
		end = time.Now()
	}
	elapsed := end.Sub(start)
	sum.fillLoad(r, h, elapsed)
	sum.Interrupted = interrupted
	if cfg.rate > 0 && r.lateStop.Load() {
		if planned := r.sched.planned(); planned > 0 {
			sum.BehindSchedule = max(0, planned-r.sent.Load())
		}
	}
	code := 0
	if r.sent.Load() > 0 && r.accepted.Load() == 0 {
		code = 1
	}

	if cfg.e2e && !interrupted {
		want := e2eBase + r.accepted.Load()
		wctx, cancel := context.WithTimeout(ctx, cfg.settle)
		watcher.waitFor(wctx, want)
		cancel()
		lat, missing := e2eLatencies(r.acceptedDue, watcher.snapshot(), e2eBase)
		slices.Sort(lat)
		sum.E2E = &e2eSummary{
			Samples: len(lat), Missing: missing, BaselineTotal: e2eBase,
			P50: ms(percentileSorted(lat, 50)), P90: ms(percentileSorted(lat, 90)),
			P99: ms(percentileSorted(lat, 99)), Max: ms(percentileSorted(lat, 100)),
			Reconnects: watcher.errs,
		}
		if missing > 0 || len(lat) == 0 && r.accepted.Load() > 0 {
			code = 1
		}
	}
	stopWatch()

	if cfg.resultURL != "" && !interrupted {
		if !checkTally(ctx, cfg, rc, r, base, sum.Check) {
			code = 1
		}
	}
	return sum, code
}

// checkTally waits (at most -settle) for the result side to count the run's
// voters and fills c. It reports whether the counts match.
func checkTally(ctx context.Context, cfg *config, client *http.Client, r *runner, base tally, c *checkSummary) bool {
	r.mu.Lock()
	c.ExpectedMin = base.Total + r.firstOK
	c.ExpectedMax = c.ExpectedMin + r.ambFirst
	c.AcceptedVoters = r.firstOK
	c.UncertainVoters = r.ambFirst
	abKnown := r.ambFirst == 0 && r.ambRevote == 0
	wantA, wantB := base.A+r.deltaA, base.B+r.deltaB
	r.mu.Unlock()
	if abKnown {
		c.ExpectedA, c.ExpectedB = &wantA, &wantB
	}

	start := time.Now()
	deadline := start.Add(cfg.settle)
	var last tally
	var lastChange time.Time
	haveLast := false
	for {
		pctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		t, err := fetchTally(pctx, client, cfg.resultURL)
		cancel()
		now := time.Now()
		if err == nil {
			if !haveLast || t != last {
				lastChange = now
			}
			last, haveLast = t, true
			c.CountedTotal, c.CountedA, c.CountedB = t.Total, t.A, t.B
			c.Waited = now.Sub(start).Seconds()
			abOK := !abKnown || (t.A == wantA && t.B == wantB)
			switch {
			case t.Total == c.ExpectedMax && abOK:
				c.OK = true
				c.Message = fmt.Sprintf("accepted == counted: %d voters added, %d counted", c.ExpectedMax-base.Total, t.Total-base.Total)
				if c.UncertainVoters > 0 {
					c.Message += fmt.Sprintf(" (including all %d votes whose request failed in transit)", c.UncertainVoters)
				}
				return true
			case t.Total > c.ExpectedMax:
				c.Message = fmt.Sprintf("MISMATCH: the result total grew by %d but the run added at most %d voters (another client voting, or a vote counted twice)",
					t.Total-base.Total, c.ExpectedMax-base.Total)
				return false
			case c.UncertainVoters > 0 && t.Total >= c.ExpectedMin && now.Sub(lastChange) >= 3*time.Second:
				c.OK = true
				c.Message = fmt.Sprintf("accepted == counted: %d accepted voters counted; %d of %d votes whose request failed in transit were also counted",
					c.AcceptedVoters, t.Total-c.ExpectedMin, c.UncertainVoters)
				return true
			}
		} else {
			c.LastError = err.Error()
		}
		if now.After(deadline) || ctx.Err() != nil {
			break
		}
		if !sleepUntil(ctx, now.Add(100*time.Millisecond)) {
			break
		}
	}
	switch {
	case !haveLast:
		c.Message = fmt.Sprintf("MISMATCH: could not read %s/api/results after the run: %s", cfg.resultURL, c.LastError)
	case last.Total < c.ExpectedMin:
		c.Message = fmt.Sprintf("MISMATCH: %d voters accepted but only %d counted after waiting %v (%d missing)",
			c.AcceptedVoters, last.Total-base.Total, cfg.settle, c.ExpectedMin-last.Total)
	case abKnown && last.Total == c.ExpectedMax && last.A > wantA:
		c.Message = fmt.Sprintf("MISMATCH: totals agree (%d) but a=%d b=%d, expected a=%d b=%d: %d revotes (a then b) did not replace the earlier vote",
			last.Total, last.A, last.B, wantA, wantB, last.A-wantA)
	default:
		c.Message = fmt.Sprintf("MISMATCH: total %d a=%d b=%d, expected total %d a=%d b=%d",
			last.Total, last.A, last.B, c.ExpectedMax, wantA, wantB)
	}
	return false
}
