package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ladder-cdk/ladder/services/internal/backoff"
	"github.com/ladder-cdk/ladder/services/internal/ballot"
	"github.com/ladder-cdk/ladder/services/schema"
)

// Channel is the LISTEN/NOTIFY channel carrying tally changes.
const Channel = "tallies"

// writeLockKey serialises vote writers. The tally deltas are computed from
// the rows as they were before the upsert; if two transactions upserted the
// same new voter concurrently both would count it as new. Holding one
// transaction-scoped lock makes every writer see all earlier commits, and
// since every writer also updates the same tally rows they would queue on
// those row locks anyway, so little parallelism is lost.
const writeLockKey int64 = 0x6c61646465720002

// WriteLockKey is the advisory lock ApplyVotes takes, for tools (the
// benchmark's pgbench script) that must contend for it the same way.
func WriteLockKey() int64 { return writeLockKey }

// applySQL upserts a batch (given as three parallel arrays) and applies the
// tally deltas in one statement, then notifies listeners with the new totals.
//
//   - incoming keeps each voter's latest vote of the batch (PostgreSQL refuses
//     an upsert that touches a row twice).
//   - old captures the stored votes before the statement; the upsert only
//     replaces a row whose stamp is older, so stale and redelivered votes
//     change nothing and return nothing.
//   - deltas: a new voter adds 1 to their option; a changed vote moves 1 from
//     the old option to the new one; a repeated choice changes nothing.
const applySQL = `
WITH incoming AS (
    SELECT DISTINCT ON (id) id, vote, cast_at
    FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(id, vote, cast_at)
    ORDER BY id, cast_at DESC, vote DESC
), old AS (
    SELECT v.id, v.vote FROM votes v JOIN incoming i ON i.id = v.id
), upserted AS (
    INSERT INTO votes AS v (id, vote, cast_at, updated_at)
    SELECT id, vote, cast_at, now() FROM incoming ORDER BY id
    ON CONFLICT (id) DO UPDATE
        SET vote = EXCLUDED.vote, cast_at = EXCLUDED.cast_at, updated_at = EXCLUDED.updated_at
        WHERE v.cast_at < EXCLUDED.cast_at
    RETURNING v.id, v.vote
), deltas AS (
    SELECT u.vote AS option, 1 AS d
    FROM upserted u LEFT JOIN old o ON o.id = u.id
    WHERE o.id IS NULL OR o.vote <> u.vote
    UNION ALL
    SELECT o.vote, -1
    FROM upserted u JOIN old o ON o.id = u.id
    WHERE o.vote <> u.vote
), agg AS (
    SELECT option, sum(d)::bigint AS d FROM deltas GROUP BY option HAVING sum(d) <> 0
), updated AS (
    UPDATE tallies t SET count = t.count + agg.d FROM agg WHERE t.option = agg.option
    RETURNING t.option, t.count
)
SELECT pg_notify('` + Channel + `', (
    SELECT json_object_agg(option, count)::text FROM (
        SELECT option, count FROM updated
        UNION ALL
        SELECT option, count FROM tallies WHERE option NOT IN (SELECT option FROM updated)
    ) cur))
WHERE EXISTS (SELECT 1 FROM agg)`

// BatchUpsertSQL returns the statement ApplyVotes runs for every batch, so
// the services benchmark can time the very same upsert in pgbench as the
// database's own limit for the worker and the direct-mode vote service.
func BatchUpsertSQL() string { return applySQL }

// Postgres is the PostgreSQL Store.
type Postgres struct {
	write  *pgxpool.Pool
	read   *pgxpool.Pool
	listen *pgx.ConnConfig
	log    *slog.Logger
	// password refreshes a connection config's password before a connect.
	password func(*pgx.ConnConfig)
}

// Options configure OpenPostgres.
type Options struct {
	URL     string // primary: writes and LISTEN
	ReadURL string // optional read replica for Tally; defaults to URL
	AppName string // application_name, visible in pg_stat_activity
	MaxConn int32
	// Password, when set, is called for every new connection (of both
	// pools and the listener) and its result replaces the URL's password,
	// so a rotated secret takes effect as connections are replaced. On an
	// error the URL's password is kept and the failure logged.
	Password func() (string, error)
	Log      *slog.Logger
}

// OpenPostgres creates the pools. It does not wait for the server: pools
// connect lazily, so a service can start (and report not-ready) while the
// database is still coming up.
func OpenPostgres(ctx context.Context, o Options) (*Postgres, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	mk := func(u string) (*pgxpool.Pool, error) {
		cfg, err := pgxpool.ParseConfig(u)
		if err != nil {
			return nil, fmt.Errorf("parse database url: %w", err)
		}
		if o.AppName != "" {
			cfg.ConnConfig.RuntimeParams["application_name"] = o.AppName
		}
		if o.MaxConn > 0 {
			cfg.MaxConns = o.MaxConn
		}
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
		if o.Password != nil {
			cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
				o.applyPassword(cc)
				return nil
			}
		}
		// Notice a dead server or a terminated backend quickly.
		cfg.HealthCheckPeriod = 5 * time.Second
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("create database pool: %w", err)
		}
		return p, nil
	}
	w, err := mk(o.URL)
	if err != nil {
		return nil, err
	}
	r := w
	if o.ReadURL != "" && o.ReadURL != o.URL {
		if r, err = mk(o.ReadURL); err != nil {
			w.Close()
			return nil, err
		}
	}
	lc, err := pgx.ParseConfig(o.URL)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if o.AppName != "" {
		lc.RuntimeParams["application_name"] = o.AppName + "-listen"
	}
	lc.ConnectTimeout = 5 * time.Second
	return &Postgres{write: w, read: r, listen: lc, log: o.Log, password: o.applyPassword}, nil
}

