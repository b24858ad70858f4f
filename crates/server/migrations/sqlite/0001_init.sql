-- The order table (the DynamoDB table analogue). `body` holds the whole item as JSON; the other columns are what
-- queries filter on.
CREATE TABLE orders (
    id          TEXT    PRIMARY KEY NOT NULL,
    owner       TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    expires_at  INTEGER,
    body        TEXT    NOT NULL
);
CREATE INDEX orders_by_owner ON orders (owner, id);
CREATE INDEX orders_by_expiry ON orders (expires_at) WHERE expires_at IS NOT NULL;

-- The change log (the DynamoDB Streams analogue): one record per committed write, gap-free seq in commit order.
CREATE TABLE change_log (
    seq             INTEGER PRIMARY KEY NOT NULL,
    op              TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    expired         INTEGER NOT NULL DEFAULT 0,
    image           TEXT    NOT NULL,
    committed_at_ms INTEGER NOT NULL
);
CREATE INDEX change_log_by_time ON change_log (committed_at_ms);

-- Counters: `seq` is the last allocated change seq; `pruned_through` the highest seq removed by retention.
CREATE TABLE counters (
    name  TEXT    PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('seq', 0), ('pruned_through', 0);

-- Results of mutations by client mutation id, so a replay returns the original result and writes nothing.
CREATE TABLE mutation_results (
    owner              TEXT    NOT NULL,
    client_mutation_id TEXT    NOT NULL,
    result             TEXT    NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    PRIMARY KEY (owner, client_mutation_id)
);

-- Stream consumers (the Lambda analogue): one checkpoint per consumer, and the records they gave up on.
CREATE TABLE stream_checkpoints (
    consumer      TEXT    PRIMARY KEY NOT NULL,
    seq           INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer     TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    key          TEXT    NOT NULL,
    error        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    failed_at_ms INTEGER NOT NULL
);
