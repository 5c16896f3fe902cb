// Package queue is a reliable work queue on Redis lists. Producers push to
// the list "votes" (as the original app does); each consumer atomically
// moves items into its own processing list and deletes them only after they
// are committed downstream. A consumer refreshes a heartbeat key; items in
// the processing list of a consumer whose heartbeat expired are moved back
// to "votes" by any live consumer. Delivery is at-least-once.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys are the Redis keys of one queue; all start with the configured
// prefix so tests and tenants can share a server.
type Keys struct {
	prefix string
}

// NewKeys returns the keys under prefix.
func NewKeys(prefix string) Keys { return Keys{prefix: prefix} }

// Votes is the list producers push to.
func (k Keys) Votes() string { return k.prefix + "votes" }

// Processing is the in-flight list of one worker.
func (k Keys) Processing(worker string) string { return k.prefix + "votes:processing:" + worker }

// Heartbeat is the liveness key of one worker.
func (k Keys) Heartbeat(worker string) string { return k.prefix + "votes:heartbeat:" + worker }

// Workers is the set of worker ids that may own a processing list.
func (k Keys) Workers() string { return k.prefix + "votes:workers" }

// LogTo routes go-redis's own messages (dial failures, pool events), which
// it otherwise prints as plain text on stderr, into log as warnings, so a
// service's log stays one JSON event per line.
func LogTo(log *slog.Logger) { redis.SetLogger(clientLog{log}) }

type clientLog struct{ log *slog.Logger }

func (l clientLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("redis client: "+fmt.Sprintf(format, v...), "dependency", "redis")
}

// NewClient builds a client from a redis:// or rediss:// URL (rediss gives
// TLS, as ElastiCache in-transit encryption requires).
func NewClient(url, name string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	opt.ClientName = name
	opt.DialTimeout = 3 * time.Second
	opt.MinRetryBackoff = 20 * time.Millisecond
	opt.MaxRetryBackoff = 500 * time.Millisecond
	return redis.NewClient(opt), nil
}

// Producer pushes payloads.
type Producer struct {
	rdb  redis.UniversalClient
	keys Keys
}

// NewProducer returns a producer on the votes list under keys.
func NewProducer(rdb redis.UniversalClient, keys Keys) *Producer {
	return &Producer{rdb: rdb, keys: keys}
}

// Push appends one payload to the tail (RPUSH, like the original app).
func (p *Producer) Push(ctx context.Context, payload []byte) error {
	if err := p.rdb.RPush(ctx, p.keys.Votes(), payload).Err(); err != nil {
		return fmt.Errorf("push to %s: %w", p.keys.Votes(), err)
	}
	return nil
}

// PushMany appends payloads in order with one multi-value RPUSH, so a
// producer coalescing concurrent votes pays one round trip for all of them.
// Redis applies it atomically: all payloads are queued or none.
func (p *Producer) PushMany(ctx context.Context, payloads [][]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	args := make([]any, len(payloads))
	for i, b := range payloads {
		args[i] = b
	}
	if err := p.rdb.RPush(ctx, p.keys.Votes(), args...).Err(); err != nil {
		return fmt.Errorf("push %d to %s: %w", len(payloads), p.keys.Votes(), err)
	}
	return nil
}

