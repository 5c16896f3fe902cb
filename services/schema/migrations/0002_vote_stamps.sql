-- cast_at (unix nanoseconds when the vote service accepted the vote) orders a
-- voter's votes so the latest wins even when delivered late or twice. Rows
-- from the original app get 0, so any new vote replaces them.
ALTER TABLE votes ADD COLUMN IF NOT EXISTS cast_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE votes ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ NOT NULL DEFAULT now();