func (o Options) applyPassword(cc *pgx.ConnConfig) {
	if o.Password == nil {
		return
	}
	pw, err := o.Password()
	if err != nil {
		o.Log.Warn("reading the database password failed; connecting with the last known one",
			"dependency", "postgres", "error", err.Error())
		return
	}
	cc.Password = pw
}

// Close closes the pools.
func (p *Postgres) Close() {
	if p.read != p.write {
		p.read.Close()
	}
	p.write.Close()
}

// Ping checks primary and replica.
func (p *Postgres) Ping(ctx context.Context) error {
	if err := p.write.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	if p.read != p.write {
		if err := p.read.Ping(ctx); err != nil {
			return fmt.Errorf("ping postgres read replica: %w", err)
		}
	}
	return nil
}

// Migrate applies schema migrations on one pooled connection.
func (p *Postgres) Migrate(ctx context.Context) error {
	c, err := p.write.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect for migrations: %w", err)
	}
	defer c.Release()
	if err := schema.Apply(ctx, c.Conn()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// ApplyVotes implements Store in one network round trip: the lock and the
// upsert statement are pipelined in one implicit transaction.
func (p *Postgres) ApplyVotes(ctx context.Context, votes []ballot.Vote) error {
	if len(votes) == 0 {
		return nil
	}
	votes = ballot.Latest(votes)
	// Rows are locked in id order by the upsert; sorting keeps lock order
	// deterministic should writers ever stop being serialised.
	sort.Slice(votes, func(i, j int) bool { return votes[i].VoterID < votes[j].VoterID })
	ids := make([]string, len(votes))
	opts := make([]string, len(votes))
	stamps := make([]int64, len(votes))
	for i, v := range votes {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("apply votes: voter %q: %w", v.VoterID, err)
		}
		ids[i], opts[i], stamps[i] = v.VoterID, v.Option, v.CastAt
	}
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock($1)", writeLockKey)
	b.Queue(applySQL, ids, opts, stamps)
	br := p.write.SendBatch(ctx, b)
	_, err1 := br.Exec()
	var err2 error
	if err1 == nil {
		_, err2 = br.Exec()
	}
	err3 := br.Close()
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("apply %d votes: %w", len(votes), err)
	}
	return nil
}

// Tally reads the two tally rows from the read pool.
func (p *Postgres) Tally(ctx context.Context) (Tally, error) {
	return readTally(ctx, p.read)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readTally(ctx context.Context, q querier) (Tally, error) {
	return queryTally(ctx, q, "SELECT option, count FROM tallies", "read tallies")
}

// queryTally runs a query returning (option, count) rows into a Tally.
func queryTally(ctx context.Context, q querier, sql, what string) (Tally, error) {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return Tally{}, fmt.Errorf("%s: %w", what, err)
	}
	var t Tally
	var opt string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&opt, &n}, func() error {
		t.set(opt, n)
		return nil
	})
	if err != nil {
		return Tally{}, fmt.Errorf("%s: %w", what, err)
	}
	return t, nil
}

func (t *Tally) set(opt string, n int64) {
	switch opt {
	case ballot.OptionA:
		t.A = n
	case ballot.OptionB:
		t.B = n
	}
}

// ParseNotification decodes the payload of a tallies notification.
func ParseNotification(payload string) (Tally, error) {
	m := map[string]int64{}
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return Tally{}, fmt.Errorf("decode tally notification: %w", err)
	}
	var t Tally
	for k, v := range m {
		t.set(k, v)
	}
	return t, nil
}

// WatchTallies LISTENs on a dedicated primary connection (replicas cannot
// LISTEN). Notifications carry the totals, so no read follows them and a
// lagging replica cannot make a pushed value go backwards. After every
// (re)connect it reads the current tally, covering changes missed while
// disconnected.
func (p *Postgres) WatchTallies(ctx context.Context, fn func(Tally), down func(error)) error {
	b := backoff.New(100*time.Millisecond, 5*time.Second)
	for {
		err := p.watchOnce(ctx, fn, b)
		if ctx.Err() != nil {
			return nil
		}
		if down != nil {
			down(err)
		}
		d := b.Next()
		p.log.Warn(fmt.Sprintf("waiting for postgres (listen): %v, retrying in %s", err, d.Round(time.Millisecond)),
			"dependency", "postgres", "error", err.Error(), "retry_in", d.String())
		if !backoff.Sleep(ctx, d) {
			return nil
		}
	}
}

func (p *Postgres) watchOnce(ctx context.Context, fn func(Tally), b *backoff.Backoff) error {
	lc := p.listen.Copy()
	p.password(lc)
	conn, err := pgx.ConnectConfig(ctx, lc)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	t, err := readTally(ctx, conn)
	if err != nil {
		return err
	}
	b.Reset()
	fn(t)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		t, err := ParseNotification(n.Payload)
		if err != nil {
			p.log.Error("ignoring bad tally notification", "error", err.Error())
			continue
		}
		fn(t)
	}
}
