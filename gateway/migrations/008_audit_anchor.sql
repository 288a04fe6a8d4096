-- Audit anchoring: a row's hash now also covers the audit record it was read from, and says how it was taken.
-- scheme 1: hash = sha256(prev_hash || canonical JSON of entry): the rows appended before this migration, which
--           keep their hashes and are still checked by that rule;
-- scheme 2: hash = sha256(prev_hash || canonical JSON of {entry, topic, partition, offset, timestamp}), where
--           topic, partition, offset are the row's columns and timestamp its kafka_timestamp.
-- The keeper states the scheme of every row it appends (no default), and a verifier takes a scheme-1 row after a
-- scheme-2 one as a change. The chain's head is also anchored outside the database: gateway/audit/anchor.py.
ALTER TABLE gateway.audit_log
    ADD COLUMN kafka_timestamp bigint,              -- the audit record's Kafka timestamp (ms since the epoch)
    ADD COLUMN scheme smallint NOT NULL DEFAULT 1;  -- what the hash covers (above)
ALTER TABLE gateway.audit_log ALTER COLUMN scheme DROP DEFAULT;
ALTER TABLE gateway.audit_log ADD CONSTRAINT audit_log_scheme
    CHECK (scheme = 1 OR (scheme = 2 AND kafka_timestamp IS NOT NULL));
