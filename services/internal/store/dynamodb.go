package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ladder-cdk/ladder/services/internal/backoff"
	"github.com/ladder-cdk/ladder/services/internal/ballot"
)

const (
	// DynamoShards is the number of tally shard items. Each absorbs up to
	// ~1,000 writes/s, so 16 allow ~16,000 tally changes/s; Tally reads all.
	DynamoShards = 16
	// markerGrace is how long an applied marker is kept after step 2.
	markerGrace = 2 * time.Minute
	// opTimeout bounds one vote's protocol run, far below markerGrace.
	opTimeout = 20 * time.Second
	// applyParallelism bounds the concurrent per-voter protocol runs of one
	// ApplyVotes call.
	applyParallelism = 32
	// PollInterval is how often WatchTallies reads the shards.
	PollInterval = 300 * time.Millisecond
)

// DynamoOptions configure OpenDynamoDB.
type DynamoOptions struct {
	Table    string
	Region   string
	Endpoint string // tests and local runs only; empty means AWS
	// Static credentials for tests against a local server; empty means the
	// default chain (environment, Pod Identity, instance role...).
	AccessKey, SecretKey string
	Log                  *slog.Logger
}

// DynamoDB is the DynamoDB Store (issue 7, Tier 4).
//
// Table layout (one table, so the CDK side creates one TableV2):
//
//	partition key  "pk" (S), no sort key, on-demand billing is fine.
//	voter items    pk = "voter#<voter id>"
//	               vote    (S)  "a" | "b", the voter's current choice
//	               cast_at (N)  stamp of that vote (ballot.Vote.CastAt)
//	               pending (M)  {from (S, "" for a new voter), to (S), stamp (N)}
//	                            while a tally change is being applied
//	tally shards   pk = "tally#<00..NN>"  (DynamoShards of them)
//	               a, b    (N)  this shard's share of the counts
//	               applied (M)  intent id -> unix ms it was applied
//	control item   pk = "control#writer" (WriterRegion, SetWriterRegion)
//	               region (S)  the writer region, e.g. "us-east-1"
//	               set_at (N)  unix ms of the last SetWriterRegion
//
// The control item is the fence of Tier 4, where two regions share the
// table as a global table: DynamoDB settles concurrent writes to one item
// from two regions by last-writer-wins, so the shard counters below stay
// exact only while one region writes. Being in the table, the flag
// replicates to every region and can be flipped while the old writer
// region is unreachable; workers with DYNAMODB_DEFAULT_WRITER_REGION set
// apply votes only while it names their AWS_REGION (the default region
// while there is no item). See internal/worker's Gate for the window.
//
// Why not one counter item or a transaction: one hot item caps writes at
// ~1,000/s, and DynamoDB transactions (and streams) are not available in
// the local test server (dynalite). The tally is therefore kept with
// conditional single-item writes, by an intent protocol per state change:
//
//  1. read the voter item (consistent). If it holds a pending intent,
//     complete that first (steps 2-3) and start over. If its cast_at is
//     not older than the vote's, the vote is stale or a redelivery: done.
//     Otherwise write vote, cast_at and pending={from, to, stamp}
//     conditioned on the item being exactly as read (cast_at unchanged, or
//     absent) and having no pending intent. A condition failure means a
//     concurrent writer got there first: start over. (A revote for the
//     same option moves cast_at only and needs no intent.)
//  2. apply the delta (-1 from, +1 to) to the shard hash(voter) % N with
//     SET applied.<intent id> = now, conditioned on that marker being
//     absent. The intent id is "<voter id>@<stamp>", unique per state
//     change because a voter's stamp only grows. A condition failure means
//     another worker (or an earlier attempt) already applied it.
//  3. REMOVE pending, conditioned on pending.stamp still being this stamp.
//
// Exactly-once: the voter item changes state only through step 1, which
// is serialised by its condition, so each state change has one intent and
// it records the old vote it replaces; the next change cannot begin until
// the intent is removed (step 3), which happens only after step 2
// succeeded or found its marker. A crash anywhere leaves either no intent
// (nothing happened, or everything did) or a pending one that the next
// writer of that voter — the redelivered batch at the latest — completes,
// and step 2's marker makes repeating it harmless.
//
// Markers are swept after markerGrace, so the shard items stay far below
// the 400 KB item limit: a sweep first completes (step 3) any intent whose
// marker it is about to remove, so a marker never disappears while its
// intent is pending. The remaining exposure is a worker that read a
// pending intent and stalls for longer than markerGrace before its step-2
// write arrives; every call runs under a context deadline far shorter than
// that (opTimeout) and AWS rejects requests signed more than 5 minutes
// earlier, so in practice that cannot happen.
//
// Tally reads the N shard items (one BatchGetItem) and sums them: O(N),
// independent of the number of voters. WatchTallies polls it (DynamoDB
// has no LISTEN; a stream-driven push is for a later tier).
//
// Why this rather than a stream-driven aggregator Lambda: it needs no
// streams (absent in dynalite, so untestable here), the tally is exact
// when ApplyVotes returns (no aggregation lag), and the services stay the
// only writers. The price is round trips: a vote costs a consistent read
// and three conditional writes (a same-option revote: one read, one
// write), about 1,000-1,300 votes/s into dynalite on loopback (one
// single-threaded Node process; BenchmarkDynamoDBApplyVotes), which says
// nothing about DynamoDB's own capacity.
type DynamoDB struct {
	c     *dynamodb.Client
	table string
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	lastSweep [DynamoShards]time.Time
}

