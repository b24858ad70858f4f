-- Entity-generic storage: one table for the rows of every model declared in the schema (the order service is one
-- model among them). `model` is the type name (`Order`, `Note`), `body` the whole item as JSON; the other
-- columns are what queries filter on. The change log names the model of each record, so a subscription for one
-- model reads only its records while its cursor stays the global seq.
CREATE TABLE items (
    model       TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    expires_at  BIGINT,
    body        TEXT    NOT NULL,
    PRIMARY KEY (model, id)
);
CREATE INDEX items_by_owner ON items (model, owner, id);
CREATE INDEX items_by_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;

-- Rows written before models existed are orders.
INSERT INTO items (model, id, owner, version, expires_at, body)
    SELECT 'Order', id, owner, version, expires_at, body FROM orders;
DROP TABLE orders;

ALTER TABLE change_log ADD COLUMN model TEXT NOT NULL DEFAULT 'Order';
