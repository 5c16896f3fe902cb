package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
)

func TestDynamoWriterRegion(t *testing.T) {
	ctx := context.Background()
	s, table := openDynamo(t)
	if r, found, err := s.WriterRegion(ctx); err != nil || found || r != "" {
		t.Fatalf("empty table: %q, %v, %v; want not found", r, found, err)
	}
	if err := s.SetWriterRegion(ctx, "Us-East-1"); err == nil {
		t.Fatal("an invalid region was accepted")
	}
	if _, found, err := s.WriterRegion(ctx); err != nil || found {
		t.Fatalf("a refused set wrote the item (%v, %v)", found, err)
	}
	before := time.Now().UnixMilli()
	for _, r := range []string{"us-east-1", "eu-west-1"} {
		if err := s.SetWriterRegion(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got, found, err := s.WriterRegion(ctx); err != nil || !found || got != r {
			t.Fatalf("after set %s: %q, %v, %v", r, got, found, err)
		}
	}
	out, err := s.Client().GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "control#writer"}}})
	if err != nil {
		t.Fatal(err)
	}
	n, ok := out.Item["set_at"].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("set_at = %v, want a number", out.Item["set_at"])
	}
	if at, err := strconv.ParseInt(n.Value, 10, 64); err != nil || at < before {
		t.Fatalf("set_at = %v, want a unix ms stamp >= %d", out.Item["set_at"], before)
	}

	// The control item is no voter and no shard: tallies and their check
	// are unaffected.
	if err := s.ApplyVotes(ctx, []ballot.Vote{{VoterID: id(1), Option: "a", CastAt: 1}}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.CheckTallies(ctx); err != nil || !c.OK() || c.Recount.A != 1 {
		t.Fatalf("check with a control item: %+v, %v", c, err)
	}

	// A region written by hand that is not a region name is an error, so
	// no worker mistakes it for its own.
	_, err = s.Client().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "control#writer"}, "region": &types.AttributeValueMemberS{Value: "EU West"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, found, err := s.WriterRegion(ctx); err == nil || found {
		t.Fatalf("invalid stored region read as %q, %v", r, found)
	}
}