// OpenDynamoDB builds the client. Like OpenPostgres it does not contact
// the server.
func OpenDynamoDB(ctx context.Context, o DynamoOptions) (*DynamoDB, error) {
	if o.Table == "" {
		return nil, errors.New("dynamodb: table name required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	var opts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	if o.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: load aws config: %w", err)
	}
	c := dynamodb.NewFromConfig(cfg, func(op *dynamodb.Options) {
		if o.Endpoint != "" {
			op.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	return &DynamoDB{c: c, table: o.Table, log: o.Log, now: time.Now}, nil
}

// DynamoKeySchema is the table's key schema, for tests and tools that
// create the table themselves.
func DynamoKeySchema() ([]types.KeySchemaElement, []types.AttributeDefinition) {
	return []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		[]types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}}
}

// Client is the underlying client, for tests.
func (d *DynamoDB) Client() *dynamodb.Client { return d.c }

// Close implements Store; the HTTP client needs no closing.
func (d *DynamoDB) Close() {}

// Ping checks the table is reachable.
func (d *DynamoDB) Ping(ctx context.Context) error {
	_, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: key(shardKey(0)),
		ProjectionExpression: aws.String("pk")})
	if err != nil {
		return fmt.Errorf("ping dynamodb: %w", err)
	}
	return nil
}

func voterKey(id string) string { return "voter#" + id }
func shardKey(n int) string     { return fmt.Sprintf("tally#%02d", n) }

// ShardOf is the tally shard of a voter.
func ShardOf(voterID string) int {
	h := fnv.New32a()
	h.Write([]byte(voterID))
	return int(h.Sum32() % DynamoShards)
}

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// Intent is a pending tally change recorded on a voter item.
type Intent struct {
	Voter string
	From  string // "" for a new voter
	To    string
	Stamp int64
}

// ID names the intent in the shard's applied markers.
func (in Intent) ID() string { return in.Voter + "@" + strconv.FormatInt(in.Stamp, 10) }

type voterItem struct {
	exists  bool
	vote    string
	castAt  int64
	pending *Intent
}

func getN(av types.AttributeValue) int64 {
	if n, ok := av.(*types.AttributeValueMemberN); ok {
		v, _ := strconv.ParseInt(n.Value, 10, 64)
		return v
	}
	return 0
}

