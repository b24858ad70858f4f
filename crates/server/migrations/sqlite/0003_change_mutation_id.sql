-- The client mutation id of the write behind a change, echoed in its event: an optimistic create's placeholder is
-- replaced by the server's row the moment the event arrives, even before the mutation's HTTP answer.
ALTER TABLE change_log ADD COLUMN client_mutation_id TEXT;
