package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/worker"
)

// results collects every run's figures for the summary.
type results struct {
	queueRPS, redisRPS []float64
	directRPS, pgVPS   []float64
	pgSmallVPS         []float64 // pgbench at the batch size direct mode can reach
	pgLanesVPS         []float64 // pgbench with as many clients as the worker has lanes
	drainVPS           []float64
	// CPU use and batches per run, so the verdict can quote the median run.
	queueCPU, directCPU  []cpuUse
	drainCPU, e2eCPU     []cpuUse
	directBatch          []batchStats
	e2e                  *loadSummary // the last run's
	e2eP50, e2eP99       []float64
	e2eMissing           int
	disturbed            map[int]int // step -> runs in which other work took CPU
	tally                *tallyRun
	pgPipelined, pgKnown bool
	failed               []string
}

func nproc() int { return runtime.NumCPU() }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (b *bench) runAll(ctx context.Context, res *results) error {
	var errs []error
	// failed prints and records a step's error; later steps still run
	// unless the run was interrupted.
	failed := func(what string, err error) error {
		fmt.Fprintf(b.out, "    %s FAILED: %v\n", what, err)
		res.failed = append(res.failed, what)
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
		return ctx.Err()
	}
	o := b.o
	// Direct mode holds each request until its batch commits, so a batch
	// can never hold more votes than there are requests in flight.
	smallBatch := min(o.concurrency, o.batchSize)
	for run := 1; run <= o.runs; run++ {
		if o.runs > 1 {
			fmt.Fprintf(b.out, "\n-- run %d of %d (load average %s)\n", run, o.runs, loadAvg())
		} else {
			fmt.Fprintln(b.out)
		}
		var q *queueRun
		if o.steps[1] {
			var err error
			q, err = b.stepQueueVote(ctx, run)
			if err != nil {
				if e := failed("[1] vote queue mode", err); e != nil {
					return errors.Join(errs...)
				}
			} else {
				l := q.load
				res.queueRPS = append(res.queueRPS, l.Throughput)
				res.queueCPU = append(res.queueCPU, q.cpu)
				res.disturbed[1] += btoi(q.cpu.disturbed())
				fmt.Fprintf(b.out, "[1] vote POST, queue mode      %10s req/s    loadgen -rate 0 -concurrency %d -duration %s: %s accepted, %s, latency p50 %.2f ms p99 %.2f ms; %s queued\n",
					num(l.Throughput), o.concurrency, o.duration, num(float64(l.Accepted)), l.failures(), l.Latency.P50, l.Latency.P99, num(float64(q.queued)))
				fmt.Fprintf(b.out, "    %s\n    pushes: %s (one multi-value RPUSH per batch)\n", q.cpu, q.batches)
			}
			rl, err := b.redisRPUSH(ctx, o.concurrency)
			if err != nil {
				if e := failed("[1] limit redis-benchmark", err); e != nil {
					return errors.Join(errs...)
				}
			} else {
				res.redisRPS = append(res.redisRPS, rl.rps)
				fmt.Fprintf(b.out, "    limit: Redis RPUSH         %10s req/s    %s\n    %s\n", num(rl.rps), rl.command, rl.cpu)
				if q != nil {
					fmt.Fprintf(b.out, "    => vote (queue) is %.2f of the RPUSH limit\n", q.load.Throughput/rl.rps)
				}
			}
		}
		var pg, pgSmall *pgLimit
		if o.steps[2] || o.steps[3] {
			l, err := b.pgbenchUpsert(ctx, fmt.Sprintf("pgbench%d", run), o.batchSize, 1)
			if err != nil {
				if e := failed("[2,3] limit pgbench", err); e != nil {
					return errors.Join(errs...)
				}
			} else {
				pg = &l
				res.pgVPS = append(res.pgVPS, l.votesPerSec)
				res.pgPipelined, res.pgKnown = l.pipelined, true
				b.printPg("[limit for 2 and 3] PostgreSQL upsert", l)
			}
		}
		// The worker keeps worker.DefaultLanes batches in flight on as many
		// connections; they queue on the same write lock, but one's commit
		// overlaps the next one's fetch and parse, so its limit is pgbench
		// with as many clients.
		var pgLanes *pgLimit
		if o.steps[3] && worker.DefaultLanes > 1 {
			l, err := b.pgbenchUpsert(ctx, fmt.Sprintf("pgbenchlanes%d", run), o.batchSize, worker.DefaultLanes)
			if err != nil {
				if e := failed("[3] limit pgbench with the worker's lanes", err); e != nil {
					return errors.Join(errs...)
				}
			} else {
				pgLanes = &l
				res.pgLanesVPS = append(res.pgLanesVPS, l.votesPerSec)
				b.printPg(fmt.Sprintf("[limit for 3] same with %d clients (the worker's lanes)", worker.DefaultLanes), l)
			}
		}
		if o.steps[3] {
			d, err := b.stepDrain(ctx, run, q)
			if err != nil {
				if e := failed("[3] worker drain", err); e != nil {
					return errors.Join(errs...)
				}
			} else {
				res.drainVPS = append(res.drainVPS, d.votesPerSec)
				res.drainCPU = append(res.drainCPU, d.cpu)
				res.disturbed[3] += btoi(d.cpu.disturbed())
				fmt.Fprintf(b.out, "[3] worker drain               %10s votes/s  %s votes Redis -> PostgreSQL in %.2f s from process start (first commit at %.2f s; %s votes/s after it), BATCH_SIZE %d\n",
					num(d.votesPerSec), num(float64(d.drained)), d.elapsed.Seconds(), d.firstCommit.Seconds(), num(d.steadyPerSec), o.batchSize)
				fmt.Fprintf(b.out, "    %s\n    writes: %s\n", d.cpu, d.batches)
				if pg != nil {
					fmt.Fprintf(b.out, "    limit: PostgreSQL upsert   %10s votes/s  (pgbench -c 1 above) => worker is %.2f of it\n", num(pg.votesPerSec), d.votesPerSec/pg.votesPerSec)
				}
				if pgLanes != nil {
					fmt.Fprintf(b.out, "    limit: PostgreSQL upsert   %10s votes/s  (pgbench -c %d above) => worker is %.2f of it\n", num(pgLanes.votesPerSec), pgLanes.clients, d.votesPerSec/pgLanes.votesPerSec)
				}
			}
		}
		if o.steps[2] {
			d, err := b.stepDirectVote(ctx, run)
			if err != nil {
				if e := failed("[2] vote direct mode", err); e != nil {
					return errors.Join(errs...)
				}
			} else {
				l := d.load
				res.directRPS = append(res.directRPS, l.Throughput)
				res.directCPU = append(res.directCPU, d.cpu)
				res.directBatch = append(res.directBatch, d.batches)
				res.disturbed[2] += btoi(d.cpu.disturbed())
				fmt.Fprintf(b.out, "[2] vote POST, direct mode     %10s req/s    loadgen -rate 0 -concurrency %d -duration %s: %s accepted, %s, latency p50 %.2f ms p99 %.2f ms; %s voters committed\n",
					num(l.Throughput), o.concurrency, o.duration, num(float64(l.Accepted)), l.failures(), l.Latency.P50, l.Latency.P99, num(float64(d.committed)))
				fmt.Fprintf(b.out, "    %s\n    writes: %s\n", d.cpu, d.batches)
				if pg != nil {
					fmt.Fprintf(b.out, "    limit: PostgreSQL upsert   %10s votes/s  (pgbench above, %d votes/txn) => vote (direct) is %.2f of the limit\n", num(pg.votesPerSec), o.batchSize, l.Throughput/pg.votesPerSec)
				}
			}
			if smallBatch < o.batchSize {
				l, err := b.pgbenchUpsert(ctx, fmt.Sprintf("pgbenchsmall%d", run), smallBatch, 1)
				if err != nil {
					if e := failed("[2] limit pgbench at the in-flight batch size", err); e != nil {
						return errors.Join(errs...)
					}
				} else {
					pgSmall = &l
					res.pgSmallVPS = append(res.pgSmallVPS, l.votesPerSec)
					b.printPg(fmt.Sprintf("    and at %d votes/txn", smallBatch), l)
					if len(res.directRPS) > 0 {
						fmt.Fprintf(b.out, "    => with %d requests in flight a direct-mode batch holds at most %d votes; vote (direct) is %.2f of the upsert limit at that batch size\n",
							o.concurrency, smallBatch, res.directRPS[len(res.directRPS)-1]/pgSmall.votesPerSec)
					}
				}
			}
		}
		if o.steps[4] {
			s, cpu, err := b.stepE2E(ctx, run)
			if err != nil {
				if e := failed("[4] e2e latency", err); e != nil {
					return errors.Join(errs...)
				}
			} else {
				res.e2e = s
				res.e2eCPU = append(res.e2eCPU, cpu)
				e := s.E2E
				res.e2eP50 = append(res.e2eP50, e.P50)
				res.e2eP99 = append(res.e2eP99, e.P99)
				res.e2eMissing += e.Missing
				res.disturbed[4] += btoi(cpu.disturbed())
				fmt.Fprintf(b.out, "[4] vote -> result page at %g votes/s  p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms: %d votes seen on /events, %d missing; %s accepted, %s, vote POST p99 %.2f ms\n",
					o.e2eRate, e.P50, e.P90, e.P99, e.Max, e.Samples, e.Missing, num(float64(s.Accepted)), s.failures(), s.Latency.P99)
				fmt.Fprintf(b.out, "    %s\n", cpu)
				if s.BehindSchedule > 0 {
					fmt.Fprintf(b.out, "    loadgen fell behind: %d due votes were never sent\n", s.BehindSchedule)
				}
				if pgSmall != nil {
					fmt.Fprintf(b.out, "    for scale: one pgbench upsert of %d votes committed in %.2f ms on average\n", pgSmall.batch, pgSmall.out.latencyMS)
				}
			}
		}
	}
	if o.steps[5] {
		fmt.Fprintln(b.out)
		t, err := b.stepTally(ctx)
		if err != nil {
			if e := failed("[5] tally query", err); e != nil {
				return errors.Join(errs...)
			}
		}
		if t != nil {
			res.tally = t
			fmt.Fprintf(b.out, "[5] tally query at %s voters (loaded in %.1f s): store.Tally median %s, p99 %s over %d calls (a=%d b=%d)\n",
				num(float64(t.voters)), t.load.Seconds(), ms(t.oursMedian), ms(t.oursP99), o.tallyCalls, t.tallyA, t.tallyB)
			fmt.Fprintf(b.out, "    beside it: the original's %q median %s over %d calls => %s faster\n",
				originalTallySQL, ms(t.originalMedian), len(t.originalSamples), times(float64(t.originalMedian)/float64(t.oursMedian)))
		}
	}
	return errors.Join(errs...)
}