func getS(av types.AttributeValue) string {
	if s, ok := av.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func (d *DynamoDB) readVoter(ctx context.Context, id string) (voterItem, error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: key(voterKey(id)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return voterItem{}, fmt.Errorf("read voter: %w", err)
	}
	return parseVoter(id, out.Item), nil
}

func parseVoter(id string, it map[string]types.AttributeValue) voterItem {
	if it == nil {
		return voterItem{}
	}
	v := voterItem{exists: true, vote: getS(it["vote"]), castAt: getN(it["cast_at"])}
	if m, ok := it["pending"].(*types.AttributeValueMemberM); ok {
		v.pending = &Intent{Voter: id, From: getS(m.Value["from"]), To: getS(m.Value["to"]), Stamp: getN(m.Value["stamp"])}
	}
	return v
}

func isCondFail(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// ApplyVotes implements Store. Votes of different voters are independent,
// so they run concurrently; any failure fails the call, and the worker's
// redelivery of the whole batch is harmless (see the protocol above).
func (d *DynamoDB) ApplyVotes(ctx context.Context, votes []ballot.Vote) error {
	if len(votes) == 0 {
		return nil
	}
	votes = ballot.Latest(votes)
	for _, v := range votes {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("apply votes: voter %q: %w", v.VoterID, err)
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, applyParallelism)
	touched := map[int]bool{}
	for _, v := range votes {
		touched[ShardOf(v.VoterID)] = true
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.applyOne(ctx, v); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("voter %s: %w", v.VoterID, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("apply %d votes: %d failed: %w", len(votes), len(errs), errors.Join(errs[:min(3, len(errs))]...))
	}
	for s := range touched {
		if err := d.maybeSweep(ctx, s); err != nil {
			// Only housekeeping: the next batch tries again.
			d.log.Warn("sweeping applied markers failed", "dependency", "dynamodb", "shard", s, "error", err.Error())
		}
	}
	return nil
}

func (d *DynamoDB) applyOne(ctx context.Context, v ballot.Vote) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		if attempt > 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		done, err := d.tryOnce(ctx, v)
		if err != nil || done {
			return err
		}
	}
}

// tryOnce is one round of step 1; done=false means a concurrent writer
// changed the voter item and the caller should read it again.
func (d *DynamoDB) tryOnce(ctx context.Context, v ballot.Vote) (done bool, err error) {
	cur, err := d.readVoter(ctx, v.VoterID)
	if err != nil {
		return false, err
	}
	if cur.pending != nil {
		return false, d.Complete(ctx, *cur.pending)
	}
	if cur.exists && cur.castAt >= v.CastAt {
		return true, nil // stale or redelivered
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                &d.table,
		Key:                      key(voterKey(v.VoterID)),
		ExpressionAttributeNames: map[string]string{"#v": "vote", "#c": "cast_at", "#p": "pending"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":v": str(v.Option), ":c": num(v.CastAt),
		},
	}
	if cur.exists {
		in.ConditionExpression = aws.String("#c = :old AND attribute_not_exists(#p)")
		in.ExpressionAttributeValues[":old"] = num(cur.castAt)
	} else {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
		delete(in.ExpressionAttributeNames, "#p")
	}
	var intent *Intent
	if cur.exists && cur.vote == v.Option {
		// Same choice, newer stamp: no tally change, no intent.
		in.UpdateExpression = aws.String("SET #v = :v, #c = :c")
	} else {
		intent = &Intent{Voter: v.VoterID, From: cur.vote, To: v.Option, Stamp: v.CastAt}
		in.UpdateExpression = aws.String("SET #v = :v, #c = :c, #p = :p")
		in.ExpressionAttributeNames["#p"] = "pending"
		in.ExpressionAttributeValues[":p"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"from": str(intent.From), "to": str(intent.To), "stamp": num(intent.Stamp),
		}}
	}
	if _, err := d.c.UpdateItem(ctx, in); err != nil {
		if isCondFail(err) {
			return false, nil
		}
		return false, fmt.Errorf("record vote: %w", err)
	}
	if intent == nil {
		return true, nil
	}
	return true, d.Complete(ctx, *intent)
}

