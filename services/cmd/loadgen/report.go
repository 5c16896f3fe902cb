package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// summary is the result of a run; -json prints it as is.
type summary struct {
	VoteURL     string  `json:"vote_url"`
	ResultURL   string  `json:"result_url,omitempty"`
	Rate        float64 `json:"rate"` // requested votes/s, 0 = unbounded
	Concurrency int     `json:"concurrency"`
	Duration    float64 `json:"duration_s,omitempty"`
	VotesLimit  int64   `json:"votes_limit,omitempty"`
	VotersLimit int64   `json:"voters_limit,omitempty"`
	Revote      float64 `json:"revote,omitempty"`

	Elapsed        float64           `json:"elapsed_s"`
	Sent           int64             `json:"sent"`
	Accepted       int64             `json:"accepted"`
	Failed         int64             `json:"failed"`
	FailedByStatus map[string]int64  `json:"failed_by_status,omitempty"`
	Errors         map[string]int64  `json:"errors,omitempty"`
	ErrorExamples  map[string]string `json:"error_examples,omitempty"`
	BehindSchedule int64             `json:"behind_schedule,omitempty"` // due votes never sent: the target rate was not reached
	Voters         int64             `json:"voters"`                    // distinct voters with an accepted vote
	Revotes        int64             `json:"revotes"`                   // accepted revotes
	Throughput     float64           `json:"throughput_rps"`            // accepted votes/s
	SentRate       float64           `json:"sent_rps"`
	Latency        latencySummary    `json:"latency_ms"`
	Interrupted    bool              `json:"interrupted,omitempty"`

	Check *checkSummary `json:"check,omitempty"`
	E2E   *e2eSummary   `json:"e2e,omitempty"`
	Error string        `json:"error,omitempty"`
}

// latencySummary: latency of accepted votes in ms, from the time each vote
// was due (open loop) to the end of its response.
type latencySummary struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type checkSummary struct {
	OK              bool    `json:"ok"`
	Message         string  `json:"message"`
	BaselineTotal   int64   `json:"baseline_total"`
	BaselineA       int64   `json:"baseline_a"`
	BaselineB       int64   `json:"baseline_b"`
	AcceptedVoters  int64   `json:"accepted_voters"`
	UncertainVoters int64   `json:"uncertain_voters,omitempty"` // first votes that failed in transit (may or may not count)
	ExpectedMin     int64   `json:"expected_total_min"`
	ExpectedMax     int64   `json:"expected_total_max"`
	ExpectedA       *int64  `json:"expected_a,omitempty"`
	ExpectedB       *int64  `json:"expected_b,omitempty"`
	CountedTotal    int64   `json:"counted_total"`
	CountedA        int64   `json:"counted_a"`
	CountedB        int64   `json:"counted_b"`
	Waited          float64 `json:"waited_s"`
	LastError       string  `json:"last_error,omitempty"`
}

type e2eSummary struct {
	Samples       int     `json:"samples"`
	Missing       int     `json:"missing"` // accepted votes never seen on /events within -settle
	BaselineTotal int64   `json:"baseline_total"`
	P50           float64 `json:"p50_ms"`
	P90           float64 `json:"p90_ms"`
	P99           float64 `json:"p99_ms"`
	Max           float64 `json:"max_ms"`
	Reconnects    int     `json:"reconnects"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *summary) fillLoad(r *runner, h *hist, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Elapsed = elapsed.Seconds()
	s.Sent, s.Accepted, s.Failed = r.sent.Load(), r.accepted.Load(), r.failed.Load()
	s.Voters, s.Revotes = r.firstOK, r.revoteOK
	if len(r.statuses) > 0 {
		s.FailedByStatus = map[string]int64{}
		for k, v := range r.statuses {
			s.FailedByStatus[strconv.Itoa(k)] = v
		}
	}
	if len(r.errs) > 0 {
		s.Errors = maps.Clone(r.errs)
		s.ErrorExamples = maps.Clone(r.errExample)
	}
	if elapsed > 0 {
		s.Throughput = float64(s.Accepted) / elapsed.Seconds()
		s.SentRate = float64(s.Sent) / elapsed.Seconds()
	}
	s.Latency = latencySummary{
		P50: ms(h.percentile(50)), P90: ms(h.percentile(90)), P99: ms(h.percentile(99)),
		P999: ms(h.percentile(99.9)), Max: ms(h.maxDur()), Mean: ms(h.mean()),
	}
}

func writeJSON(w io.Writer, s *summary) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s)
}

func writeText(w io.Writer, s *summary) {
	var b strings.Builder
	rate := "unbounded (as fast as possible)"
	if s.Rate > 0 {
		rate = fmt.Sprintf("%g votes/s (open loop)", s.Rate)
	}
	fmt.Fprintf(&b, "target       %s  rate %s  concurrency %d\n", s.VoteURL, rate, s.Concurrency)
	if s.Error != "" {
		fmt.Fprintf(&b, "error        %s\n", s.Error)
	}
	fmt.Fprintf(&b, "elapsed      %.2fs%s\n", s.Elapsed, map[bool]string{true: "  (interrupted)"}[s.Interrupted])
	fmt.Fprintf(&b, "sent         %d\n", s.Sent)
	fmt.Fprintf(&b, "accepted     %d  (%d voters, %d revotes)\n", s.Accepted, s.Voters, s.Revotes)
	fmt.Fprintf(&b, "failed       %d", s.Failed)
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.FailedByStatus)) {
		parts = append(parts, fmt.Sprintf("HTTP %s: %d", k, s.FailedByStatus[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, s.Errors[k]))
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, "  (%s)", strings.Join(parts, ", "))
	}
	b.WriteString("\n")
	for _, k := range slices.Sorted(maps.Keys(s.ErrorExamples)) {
		fmt.Fprintf(&b, "             e.g. %s\n", s.ErrorExamples[k])
	}
	if s.BehindSchedule > 0 {
		fmt.Fprintf(&b, "behind       %d due votes were never sent: the target rate was not reached\n", s.BehindSchedule)
	}
	fmt.Fprintf(&b, "throughput   %.1f accepted votes/s  (%.1f sent/s)\n", s.Throughput, s.SentRate)
	l := s.Latency
	fmt.Fprintf(&b, "latency      p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms  mean %.3fms\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	if e := s.E2E; e != nil {
		fmt.Fprintf(&b, "e2e latency  p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms  (%d votes seen on /events, %d missing, %d reconnects)\n",
			e.P50, e.P90, e.P99, e.Max, e.Samples, e.Missing, e.Reconnects)
	}
	if c := s.Check; c != nil && c.Message != "" {
		fmt.Fprintf(&b, "check        %s\n", c.Message)
		fmt.Fprintf(&b, "             baseline total %d, now %d (a %d, b %d), waited %.1fs\n",
			c.BaselineTotal, c.CountedTotal, c.CountedA, c.CountedB, c.Waited)
	}
	io.WriteString(w, b.String())
}
