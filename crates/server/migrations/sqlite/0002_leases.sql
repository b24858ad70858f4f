-- Leases for background work shared by several server instances (PostgreSQL); with SQLite there is one instance,
-- which always holds them. See ../postgres/0002_leases.sql.
CREATE TABLE stream_leases (
    consumer      TEXT    PRIMARY KEY NOT NULL,
    holder        TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