// Begin is step 1 alone for a voter without a pending intent, for the
// crash tests: it records the vote and its intent and returns the intent.
func (d *DynamoDB) Begin(ctx context.Context, v ballot.Vote) (*Intent, error) {
	cur, err := d.readVoter(ctx, v.VoterID)
	if err != nil {
		return nil, err
	}
	if cur.pending != nil || (cur.exists && (cur.castAt >= v.CastAt || cur.vote == v.Option)) {
		return nil, errors.New("begin: voter has a pending intent or the vote changes no tally")
	}
	in := Intent{Voter: v.VoterID, From: cur.vote, To: v.Option, Stamp: v.CastAt}
	cond := "attribute_not_exists(pk)"
	vals := map[string]types.AttributeValue{":v": str(v.Option), ":c": num(v.CastAt),
		":p": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"from": str(in.From), "to": str(in.To), "stamp": num(in.Stamp)}}}
	if cur.exists {
		cond = "cast_at = :old AND attribute_not_exists(pending)"
		vals[":old"] = num(cur.castAt)
	}
	_, err = d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &d.table, Key: key(voterKey(v.VoterID)),
		UpdateExpression: aws.String("SET vote = :v, cast_at = :c, pending = :p"), ConditionExpression: aws.String(cond),
		ExpressionAttributeValues: vals})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &in, nil
}

// Complete runs steps 2 and 3 of an intent; running it again, or
// concurrently, is harmless.
func (d *DynamoDB) Complete(ctx context.Context, in Intent) error {
	if err := d.ApplyDelta(ctx, in); err != nil {
		return err
	}
	return d.clearPending(ctx, in)
}

// ApplyDelta is step 2: the shard's counters move once per intent.
func (d *DynamoDB) ApplyDelta(ctx context.Context, in Intent) error {
	var da, db int64
	switch in.To {
	case ballot.OptionA:
		da++
	case ballot.OptionB:
		db++
	}
	switch in.From {
	case ballot.OptionA:
		da--
	case ballot.OptionB:
		db--
	}
	in2 := &dynamodb.UpdateItemInput{
		TableName: &d.table,
		Key:       key(shardKey(ShardOf(in.Voter))),
		// The applied map must exist before a path inside it can be set;
		// it is created with the shard item (ensureShards).
		UpdateExpression:          aws.String("ADD a :da, b :db SET applied.#id = :now"),
		ConditionExpression:       aws.String("attribute_exists(applied) AND attribute_not_exists(applied.#id)"),
		ExpressionAttributeNames:  map[string]string{"#id": in.ID()},
		ExpressionAttributeValues: map[string]types.AttributeValue{":da": num(da), ":db": num(db), ":now": num(d.now().UnixMilli())},
	}
	_, err := d.c.UpdateItem(ctx, in2)
	if err == nil {
		return nil
	}
	if !isCondFail(err) {
		return fmt.Errorf("apply tally delta: %w", err)
	}
	// Either already applied, or the shard item (its applied map) does not
	// exist yet: make sure it does and try once more, so a second condition
	// failure can only mean the marker is there.
	if err := d.ensureShard(ctx, ShardOf(in.Voter)); err != nil {
		return err
	}
	_, err = d.c.UpdateItem(ctx, in2)
	if err != nil && !isCondFail(err) {
		return fmt.Errorf("apply tally delta: %w", err)
	}
	return nil
}

