-- The PostgreSQL twin of ../sqlite/0001_init.sql: the same tables and columns, so one set of queries serves both.
-- Integers are BIGINT (Rust i64) everywhere.

-- The order table (the DynamoDB table analogue). `body` holds the whole item as JSON; the other columns are what
-- queries filter on.
CREATE TABLE orders (
    id          TEXT    PRIMARY KEY NOT NULL,
    owner       TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    expires_at  BIGINT,
    body        TEXT    NOT NULL
);
CREATE INDEX orders_by_owner ON orders (owner, id);
CREATE INDEX orders_by_expiry ON orders (expires_at) WHERE expires_at IS NOT NULL;

-- The change log (the DynamoDB Streams analogue): one record per committed write, gap-free seq in commit order.
-- seq is not a sequence: sequences skip on rollback and are handed out before commit, in no commit order. It comes
-- from the `seq` counter row, updated inside the writing transaction; the row lock serialises writers until commit.
CREATE TABLE change_log (
    seq             BIGINT  PRIMARY KEY NOT NULL,
    op              TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    version         BIGINT  NOT NULL,
    expired         BIGINT  NOT NULL DEFAULT 0,
    image           TEXT    NOT NULL,
    committed_at_ms BIGINT  NOT NULL
);
CREATE INDEX change_log_by_time ON change_log (committed_at_ms);

-- Counters: `seq` is the last allocated change seq; `pruned_through` the highest seq removed by retention.
CREATE TABLE counters (
    name  TEXT    PRIMARY KEY NOT NULL,
    value BIGINT  NOT NULL
);
INSERT INTO counters (name, value) VALUES ('seq', 0), ('pruned_through', 0);

-- Results of mutations by client mutation id, so a replay returns the original result and writes nothing.
CREATE TABLE mutation_results (
    owner              TEXT    NOT NULL,
    client_mutation_id TEXT    NOT NULL,
    result             TEXT    NOT NULL,
    created_at_ms      BIGINT  NOT NULL,
    PRIMARY KEY (owner, client_mutation_id)
);
CREATE INDEX mutation_results_by_time ON mutation_results (created_at_ms);

-- Stream consumers (the Lambda analogue): one checkpoint per consumer, and the records they gave up on.
CREATE TABLE stream_checkpoints (
    consumer      TEXT    PRIMARY KEY NOT NULL,
    seq           BIGINT  NOT NULL,
    updated_at_ms BIGINT  NOT NULL
);
CREATE TABLE dead_letters (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer     TEXT    NOT NULL,
    seq          BIGINT  NOT NULL,
    key          TEXT    NOT NULL,
    error        TEXT    NOT NULL,
    attempts     BIGINT  NOT NULL,
    failed_at_ms BIGINT  NOT NULL
);
