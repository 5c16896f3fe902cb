package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/internal/store"
	"github.com/ladder-cdk/ladder/services/testenv"
)

func checkTallies(t *testing.T, s store.TallyChecker) store.TallyCheck {
	t.Helper()
	c, err := s.CheckTallies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A tally row edited behind the writers' back is reported as drift, and
// the repair rewrites it from the votes and notifies result pages.
func TestPostgresCheckAndRepairTallies(t *testing.T) {
	ctx := context.Background()
	s, u := open(t)
	if err := s.ApplyVotes(ctx, []ballot.Vote{
		{VoterID: id(1), Option: "a", CastAt: 1}, {VoterID: id(2), Option: "a", CastAt: 1}, {VoterID: id(3), Option: "b", CastAt: 1},
	}); err != nil {
		t.Fatal(err)
	}
	want := store.Tally{A: 2, B: 1}
	if c := checkTallies(t, s); !c.OK() || c.Recount != want {
		t.Fatalf("check of consistent tallies: %+v, want ok with recount %+v", c, want)
	}
	db := testenv.Conn(t, u)
	if _, err := db.Exec(ctx, "UPDATE tallies SET count = count + 5 WHERE option = 'a'"); err != nil {
		t.Fatal(err)
	}
	c := checkTallies(t, s)
	if c.OK() || c.Drift() != (store.Tally{A: 5}) || c.Recount != want {
		t.Fatalf("check after drift: %+v (drift %+v), want drift a=5 and recount %+v", c, c.Drift(), want)
	}

	listener := testenv.Conn(t, u)
	if _, err := listener.Exec(ctx, "LISTEN "+store.Channel); err != nil {
		t.Fatal(err)
	}
	before, err := s.RepairTallies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before != c {
		t.Errorf("repair started from %+v, want %+v", before, c)
	}
	if c := checkTallies(t, s); !c.OK() || c.Recount != want {
		t.Fatalf("check after repair: %+v", c)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	if err != nil {
		t.Fatalf("no notification after the repair: %v", err)
	}
	if got, err := store.ParseNotification(n.Payload); err != nil || got != want {
		t.Fatalf("notification %q = %+v, %v; want %+v", n.Payload, got, err, want)
	}
}

// The repair takes the writers' lock, so running it while votes keep
// arriving leaves no drift.
func TestPostgresRepairTalliesOnline(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	var (
		wg      sync.WaitGroup
		writing sync.WaitGroup
	)
	done := make(chan struct{})
	for w := range 8 {
		writing.Go(func() {
			for i := range 60 {
				batch := make([]ballot.Vote, 20)
				for j := range batch {
					// New voters and changed votes, so the tallies move.
					batch[j] = ballot.Vote{VoterID: fmt.Sprintf("%02x%014x", w, (i*20+j)%300), Option: ballot.Options[(i+j/3)%2], CastAt: int64(i + 1)}
				}
				if err := s.ApplyVotes(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	repairs := 0
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.RepairTallies(ctx); err != nil {
				t.Error(err)
				return
			}
			repairs++
		}
	})
	writing.Wait()
	close(done)
	wg.Wait()
	if c := checkTallies(t, s); !c.OK() || c.Recount.Total() != 8*300 {
		t.Fatalf("after %d repairs among writers: %+v, want ok with 2400 voters", repairs, c)
	}
	t.Logf("%d repairs among the writers", repairs)
}

func shardPK(voter string) string { return fmt.Sprintf("tally#%02d", store.ShardOf(voter)) }

// Drift on a shard (a lost or doubled increment, as last-writer-wins
// between two regions can make) and intents left by crashed workers are
// reported by the check; the repair clears the intents, rebuilds the
// shards from the voter items and drops the markers, and the protocol
// carries on from there.
func TestDynamoCheckAndRepairTallies(t *testing.T) {
	ctx := context.Background()
	s, table := openDynamo(t)
	if err := s.ApplyVotes(ctx, []ballot.Vote{
		{VoterID: id(1), Option: "a", CastAt: 1}, {VoterID: id(2), Option: "a", CastAt: 1},
		{VoterID: id(3), Option: "b", CastAt: 1}, {VoterID: id(4), Option: "b", CastAt: 1},
	}); err != nil {
		t.Fatal(err)
	}
	if c := checkTallies(t, s); !c.OK() || c.Recount != (store.Tally{A: 2, B: 2}) {
		t.Fatalf("check of consistent tallies: %+v", c)
	}
	// Crashed after step 2 (tally moved, intent left): the counts agree,
	// but the check is not clean while an intent is pending.
	crashed := []ballot.Vote{{VoterID: id(3), Option: "a", CastAt: 2}, {VoterID: id(1), Option: "b", CastAt: 2}, {VoterID: id(5), Option: "a", CastAt: 2}}
	in, err := s.Begin(ctx, crashed[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyDelta(ctx, *in); err != nil {
		t.Fatal(err)
	}
	if c := checkTallies(t, s); c.OK() || c.Stored != c.Recount || c.Pending != 1 {
		t.Fatalf("check with an intent pending after step 2: %+v (ok %v), want equal counts, 1 pending, not ok", c, c.OK())
	}
	// Crashed after step 1: a changed vote and a new voter.
	for _, v := range crashed[1:] {
		if _, err := s.Begin(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Client().UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: shardPK(id(2))}},
		UpdateExpression:          aws.String("ADD a :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "5"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Voters now: 1 b, 2 a, 3 a, 4 b, 5 a. Shards: a 2-1+5, b 2+1-1 plus
	// nothing of the two step-1 crashes.
	want := store.TallyCheck{Stored: store.Tally{A: 8, B: 1}, Recount: store.Tally{A: 3, B: 2}, Pending: 3}
	if c := checkTallies(t, s); c != want {
		t.Fatalf("check = %+v, want %+v", c, want)
	}

	before, err := s.RepairTallies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before != want {
		t.Errorf("repair started from %+v, want %+v", before, want)
	}
	if c := checkTallies(t, s); !c.OK() || c.Recount != want.Recount {
		t.Fatalf("check after repair: %+v", c)
	}
	for sh := range store.DynamoShards {
		if n, err := s.Markers(ctx, sh); err != nil || n != 0 {
			t.Fatalf("shard %d keeps %d markers (%v) after the repair", sh, n, err)
		}
	}
	// Each shard holds its own voters, as the writers' deltas expect.
	_, votes, _, err := s.Recount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	perShard := map[string]store.Tally{}
	for _, v := range votes {
		tl := perShard[shardPK(v.VoterID)]
		if v.Option == "a" {
			tl.A++
		} else {
			tl.B++
		}
		perShard[shardPK(v.VoterID)] = tl
	}
	for sh := range store.DynamoShards {
		pk := fmt.Sprintf("tally#%02d", sh)
		out, err := s.Client().GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}})
		if err != nil {
			t.Fatal(err)
		}
		var got store.Tally
		for name, n := range map[string]*int64{"a": &got.A, "b": &got.B} {
			if av, ok := out.Item[name].(*types.AttributeValueMemberN); ok {
				fmt.Sscan(av.Value, n)
			}
		}
		if got != perShard[pk] {
			t.Errorf("%s holds %+v, its voters count %+v", pk, got, perShard[pk])
		}
	}
	// The crashed batch's redelivery finds nothing to do, and new changes
	// count as usual.
	if err := s.ApplyVotes(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(2), Option: "b", CastAt: 3}, {VoterID: id(6), Option: "b", CastAt: 3}}); err != nil {
		t.Fatal(err)
	}
	if c := checkTallies(t, s); !c.OK() || c.Recount != (store.Tally{A: 2, B: 4}) {
		t.Fatalf("after the repair and new votes: %+v, want a=2 b=4", c)
	}
}