// ensureShard creates the shard item with an empty applied map if it is
// missing (created lazily, so the table needs no seeding).
func (d *DynamoDB) ensureShard(ctx context.Context, s int) error {
	_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &d.table,
		Key:       key(shardKey(s)),
		// Never touches a and b: ADD starts them from zero, and should the
		// map ever vanish (a sweep emptying it) the counts must survive.
		UpdateExpression:          aws.String("SET applied = :empty"),
		ConditionExpression:       aws.String("attribute_not_exists(applied)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":empty": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}},
	})
	if err != nil && !isCondFail(err) {
		return fmt.Errorf("create tally shard: %w", err)
	}
	return nil
}

// clearPending is step 3.
func (d *DynamoDB) clearPending(ctx context.Context, in Intent) error {
	if err := d.removePending(ctx, in); err != nil && !isCondFail(err) {
		return fmt.Errorf("clear pending intent: %w", err)
	}
	return nil
}

// removePending removes the voter's pending intent if it is still in (its
// stamp unchanged); a condition failure means it is not.
func (d *DynamoDB) removePending(ctx context.Context, in Intent) error {
	_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &d.table,
		Key:                       key(voterKey(in.Voter)),
		UpdateExpression:          aws.String("REMOVE pending"),
		ConditionExpression:       aws.String("pending.stamp = :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": num(in.Stamp)},
	})
	return err
}

// maybeSweep sweeps shard s if this process has not for markerGrace/2.
func (d *DynamoDB) maybeSweep(ctx context.Context, s int) error {
	d.mu.Lock()
	now := d.now()
	if now.Sub(d.lastSweep[s]) < markerGrace/2 {
		d.mu.Unlock()
		return nil
	}
	d.lastSweep[s] = now
	d.mu.Unlock()
	return d.Sweep(ctx, s, markerGrace)
}

// Sweep removes shard s's markers older than grace. An intent whose marker
// goes must not stay pending (a resumer would apply it again), so any
// intent still pending is completed (step 3) first.
func (d *DynamoDB) Sweep(ctx context.Context, s int, grace time.Duration) error {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: key(shardKey(s)),
		ProjectionExpression: aws.String("applied"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("read markers: %w", err)
	}
	m, _ := out.Item["applied"].(*types.AttributeValueMemberM)
	if m == nil {
		return nil
	}
	cutoff := d.now().Add(-grace).UnixMilli()
	var old []string
	for id, at := range m.Value {
		if getN(at) <= cutoff {
			old = append(old, id)
		}
	}
	const chunk = 50
	for len(old) > 0 {
		part := old[:min(chunk, len(old))]
		old = old[len(part):]
		for _, id := range part {
			i := strings.LastIndexByte(id, '@')
			if i < 0 {
				continue
			}
			stamp, _ := strconv.ParseInt(id[i+1:], 10, 64)
			if err := d.clearPending(ctx, Intent{Voter: id[:i], Stamp: stamp}); err != nil {
				return err
			}
		}
		names := map[string]string{}
		parts := make([]string, len(part))
		for j, id := range part {
			n := "#m" + strconv.Itoa(j)
			names[n] = id
			parts[j] = "applied." + n
		}
		_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &d.table, Key: key(shardKey(s)),
			UpdateExpression: aws.String("REMOVE " + strings.Join(parts, ", ")), ExpressionAttributeNames: names})
		if err != nil {
			return fmt.Errorf("remove markers: %w", err)
		}
	}
	return nil
}

// Markers counts shard s's applied markers, for tests.
func (d *DynamoDB) Markers(ctx context.Context, s int) (int, error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: key(shardKey(s)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, err
	}
	m, _ := out.Item["applied"].(*types.AttributeValueMemberM)
	if m == nil {
		return 0, nil
	}
	return len(m.Value), nil
}

// SetClock replaces the clock, for tests of the sweep.
func (d *DynamoDB) SetClock(now func() time.Time) { d.now = now }

