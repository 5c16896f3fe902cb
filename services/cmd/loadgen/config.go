package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"
	"time"
)

// config is the validated command line.
type config struct {
	voteURL     string        // full URL votes are POSTed to
	resultURL   string        // base URL of the result service ("" = no check)
	rate        float64       // votes/s; 0 = as fast as the connections allow
	duration    time.Duration // 0 = not bounded by time
	votes       int64         // 0 = not bounded by count
	voters      int64         // distinct voters; 0 = a new voter for every first vote
	revote      float64       // fraction of voters who vote a second time
	concurrency int
	timeout     time.Duration // per request
	settle      time.Duration // bound on waiting for the result side to catch up
	e2e         bool
	jsonOut     bool
	progress    time.Duration // 0 = no progress lines
}

const usageHead = `loadgen drives the Ladder vote service with POST / votes, each from a voter
identified by a random 16-hex-digit voter_id cookie, and reports throughput
and latency. Votes are scheduled open-loop: at a fixed -rate, the latency of a
vote is measured from the time it was due to be sent, so a slow server cannot
hide its stalls by slowing the generator down (no coordinated omission).

With -result-url it also reads the result service's tally before and after the
run and checks that every voter the run added is counted (and that a revote
replaced the earlier vote); it exits 1 on a mismatch. With -e2e it subscribes
to the result service's /events stream and measures how long a vote takes to
show on the result page.

The run always ends by itself: give -duration and/or -votes (or -voters).

Usage: loadgen -vote-url URL [flags]

Examples:
  loadgen -vote-url http://127.0.0.1:8080/ -duration 10s -concurrency 64
  loadgen -vote-url http://vote.example.com/ -result-url http://result.example.com/ \
          -rate 200 -duration 1m -revote 0.1
  loadgen -vote-url http://127.0.0.1:8080/ -result-url http://127.0.0.1:8081/ \
          -e2e -rate 1000 -duration 10s

Flags:
`

// parseFlags parses and validates args (without the program name).
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	var votes, voters int64
	fs.StringVar(&c.voteURL, "vote-url", "", "vote service URL to POST votes to, e.g. http://127.0.0.1:8080/ (required)")
	fs.StringVar(&c.resultURL, "result-url", "", "result service base URL, e.g. http://127.0.0.1:8081; enables the end-of-run tally check (and -e2e)")
	fs.Float64Var(&c.rate, "rate", 0, "votes per second, scheduled open-loop; 0 = as fast as -concurrency connections allow")
	fs.DurationVar(&c.duration, "duration", 0, "stop sending after this long (e.g. 30s); 0 = not bounded by time")
	fs.Int64Var(&votes, "votes", 0, "stop after sending this many votes (first votes plus revotes); 0 = not bounded by count")
	fs.Int64Var(&voters, "voters", 0, "number of distinct voters; the run ends when each has voted (and revoted); 0 = a new voter for every first vote")
	fs.Float64Var(&c.revote, "revote", 0, "fraction (0..1) of voters who vote a second time, for the other option, after their first vote was accepted; the later vote must win")
	fs.IntVar(&c.concurrency, "concurrency", 16, "concurrent requests (and HTTP connections)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.DurationVar(&c.settle, "settle", 30*time.Second, "with -result-url: how long to wait after the run for the result side to count every vote")
	fs.BoolVar(&c.e2e, "e2e", false, "measure vote-to-result-page latency via the result service's /events stream (needs -result-url and -rate; every vote is a new voter)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the summary as one JSON object instead of text")
	fs.DurationVar(&c.progress, "progress", 5*time.Second, "print a progress line to stderr this often; 0 = never")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (all options are flags; see -h)", fs.Arg(0))
	}
	c.votes, c.voters = votes, voters
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.voteURL == "" {
		bad("-vote-url is required (e.g. -vote-url http://127.0.0.1:8080/)")
	} else if err := checkHTTPURL(c.voteURL); err != nil {
		bad("-vote-url: %v", err)
	}
	if c.resultURL != "" {
		if err := checkHTTPURL(c.resultURL); err != nil {
			bad("-result-url: %v", err)
		} else {
			c.resultURL = resultBase(c.resultURL)
		}
	}
	if math.IsNaN(c.rate) || math.IsInf(c.rate, 0) || c.rate < 0 {
		bad("-rate must be a number >= 0 (0 = as fast as possible), got %v", c.rate)
	} else if c.rate > 0 && c.rate < 0.001 {
		bad("-rate %v is below 0.001 votes/s", c.rate)
	} else if c.rate > 10_000_000 {
		bad("-rate %v is above 10,000,000 votes/s", c.rate)
	}
	if c.duration < 0 {
		bad("-duration must be >= 0, got %v", c.duration)
	}
	if c.votes < 0 {
		bad("-votes must be >= 0, got %d", c.votes)
	}
	if c.voters < 0 {
		bad("-voters must be >= 0, got %d", c.voters)
	}
	if c.duration <= 0 && c.votes <= 0 && c.voters <= 0 {
		bad("the run must be bounded: give -duration and/or -votes (or -voters)")
	}
	if math.IsNaN(c.revote) || c.revote < 0 || c.revote > 1 {
		bad("-revote must be a fraction between 0 and 1, got %v", c.revote)
	}
	if c.concurrency < 1 || c.concurrency > 100_000 {
		bad("-concurrency must be between 1 and 100000, got %d", c.concurrency)
	}
	if c.timeout <= 0 {
		bad("-timeout must be > 0, got %v", c.timeout)
	}
	if c.settle <= 0 {
		bad("-settle must be > 0, got %v", c.settle)
	}
	if c.progress < 0 {
		bad("-progress must be >= 0, got %v", c.progress)
	}
	if c.e2e {
		if c.resultURL == "" {
			bad("-e2e needs -result-url (it subscribes to <result-url>/events)")
		}
		if c.rate == 0 {
			bad("-e2e needs a fixed -rate (latency at an unbounded rate only measures the queue)")
		}
		if c.revote > 0 {
			bad("-e2e needs every vote to be a new voter, so -revote must be 0")
		}
	}
	return errors.Join(errs...)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: missing host", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q: credentials in the URL are not supported", s)
	}
	return nil
}

// resultBase turns a result-service URL into its base: trailing slashes and a
// trailing /api/results or /events are dropped, so users may paste either.
func resultBase(s string) string {
	s = strings.TrimRight(s, "/")
	for _, suffix := range []string{"/api/results", "/events"} {
		s = strings.TrimSuffix(s, suffix)
	}
	return strings.TrimRight(s, "/")
}
