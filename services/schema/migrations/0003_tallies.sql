-- Running totals kept in the same transaction as each vote upsert, so the
-- result page reads two rows instead of counting the whole votes table.
CREATE TABLE IF NOT EXISTS tallies (
    option VARCHAR(255) PRIMARY KEY,
    count  BIGINT NOT NULL DEFAULT 0 CHECK (count >= 0)
);
-- One-off backfill from whatever votes already exist (e.g. migrated from the
-- original app); from here on writers maintain the counts incrementally.
INSERT INTO tallies (option, count)
SELECT o.option, (SELECT count(*) FROM votes v WHERE v.vote = o.option)
FROM (VALUES ('a'), ('b')) AS o(option)
ON CONFLICT (option) DO NOTHING;
