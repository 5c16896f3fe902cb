package sink_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/config"
	"github.com/ladder-cdk/ladder/services/internal/sink"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopDynalite()
	os.Exit(code)
}

// Direct mode with STORE=dynamodb: a vote is in the table (and the tally)
// when Cast returns.
func TestDirectDynamoDB(t *testing.T) {
	ctx := context.Background()
	endpoint, table := testenv.DynamoDB(t)
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.DynamoAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.DynamoSecretKey)
	cfg := config.Config{VoteMode: config.ModeDirect, Store: config.StoreDynamoDB, DynamoTable: table,
		AWSRegion: testenv.DynamoRegion, DynamoEndpoint: endpoint, BatchSize: 100, BatchLinger: time.Millisecond}
	b, err := sink.Open(ctx, cfg, "n1", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if b.Dependency() != "dynamodb" {
		t.Fatalf("dependency %q", b.Dependency())
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for i, o := range []string{"a", "b", "b"} {
		if err := b.Cast(ctx, ballot.Vote{VoterID: "00000000000000a" + string(rune('0'+i)), Option: o, CastAt: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenDynamoDB(ctx, store.DynamoOptions{Table: table, Region: testenv.DynamoRegion, Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if tl, err := s.Tally(ctx); err != nil || tl != (store.Tally{A: 1, B: 2}) {
		t.Fatalf("tally %+v, %v; want a=1 b=2", tl, err)
	}
}
