package backoff

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestNextIsCappedAndGrows(t *testing.T) {
	b := New(10*time.Millisecond, 200*time.Millisecond)
	var last time.Duration
	for i := 0; i < 50; i++ {
		d := b.Next()
		if d <= 0 || d > 200*time.Millisecond {
			t.Fatalf("attempt %d: %v outside (0, cap]", i, d)
		}
		last = d
	}
	if last < 100*time.Millisecond {
		t.Fatalf("after many attempts wait %v should be at least half the cap", last)
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond {
		t.Fatalf("after reset wait %v should be near base", d)
	}
}

func TestRetryUntilSuccess(t *testing.T) {
	n := 0
	err := Retry(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), "thing", func(context.Context) error {
		n++
		if n < 3 {
			return errors.New("down")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Retry = %v after %d calls", err, n)
	}
}
