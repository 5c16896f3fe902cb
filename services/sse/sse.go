// Package sse reads a text/event-stream (Server-Sent Events), as the result
// service's /events sends it. It is outside internal/ so that the clients in
// other modules (the canary Lambda) read the stream with the same code as
// cmd/loadgen.
package sse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Parse calls fn with each event's data (multiple data lines joined by
// "\n"), per the WHATWG EventSource rules that matter here: comment lines
// start with ':', an empty line ends an event, and one optional space after
// the field's colon is dropped. A stream that ends returns
// io.ErrUnexpectedEOF: the result service never ends one on purpose.
func Parse(r io.Reader, fn func(data string)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var data strings.Builder
	hasData := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if hasData {
				fn(data.String())
			}
			data.Reset()
			hasData = false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		if field == "data" {
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		}
	}
}

// Follow reads the event stream at url until ctx ends, calling fn with each
// event's data. When the stream fails or ends it calls onErr (if not nil)
// and connects again after a backoff that doubles from 100 ms to 2 s, as a
// browser's EventSource would. The response must be 200 with a
// text/event-stream body.
func Follow(ctx context.Context, c *http.Client, url string, fn func(data string), onErr func(error)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := stream(ctx, c, url, fn)
		if ctx.Err() != nil {
			return
		}
		if onErr != nil {
			onErr(err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func stream(ctx context.Context, c *http.Client, url string, fn func(data string)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("GET %s: Content-Type %q, want text/event-stream", url, ct)
	}
	return fmt.Errorf("GET %s: stream ended: %w", url, Parse(resp.Body, fn))
}
