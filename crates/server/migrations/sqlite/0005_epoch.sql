-- The change log's epoch: a random number drawn once, when this database is made. A client that kept a cursor (a
-- persisted lastSeq) from another database with the same address (one wiped and made again) tells by it that the
-- cursor is not this log's, and takes a new snapshot. Sent in every `connection_ack` (`payload.epoch`).
INSERT INTO counters (name, value) VALUES ('epoch', abs(random()) % 9007199254740991 + 1);
