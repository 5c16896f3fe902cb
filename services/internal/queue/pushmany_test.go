package queue_test

import (
	"context"
	"slices"
	"testing"

	"github.com/ladder-cdk/ladder/services/internal/queue"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestPushManyKeepsOrderAfterPush(t *testing.T) {
	ctx := context.Background()
	url, prefix := testenv.Redis(t)
	rdb := testenv.RedisClient(t, url)
	keys := queue.NewKeys(prefix)
	p := queue.NewProducer(rdb, keys)
	if err := p.Push(ctx, []byte("0")); err != nil {
		t.Fatal(err)
	}
	if err := p.PushMany(ctx, [][]byte{[]byte("1"), []byte("2"), []byte("3")}); err != nil {
		t.Fatal(err)
	}
	if err := p.PushMany(ctx, nil); err != nil {
		t.Fatalf("empty PushMany: %v", err)
	}
	got, err := rdb.LRange(ctx, keys.Votes(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0", "1", "2", "3"}; !slices.Equal(got, want) {
		t.Fatalf("list = %v, want %v", got, want)
	}
}
