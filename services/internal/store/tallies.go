package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/jackc/pgx/v5"

	"github.com/ladder-cdk/ladder/services/internal/ballot"
)

// TallyCheck compares the running tallies with a recount of the stored
// votes, the ground truth.
type TallyCheck struct {
	Stored  Tally // what the result service shows
	Recount Tally // the votes counted one by one
	// Pending is the number of DynamoDB voter items whose tally change is
	// not completed yet (always 0 for PostgreSQL, whose changes are
	// transactional).
	Pending int
}

// Drift is Stored minus Recount per option.
func (c TallyCheck) Drift() Tally {
	return Tally{A: c.Stored.A - c.Recount.A, B: c.Stored.B - c.Recount.B}
}

// OK reports whether the tallies equal the recount with nothing pending.
func (c TallyCheck) OK() bool { return c.Stored == c.Recount && c.Pending == 0 }

// TallyChecker is implemented by both stores: the operator's check and
// repair of the tallies (`worker tallies`), which may drift when two
// regions write one DynamoDB global table (last writer wins per item).
type TallyChecker interface {
	// CheckTallies reads the tallies and recounts every stored vote. It
	// changes nothing; the recount reads the whole table.
	CheckTallies(ctx context.Context) (TallyCheck, error)
	// RepairTallies rewrites the tallies from the recount and returns the
	// check it started from. See each store for when it is safe.
	RepairTallies(ctx context.Context) (TallyCheck, error)
}

var (
	_ TallyChecker = (*Postgres)(nil)
	_ TallyChecker = (*DynamoDB)(nil)
)

const recountSQL = `SELECT vote, count(*) FROM votes GROUP BY vote`

func recountPostgres(ctx context.Context, q querier) (Tally, error) {
	return queryTally(ctx, q, recountSQL, "recount votes")
}

