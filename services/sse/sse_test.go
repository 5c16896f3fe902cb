package sse

import (
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := ": comment\r\n\r\nevent: tally\r\ndata: {\"total\":1}\r\n\r\ndata:line1\ndata: line2\n\nretry: 10\n\n"
	var got []string
	err := Parse(strings.NewReader(in), func(d string) { got = append(got, d) })
	if err != io.ErrUnexpectedEOF {
		t.Errorf("err %v", err)
	}
	if len(got) != 2 || got[0] != `{"total":1}` || got[1] != "line1\nline2" {
		t.Errorf("events %q", got)
	}
}