// Tally implements Store: the sum of the shards, read with one
// (consistent) BatchGetItem.
func (d *DynamoDB) Tally(ctx context.Context) (Tally, error) {
	shards, err := d.readShards(ctx)
	if err != nil {
		return Tally{}, err
	}
	var t Tally
	for _, s := range shards {
		t.A += s.a
		t.B += s.b
	}
	return t, nil
}

// shardState is one tally shard item as read; hasA/hasB tell a missing
// counter from a zero one (ensureShard creates items without them).
type shardState struct {
	exists     bool
	a, b       int64
	hasA, hasB bool
}

// readShards reads every tally shard item consistently.
func (d *DynamoDB) readShards(ctx context.Context) ([DynamoShards]shardState, error) {
	var shards [DynamoShards]shardState
	keys := make([]map[string]types.AttributeValue, DynamoShards)
	byKey := map[string]int{}
	for i := range keys {
		keys[i] = key(shardKey(i))
		byKey[shardKey(i)] = i
	}
	req := map[string]types.KeysAndAttributes{d.table: {Keys: keys, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("pk, a, b")}}
	for len(req) > 0 {
		out, err := d.c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return shards, fmt.Errorf("read tallies: %w", err)
		}
		for _, it := range out.Responses[d.table] {
			i, ok := byKey[getS(it["pk"])]
			if !ok {
				continue
			}
			_, hasA := it["a"]
			_, hasB := it["b"]
			shards[i] = shardState{exists: true, a: getN(it["a"]), b: getN(it["b"]), hasA: hasA, hasB: hasB}
		}
		req = out.UnprocessedKeys
	}
	return shards, nil
}

// WatchTallies implements Store by polling every PollInterval: DynamoDB
// has no LISTEN (a stream-driven push is for a later tier). fn runs on
// the first read and on every change; down runs when a read fails.
func (d *DynamoDB) WatchTallies(ctx context.Context, fn func(Tally), down func(error)) error {
	b := backoff.New(100*time.Millisecond, 5*time.Second)
	var last Tally
	have := false
	for {
		t, err := d.Tally(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := PollInterval
		if err != nil {
			if down != nil {
				down(err)
			}
			have = false
			wait = b.Next()
			d.log.Warn(fmt.Sprintf("waiting for dynamodb (tallies): %v, retrying in %s", err, wait.Round(time.Millisecond)),
				"dependency", "dynamodb", "error", err.Error(), "retry_in", wait.String())
		} else {
			b.Reset()
			if !have || t != last {
				fn(t)
			}
			last, have = t, true
		}
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

var _ Store = (*DynamoDB)(nil)

// Recount scans every voter item: the expensive ground truth the services
// never read, for tests and operators. pending counts voter items whose
// intent is not completed yet.
func (d *DynamoDB) Recount(ctx context.Context) (t Tally, votes map[string]ballot.Vote, pending int, err error) {
	votes = map[string]ballot.Vote{}
	err = d.scanVoters(ctx, func(id string, v voterItem) {
		if v.pending != nil {
			pending++
		}
		votes[id] = ballot.Vote{VoterID: id, Option: v.vote, CastAt: v.castAt}
		t.count(v.vote)
	})
	if err != nil {
		return Tally{}, nil, 0, err
	}
	return t, votes, pending, nil
}

// scanVoters calls fn for every voter item (a consistent scan).
func (d *DynamoDB) scanVoters(ctx context.Context, fn func(id string, v voterItem)) error {
	p := dynamodb.NewScanPaginator(d.c, &dynamodb.ScanInput{TableName: &d.table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("scan votes: %w", err)
		}
		for _, it := range out.Items {
			if id, ok := strings.CutPrefix(getS(it["pk"]), "voter#"); ok {
				fn(id, parseVoter(id, it))
			}
		}
	}
	return nil
}

// count adds one voter choosing opt.
func (t *Tally) count(opt string) {
	switch opt {
	case ballot.OptionA:
		t.A++
	case ballot.OptionB:
		t.B++
	}
}
