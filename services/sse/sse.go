// Package sse reads a text/event-stream (Server-Sent Events), as the result
// service's /events sends it. It is outside internal/ so that the clients in
// other modules (the canary Lambda) read the stream with the same code as
// cmd/loadgen.
package sse

import (
	"bufio"
	"errors"
	"io"
	"strings"
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