func (b *bench) printPg(label string, l pgLimit) {
	fmt.Fprintf(b.out, "%s %s votes/s  %s: %.1f tps x %d, latency avg %.2f ms, %d failed txns, %s voters committed\n",
		label, num(l.votesPerSec), l.command, l.out.tps, l.batch, l.out.latencyMS, l.out.failed, num(float64(l.committed)))
	fmt.Fprintf(b.out, "    %s\n", l.cpu)
	if l.note != "" {
		fmt.Fprintf(b.out, "    note: %s\n", l.note)
	}
}

// ---- summary -----------------------------------------------------------------

func printSummary(w io.Writer, o options, r *results) {
	fmt.Fprintf(w, "\nSUMMARY (medians over %d run(s); nproc %d; load generator, services, Redis and PostgreSQL all share these cores)\n", o.runs, nproc())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tmedian\tlimit (raw, same run)\tratio\ttarget\tmet\truns disturbed by other work")
	dist := func(step, n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprintf("%d of %d", r.disturbed[step], n)
	}
	row := func(step int, name string, vals []float64, unit, limName string, lims []float64, target float64) {
		if len(vals) == 0 {
			fmt.Fprintf(tw, "%s\tnot measured\t\t\t%s\t\t\n", name, targetText(target, unit))
			return
		}
		v := median(vals)
		limit, ratio := "not measured", "-"
		if len(lims) > 0 {
			limit = fmt.Sprintf("%s: %s%s", limName, num(median(lims)), spread(lims))
			ratio = fmt.Sprintf("%.2f", v/median(lims))
		}
		met := "-"
		if target > 0 {
			met = yesNo(v >= target)
		}
		fmt.Fprintf(tw, "%s\t%s %s%s\t%s\t%s\t%s\t%s\t%s\n", name, num(v), unit, spread(vals), limit, ratio, targetText(target, unit), met, dist(step, len(vals)))
	}
	smallBatch := min(o.concurrency, o.batchSize)
	if o.steps[1] {
		row(1, "1 vote POST, queue mode", r.queueRPS, "req/s", fmt.Sprintf("redis-benchmark RPUSH -c %d, req/s", o.concurrency), r.redisRPS, targetVoteRPS)
	}
	pgName := fmt.Sprintf("pgbench upsert x%d, votes/s", o.batchSize)
	if o.steps[2] {
		row(2, "2 vote POST, direct mode", r.directRPS, "req/s", pgName, r.pgVPS, 0)
		if len(r.pgSmallVPS) > 0 {
			row(2, "  same, vs its in-flight batch", r.directRPS, "req/s", fmt.Sprintf("pgbench upsert x%d, votes/s", smallBatch), r.pgSmallVPS, 0)
		}
	}
	if o.steps[3] {
		row(3, "3 worker drain", r.drainVPS, "votes/s", pgName, r.pgVPS, targetWorkerVPS)
		if len(r.pgLanesVPS) > 0 {
			row(3, "  same, vs its lanes", r.drainVPS, "votes/s", fmt.Sprintf("pgbench upsert x%d -c %d, votes/s", o.batchSize, worker.DefaultLanes), r.pgLanesVPS, 0)
		}
	}
	if o.steps[4] {
		if len(r.e2eP99) > 0 {
			p99 := median(r.e2eP99)
			fmt.Fprintf(tw, "4 vote->result p50 / p99 @%g/s\t%.1f / %.1f ms%s\t(no single limit: sum of its hops)\t-\tp99 <= %d ms\t%s\t%s\n",
				o.e2eRate, median(r.e2eP50), p99, spreadMS(r.e2eP99), targetE2EP99Milli, yesNo(p99 <= targetE2EP99Milli && r.e2eMissing == 0), dist(4, len(r.e2eP99)))
		} else {
			fmt.Fprintf(tw, "4 vote->result p50 / p99 @%g/s\tnot measured\t\t\tp99 <= %d ms\t\t\n", o.e2eRate, targetE2EP99Milli)
		}
	}
	if o.steps[5] {
		if t := r.tally; t != nil {
			fmt.Fprintf(tw, "5 tally query @%s voters\t%s\toriginal GROUP BY: %s\t1/%s\t-\t-\t\n",
				num(float64(t.voters)), ms(t.oursMedian), ms(t.originalMedian), strings.TrimSuffix(times(float64(t.originalMedian)/float64(t.oursMedian)), "x"))
		} else {
			fmt.Fprintf(tw, "5 tally query\tnot measured\t\t\t\t\t\n")
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\nwhat holds each back:")
	if len(r.queueRPS) > 0 {
		fmt.Fprintf(w, "  1 vote queue: %s\n", verdict(median(r.queueRPS), r.redisRPS, "Redis RPUSH", r.queueCPU[medianIndex(r.queueRPS)]))
	}
	if len(r.directRPS) > 0 {
		mi := medianIndex(r.directRPS)
		v := verdict(median(r.directRPS), r.pgVPS, fmt.Sprintf("the PostgreSQL upsert at %d votes/txn", o.batchSize), r.directCPU[mi])
		if len(r.pgSmallVPS) > 0 {
			v += fmt.Sprintf("; but with -concurrency %d a batch holds at most %d votes (measured: %s), and at that size the upsert limit is %s votes/s (ratio %.2f)",
				o.concurrency, smallBatch, r.directBatch[mi], num(median(r.pgSmallVPS)), median(r.directRPS)/median(r.pgSmallVPS))
		}
		if bs := r.directBatch[mi]; bs.writes > 0 && bs.seconds > 0 {
			// Closed loop: every request waits for the commit of its batch.
			v += fmt.Sprintf("; it is a closed loop: each request waits for its batch to commit, so %d requests in flight over %.2f ms writes allow at most %s req/s",
				o.concurrency, 1000*bs.seconds/float64(bs.writes), num(float64(o.concurrency)*float64(bs.writes)/bs.seconds))
		}
		fmt.Fprintf(w, "  2 vote direct: %s\n", v)
	}
	if len(r.drainVPS) > 0 {
		fmt.Fprintf(w, "  3 worker: %s\n", func() string {
			lims, name := r.pgVPS, "the PostgreSQL upsert (pgbench -c 1)"
			if len(r.pgLanesVPS) > 0 {
				lims, name = r.pgLanesVPS, fmt.Sprintf("the PostgreSQL upsert with %d clients like its lanes", worker.DefaultLanes)
			}
			return verdict(median(r.drainVPS), lims, name, r.drainCPU[medianIndex(r.drainVPS)])
		}())
	}
	if len(r.e2eP99) > 0 {
		p99 := median(r.e2eP99)
		fmt.Fprintf(w, "  4 latency: p99 %.1f ms is %.2f of the %d ms budget; the path is HTTP -> RPUSH -> worker batch -> upsert+NOTIFY -> SSE, bounded by no single limit (median run: %s at %g votes/s)",
			p99, p99/targetE2EP99Milli, targetE2EP99Milli, r.e2eCPU[medianIndex(r.e2eP99)].short(), o.e2eRate)
		if r.e2eMissing > 0 {
			fmt.Fprintf(w, "; %d accepted votes never showed on /events", r.e2eMissing)
		}
		fmt.Fprintln(w)
	}
	if t := r.tally; t != nil {
		fmt.Fprintf(w, "  5 tally: store.Tally reads the two running-total rows, so its time is one round trip whatever the number of voters; the original's GROUP BY scans all %s rows\n", num(float64(t.voters)))
	}
	if r.pgKnown {
		how := "lock + upsert sent between \\startpipeline and \\endpipeline (one round trip, one implicit transaction, like pgx's batch)"
		if !r.pgPipelined {
			how = "lock + upsert in BEGIN/COMMIT (pipelining failed; two extra round trips per batch)"
		}
		fmt.Fprintf(w, "  pgbench ran -M %s, %s; its rows come from generate_series inside the server, so it ships no batch over the wire but pays ~1-2 ms per 1000 rows to generate and sort them (md5/random)%s; a figure somewhat above 1x its pgbench limit is at the database's limit\n", o.pgbenchMode, how, map[bool]string{true: " and plans every batch (~0.5 ms)"}[o.pgbenchMode == "extended"])
	}
	if len(r.failed) > 0 {
		fmt.Fprintf(w, "  FAILED: %s\n", strings.Join(r.failed, "; "))
	}
}

// verdict names what limits a throughput figure: the measured limit when the
// figure is close to it, otherwise the CPUs when they were saturated (the
// load generator runs on the same cores), otherwise the service itself.
func verdict(v float64, lims []float64, limName string, cpu cpuUse) string {
	if len(lims) == 0 {
		return "limit not measured; " + cpu.short()
	}
	ratio := v / median(lims)
	switch {
	case ratio > 1.05:
		return fmt.Sprintf("%.2f of %s: at the limit (above 1 means the limit's run was the slower one: load from other work, or pgbench generating its rows; %s)", ratio, limName, cpu.short())
	case ratio >= 0.8:
		return fmt.Sprintf("%.2f of the limit: %s holds it back (%s)", ratio, limName, cpu.short())
	case cpu.saturated() && cpu.disturbed():
		return fmt.Sprintf("%.2f of %s; the CPUs hold it back (%s): other work on the machine took part of them, rerun on a quiet machine", ratio, limName, cpu.short())
	case cpu.saturated():
		return fmt.Sprintf("%.2f of %s; the CPUs hold it back (%s): the service shares %d cores with the load generator and its backend", ratio, limName, cpu.short(), nproc())
	default:
		return fmt.Sprintf("%.2f of %s with CPU to spare (%s): the service itself holds it back", ratio, limName, cpu.short())
	}
}

func targetText(t float64, unit string) string {
	if t <= 0 {
		return "-"
	}
	return fmt.Sprintf(">= %s %s", num(t), unit)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func spreadMS(v []float64) string {
	if len(v) < 2 {
		return ""
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return fmt.Sprintf(" (p99 %.1f-%.1f)", s[0], s[len(s)-1])
}

// spread shows min-max when a figure was measured more than once.
func spread(v []float64) string {
	if len(v) < 2 {
		return ""
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return fmt.Sprintf(" (%s-%s)", num(s[0]), num(s[len(s)-1]))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianIndex is the index of the run whose value is the (lower) median.
func medianIndex(v []float64) int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	return idx[(len(v)-1)/2]
}

// durPercentile is the nearest-rank percentile (p=50 gives the lower median
// of an even count).
func durPercentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// num formats with thousands separators and no decimals above 100.
func num(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "-"
	}
	if math.Abs(f) < 100 && f != math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(f)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) + " ms"
}

func times(x float64) string {
	if x >= 10 {
		return num(x) + "x"
	}
	return strconv.FormatFloat(x, 'f', 1, 64) + "x"
}
