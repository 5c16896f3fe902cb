package sse

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// Follow reconnects after a failed or ended stream, reports each failure,
// and delivers the events of every connection.
func TestFollowReconnects(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		switch n.Add(1) {
		case 1:
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "data: wrong type\n\n")
		default:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: one\n\ndata: two\n\n") // then the stream ends
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []string
	var errs []error
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, srv.Client(), srv.URL, func(d string) {
			mu.Lock()
			defer mu.Unlock()
			if got = append(got, d); len(got) == 4 {
				cancel()
			}
		}, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Follow never delivered four events")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "one,two,one,two" {
		t.Errorf("events %q: want both connections' events, none from the text/plain one", got)
	}
	if len(errs) < 3 || !strings.Contains(errs[0].Error(), "503") || !strings.Contains(errs[1].Error(), "Content-Type") || !strings.Contains(errs[2].Error(), "stream ended") {
		t.Errorf("errors %v", errs)
	}
}
