-- Leases for background work shared by several server instances: the holder of a consumer's lease is the only
-- instance that consumes its batches (or reaps, or prunes) until the lease expires or is released.
CREATE TABLE stream_leases (
    consumer      TEXT    PRIMARY KEY NOT NULL,
    holder        TEXT    NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);