// Ping checks Redis is reachable.
func (p *Producer) Ping(ctx context.Context) error {
	if err := p.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// moveMany moves up to ARGV[1] items head-first from KEYS[1] to the tail of
// KEYS[2] atomically (an item is always in exactly one of the lists) and
// returns the whole processing list. Returning the list rather than what
// this call moved keeps the batch right even if an earlier BLMOVE reply was
// lost and the client retried it.
var moveMany = redis.NewScript(`
for i = 1, tonumber(ARGV[1]) do
  if not redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') then break end
end
return redis.call('LRANGE', KEYS[2], 0, -1)`)

// reclaim moves a dead worker's processing list back to the head of the
// queue (oldest first, so they are next) unless its heartbeat reappeared,
// then forgets the worker. Checking and moving in one script means a
// worker that is alive never loses items it is processing.
var reclaim = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local n = 0
while true do
  local v = redis.call('LMOVE', KEYS[2], KEYS[3], 'RIGHT', 'LEFT')
  if not v then break end
  n = n + 1
end
redis.call('SREM', KEYS[4], ARGV[1])
return n`)

// Consumer takes batches for one worker id.
type Consumer struct {
	rdb  redis.UniversalClient
	keys Keys
	id   string
	ttl  time.Duration
}

// NewConsumer returns the consumer of worker id; ttl is how long its
// heartbeat lives without a refresh.
func NewConsumer(rdb redis.UniversalClient, keys Keys, id string, ttl time.Duration) *Consumer {
	return &Consumer{rdb: rdb, keys: keys, id: id, ttl: ttl}
}

// ID is the worker id.
func (c *Consumer) ID() string { return c.id }

// Heartbeat marks the worker alive for ttl and (re-)registers it, so that
// even a worker reclaimed during a Redis outage is tracked again.
func (c *Consumer) Heartbeat(ctx context.Context) error {
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, c.keys.Workers(), c.id)
		p.Set(ctx, c.keys.Heartbeat(c.id), time.Now().UnixMilli(), c.ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// Stop removes the heartbeat so peers may reclaim at once; call it only
// after the processing list is empty or returned.
func (c *Consumer) Stop(ctx context.Context) error {
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, c.keys.Heartbeat(c.id))
		p.SRem(ctx, c.keys.Workers(), c.id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("stop heartbeat: %w", err)
	}
	return nil
}

// Pending returns items already in this worker's processing list: left by
// an earlier process with the same id, or fetched before a failed commit.
func (c *Consumer) Pending(ctx context.Context) ([]string, error) {
	v, err := c.rdb.LRange(ctx, c.keys.Processing(c.id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read processing list: %w", err)
	}
	return v, nil
}

// Fetch blocks up to wait for one item (BLMOVE, no polling), then moves up
// to max-1 more without blocking in one script call, and returns the
// processing list, which is the batch to commit and then Ack. It returns
// nil, nil if the queue stayed empty. Callers must check Pending first, so
// the processing list holds at most one batch.
func (c *Consumer) Fetch(ctx context.Context, max int, wait time.Duration) ([]string, error) {
	src, dst := c.keys.Votes(), c.keys.Processing(c.id)
	err := c.rdb.BLMove(ctx, src, dst, "LEFT", "RIGHT", wait).Err()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blmove %s: %w", src, err)
	}
	items, err := moveMany.Run(ctx, c.rdb, []string{src, dst}, max-1).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("move batch from %s: %w", src, err)
	}
	return items, nil
}

// Ack deletes the processing list once its items are committed. A worker
// holds one batch at a time, so the whole list is exactly that batch.
func (c *Consumer) Ack(ctx context.Context) error {
	if err := c.rdb.Del(ctx, c.keys.Processing(c.id)).Err(); err != nil {
		return fmt.Errorf("ack batch: %w", err)
	}
	return nil
}

// Requeue returns this worker's processing list to the head of the queue.
func (c *Consumer) Requeue(ctx context.Context) (int, error) {
	n := 0
	for {
		err := c.rdb.LMove(ctx, c.keys.Processing(c.id), c.keys.Votes(), "RIGHT", "LEFT").Err()
		if errors.Is(err, redis.Nil) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("requeue own processing list: %w", err)
		}
		n++
	}
}

// ReclaimDead moves items of workers whose heartbeat expired back to the
// queue and returns how many were moved.
func (c *Consumer) ReclaimDead(ctx context.Context) (int, error) {
	ids, err := c.rdb.SMembers(ctx, c.keys.Workers()).Result()
	if err != nil {
		return 0, fmt.Errorf("list workers: %w", err)
	}
	// Processing lists of workers missing from the set (e.g. the set was
	// lost) are found by scanning; rare, so cost does not matter.
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	pfx := c.keys.Processing("")
	iter := c.rdb.Scan(ctx, 0, pfx+"*", 500).Iterator()
	for iter.Next(ctx) {
		if id := strings.TrimPrefix(iter.Val(), pfx); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := iter.Err(); err != nil {
		return 0, fmt.Errorf("scan processing lists: %w", err)
	}
	total := 0
	for _, id := range ids {
		if id == c.id {
			continue
		}
		n, err := reclaim.Run(ctx, c.rdb,
			[]string{c.keys.Heartbeat(id), c.keys.Processing(id), c.keys.Votes(), c.keys.Workers()}, id).Int()
		if err != nil {
			return total, fmt.Errorf("reclaim worker %s: %w", id, err)
		}
		if n > 0 {
			total += n
		}
	}
	return total, nil
}

// Len is the number of queued (not in-flight) items.
func (c *Consumer) Len(ctx context.Context) (int64, error) {
	return c.rdb.LLen(ctx, c.keys.Votes()).Result()
}

// Ping checks Redis is reachable.
func (c *Consumer) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}
