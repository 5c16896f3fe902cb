package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ladder-cdk/ladder/services/internal/config"
)

// writerKey is the control item naming the writer region (see DynamoDB).
const writerKey = "control#writer"

// WriterRegion reads the writer region from the control item with a
// consistent read; found is false while there is no item (then the
// workers' DYNAMODB_DEFAULT_WRITER_REGION applies).
func (d *DynamoDB) WriterRegion(ctx context.Context) (region string, found bool, err error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: key(writerKey), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", false, fmt.Errorf("read writer region: %w", err)
	}
	if out.Item == nil {
		return "", false, nil
	}
	region = getS(out.Item["region"])
	if !config.ValidRegion(region) {
		// Written by hand, not by SetWriterRegion: refuse to guess, so no
		// worker takes it as its own region.
		return "", false, fmt.Errorf("read writer region: control item %q holds an invalid region %q", writerKey, region)
	}
	return region, true, nil
}

// SetWriterRegion names the writer region. It is a plain write, not a
// conditional one: the operator flipping it is the authority, and in a
// failover the old writer region may be unreachable. set_at (unix ms)
// records when, for the operator reading the item.
func (d *DynamoDB) SetWriterRegion(ctx context.Context, region string) error {
	if !config.ValidRegion(region) {
		return fmt.Errorf("set writer region: invalid region %q", region)
	}
	_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &d.table,
		Key:                       key(writerKey),
		UpdateExpression:          aws.String("SET #r = :r, set_at = :t"),
		ExpressionAttributeNames:  map[string]string{"#r": "region"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": str(region), ":t": num(d.now().UnixMilli())},
	})
	if err != nil {
		return fmt.Errorf("set writer region: %w", err)
	}
	return nil
}