// CheckTallies reads tallies and recount on the primary in one
// repeatable-read snapshot, so running writers cause no false drift.
func (p *Postgres) CheckTallies(ctx context.Context) (TallyCheck, error) {
	tx, err := p.write.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return TallyCheck{}, fmt.Errorf("check tallies: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var c TallyCheck
	if c.Stored, err = readTally(ctx, tx); err != nil {
		return TallyCheck{}, err
	}
	if c.Recount, err = recountPostgres(ctx, tx); err != nil {
		return TallyCheck{}, err
	}
	return c, nil
}

// repairSQL sets both tally rows and notifies listeners with the new
// totals, as applySQL does, so open result pages show the repair.
const repairSQL = `
WITH up AS (
    INSERT INTO tallies (option, count) VALUES ($1, $2), ($3, $4)
    ON CONFLICT (option) DO UPDATE SET count = EXCLUDED.count
    RETURNING option, count
)
SELECT pg_notify('` + Channel + `', (SELECT json_object_agg(option, count)::text FROM up))`

// RepairTallies rewrites the tally rows from the recount in one
// transaction holding the writers' advisory lock: no batch commits between
// the recount and the rewrite, so it is safe while workers run (they wait
// for the lock, a recount's duration).
func (p *Postgres) RepairTallies(ctx context.Context) (TallyCheck, error) {
	tx, err := p.write.Begin(ctx)
	if err != nil {
		return TallyCheck{}, fmt.Errorf("repair tallies: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writeLockKey); err != nil {
		return TallyCheck{}, fmt.Errorf("repair tallies: take the write lock: %w", err)
	}
	var c TallyCheck
	if c.Stored, err = readTally(ctx, tx); err != nil {
		return TallyCheck{}, err
	}
	if c.Recount, err = recountPostgres(ctx, tx); err != nil {
		return TallyCheck{}, err
	}
	if _, err := tx.Exec(ctx, repairSQL, ballot.OptionA, c.Recount.A, ballot.OptionB, c.Recount.B); err != nil {
		return TallyCheck{}, fmt.Errorf("repair tallies: rewrite: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return TallyCheck{}, fmt.Errorf("repair tallies: commit: %w", err)
	}
	return c, nil
}

// CheckTallies sums the shards and scans every voter item. The two reads
// are not one snapshot: while writers run, a difference explained by
// pending intents (or one that a second check no longer shows) is normal;
// with the writers stopped it is exact.
func (d *DynamoDB) CheckTallies(ctx context.Context) (TallyCheck, error) {
	var c TallyCheck
	var err error
	if c.Stored, err = d.Tally(ctx); err != nil {
		return TallyCheck{}, err
	}
	if c.Recount, _, c.Pending, err = d.Recount(ctx); err != nil {
		return TallyCheck{}, err
	}
	return c, nil
}

// ErrRepairRaced means a write not made by the repair changed the table
// while it ran: some worker is still writing. The tallies may be wrong;
// stop every writer (in every region) and run the repair again.
var ErrRepairRaced = errors.New("the table changed during the repair: a writer is running")

// RepairTallies rebuilds every shard from a scan of the voter items.
//
// IT ASSUMES THAT NO WRITER RUNS: stop the workers (and direct-mode vote
// services) of EVERY region first. DynamoDB has no lock to take, and
// rewriting a shard, or dropping its applied markers, under a running
// writer can count a change twice or not at all.
//
// It first removes every pending intent: the voter item's vote already
// holds the state after the change, so the recount is the truth whether
// or not the change reached its shard. Then it writes each shard's a and
// b from the recount, split by ShardOf as the writers do, with an empty
// applied map: markers guard only pending intents, and none is left. Each
// write is conditioned on the item being as read (intents: the same
// stamp; shards: the same counts), and a final check must find the
// tallies equal to a fresh recount; interference by a writer therefore
// fails with ErrRepairRaced instead of passing silently.
func (d *DynamoDB) RepairTallies(ctx context.Context) (TallyCheck, error) {
	var (
		c       TallyCheck
		want    [DynamoShards]Tally
		intents []Intent
	)
	err := d.scanVoters(ctx, func(id string, v voterItem) {
		c.Recount.count(v.vote)
		want[ShardOf(id)].count(v.vote)
		if v.pending != nil {
			intents = append(intents, *v.pending)
		}
	})
	if err != nil {
		return TallyCheck{}, fmt.Errorf("repair tallies: %w", err)
	}
	c.Pending = len(intents)
	shards, err := d.readShards(ctx)
	if err != nil {
		return c, fmt.Errorf("repair tallies: %w", err)
	}
	for _, s := range shards {
		c.Stored.A += s.a
		c.Stored.B += s.b
	}
	for _, in := range intents {
		if err := d.dropIntent(ctx, in); err != nil {
			return c, err
		}
	}
	for i, s := range shards {
		if err := d.writeShard(ctx, i, s, want[i]); err != nil {
			return c, err
		}
	}
	after, err := d.CheckTallies(ctx)
	if err != nil {
		return c, fmt.Errorf("repair tallies: verify: %w", err)
	}
	if !after.OK() || after.Recount != c.Recount {
		return c, fmt.Errorf("repair tallies: verify: tallies %+v, recount %+v (was %+v), %d pending: %w",
			after.Stored, after.Recount, c.Recount, after.Pending, ErrRepairRaced)
	}
	return c, nil
}

// dropIntent removes a pending intent without applying it, only if it is
// still the one the scan saw.
func (d *DynamoDB) dropIntent(ctx context.Context, in Intent) error {
	err := d.removePending(ctx, in)
	if isCondFail(err) {
		return fmt.Errorf("repair tallies: intent %s is gone or replaced: %w", in.ID(), ErrRepairRaced)
	}
	if err != nil {
		return fmt.Errorf("repair tallies: remove intent %s: %w", in.ID(), err)
	}
	return nil
}

// writeShard replaces shard i with the counts t and no markers, if it
// still holds what was read.
func (d *DynamoDB) writeShard(ctx context.Context, i int, was shardState, t Tally) error {
	vals := map[string]types.AttributeValue{}
	cond := "attribute_not_exists(pk)"
	if was.exists {
		cond = "attribute_exists(pk)"
		for _, f := range []struct {
			name string
			has  bool
			n    int64
		}{{"a", was.hasA, was.a}, {"b", was.hasB, was.b}} {
			if f.has {
				cond += " AND " + f.name + " = :" + f.name
				vals[":"+f.name] = num(f.n)
			} else {
				cond += " AND attribute_not_exists(" + f.name + ")"
			}
		}
	}
	in := &dynamodb.PutItemInput{
		TableName: &d.table,
		Item: map[string]types.AttributeValue{
			"pk": str(shardKey(i)), "a": num(t.A), "b": num(t.B),
			"applied": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
		},
		ConditionExpression: aws.String(cond),
	}
	if len(vals) > 0 {
		in.ExpressionAttributeValues = vals
	}
	_, err := d.c.PutItem(ctx, in)
	if isCondFail(err) {
		return fmt.Errorf("repair tallies: shard %d changed since it was read: %w", i, ErrRepairRaced)
	}
	if err != nil {
		return fmt.Errorf("repair tallies: write shard %d: %w", i, err)
	}
	return nil
}
