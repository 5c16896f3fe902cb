-- The table of the original example-voting-app, unchanged, so a database
-- written by the original worker can be migrated in place.
CREATE TABLE IF NOT EXISTS votes (
    id   VARCHAR(255) NOT NULL UNIQUE,
    vote VARCHAR(255) NOT NULL
);
