package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsValid(t *testing.T) {
	c, err := parseFlags([]string{
		"-vote-url", "http://127.0.0.1:8080/", "-result-url", "http://127.0.0.1:8081/api/results",
		"-rate", "1000", "-duration", "10s", "-votes", "5000", "-voters", "4000", "-revote", "0.25",
		"-concurrency", "64", "-timeout", "3s", "-json",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.resultURL != "http://127.0.0.1:8081" {
		t.Errorf("result base %q", c.resultURL)
	}
	if c.rate != 1000 || c.duration != 10*time.Second || c.votes != 5000 || c.voters != 4000 ||
		c.revote != 0.25 || c.concurrency != 64 || c.timeout != 3*time.Second || !c.jsonOut {
		t.Errorf("parsed %+v", c)
	}
	// Bounded by -voters alone is fine too.
	if _, err := parseFlags([]string{"-vote-url", "https://vote.example.com/", "-voters", "10"}, io.Discard); err != nil {
		t.Errorf("voters-only run: %v", err)
	}
	if _, err := parseFlags([]string{"-vote-url", "http://h/", "-result-url", "http://r:8081", "-e2e", "-rate", "100", "-votes", "10"}, io.Discard); err != nil {
		t.Errorf("e2e run: %v", err)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	base := []string{"-vote-url", "http://127.0.0.1:8080/", "-duration", "1s"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing vote url", []string{"-duration", "1s"}, "-vote-url is required"},
		{"bad scheme", []string{"-vote-url", "ftp://x/", "-duration", "1s"}, "scheme must be http or https"},
		{"no host", []string{"-vote-url", "http:///x", "-duration", "1s"}, "missing host"},
		{"relative", []string{"-vote-url", "127.0.0.1:8080", "-duration", "1s"}, "-vote-url"},
		{"unbounded", []string{"-vote-url", "http://h/"}, "must be bounded"},
		{"negative rate", append(base, "-rate", "-5"), "-rate must be a number >= 0"},
		{"nan rate", append(base, "-rate", "NaN"), "-rate must be"},
		{"negative duration", []string{"-vote-url", "http://h/", "-duration", "-1s", "-votes", "1"}, "-duration must be >= 0"},
		{"negative votes", append(base, "-votes", "-1"), "-votes must be >= 0"},
		{"negative voters", append(base, "-voters", "-1"), "-voters must be >= 0"},
		{"revote > 1", append(base, "-revote", "1.5"), "-revote must be a fraction"},
		{"revote < 0", append(base, "-revote", "-0.1"), "-revote must be a fraction"},
		{"zero concurrency", append(base, "-concurrency", "0"), "-concurrency must be between"},
		{"zero timeout", append(base, "-timeout", "0s"), "-timeout must be > 0"},
		{"zero settle", append(base, "-settle", "0s"), "-settle must be > 0"},
		{"e2e without result", append(base, "-e2e", "-rate", "10"), "-e2e needs -result-url"},
		{"e2e without rate", append(base, "-e2e", "-result-url", "http://r/"), "-e2e needs a fixed -rate"},
		{"e2e with revote", append(base, "-e2e", "-result-url", "http://r/", "-rate", "5", "-revote", "0.1"), "-revote must be 0"},
		{"bad result url", append(base, "-result-url", "nope"), "-result-url"},
		{"positional", append(base, "extra"), `unexpected argument "extra"`},
		{"unknown flag", append(base, "-nope"), "flag provided but not defined"},
		{"not a number", append(base, "-votes", "many"), "invalid value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseFlags(c.args, io.Discard)
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestParseFlagsReportsAllErrors(t *testing.T) {
	_, err := parseFlags([]string{"-rate", "-1", "-revote", "2"}, io.Discard)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"-vote-url is required", "-rate must", "-revote must", "must be bounded"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %q", want, err)
		}
	}
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	_, err := parseFlags([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(out.String(), "-vote-url") || !strings.Contains(out.String(), "coordinated omission") {
		t.Errorf("usage text: %s", out.String())
	}
	if code := run([]string{"-h"}, io.Discard, io.Discard); code != 0 {
		t.Errorf("-h exit %d", code)
	}
	if code := run([]string{"-rate", "x"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad flag exit %d", code)
	}
}

func TestResultBase(t *testing.T) {
	for in, want := range map[string]string{
		"http://r:8081":              "http://r:8081",
		"http://r:8081/":             "http://r:8081",
		"http://r:8081/api/results":  "http://r:8081",
		"http://r:8081/api/results/": "http://r:8081",
		"http://r:8081/events":       "http://r:8081",
		"https://x.example/prefix/":  "https://x.example/prefix",
	} {
		if got := resultBase(in); got != want {
			t.Errorf("resultBase(%q) = %q, want %q", in, got, want)
		}
	}
}
