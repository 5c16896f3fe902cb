package chaos_test

import (
	"context"
	"os"
	"testing"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopDynalite()
	os.Exit(code)
}

// dynamoVoters is smaller than the PostgreSQL run's: dynalite is a
// single-threaded Node server and every vote costs several round trips.
const dynamoVoters = 3000

// TestChaosDynamoDB is TestChaos with STORE=dynamodb workers writing to
// dynalite: SIGKILLs with votes in hand (intents left pending mid-way)
// and Redis connection kills; afterwards exactly N voter items holding
// the last votes, no pending intent, and shard tallies equal to a recount
// by Scan.
func TestChaosDynamoDB(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: builds the worker and runs it for several seconds; skipped under -short")
	}
	endpoint, table := testenv.DynamoDB(t)
	var c *cluster
	runChaos(t, chaosStore{
		env: []string{"STORE=dynamodb", "DYNAMODB_TABLE=" + table, "DYNAMODB_ENDPOINT=" + endpoint,
			"AWS_REGION=" + testenv.DynamoRegion, "AWS_ACCESS_KEY_ID=" + testenv.DynamoAccessKey,
			"AWS_SECRET_ACCESS_KEY=" + testenv.DynamoSecretKey, "AWS_EC2_METADATA_DISABLED=true"},
		// No server-side connection kill in dynalite; SIGKILLs cut requests mid-flight.
		cut: func() {},
		check: func(last map[string]ballot.Vote) {
			checkDynamo(t, endpoint, table, last)
		},
	}, dynamoVoters, &c)
}

func checkDynamo(t *testing.T, endpoint, table string, last map[string]ballot.Vote) {
	t.Helper()
	ctx := context.Background()
	s, err := store.OpenDynamoDB(ctx, store.DynamoOptions{Table: table, Region: testenv.DynamoRegion, Endpoint: endpoint,
		AccessKey: testenv.DynamoAccessKey, SecretKey: testenv.DynamoSecretKey})
	if err != nil {
		t.Fatal(err)
	}
	recount, got, pending, err := s.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pending > 0 {
		t.Errorf("%d voter items still hold a pending intent", pending)
	}
	if len(got) != len(last) {
		t.Errorf("%d voter items, want exactly %d (one per voter)", len(got), len(last))
	}
	wrong := 0
	for id, want := range last {
		if g := got[id]; g != want {
			if wrong++; wrong <= 5 {
				t.Errorf("voter %s: item %+v, want their last vote %+v", id, g, want)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d voters have an item other than their last vote", wrong)
	}
	tl, err := s.Tally(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tl != recount {
		t.Errorf("tally %+v, recount %+v", tl, recount)
	}
	t.Logf("voter items %d, tally %+v", len(got), tl)
}
