-- The audit log: every entry of the audit topic, appended once, as a hash chain (see gateway/audit.py).
CREATE SCHEMA IF NOT EXISTS gateway;

-- One row per audit entry, in the order the keeper appended them. `entry` is the whole entry as written;
-- action .. version are copies of its fields for the indexes. `hash` = sha256(prev_hash || canonical JSON
-- of entry), and prev_hash is the hash of the row before (64 zeros for seq 1), so changing, removing,
-- adding or reordering rows breaks the links.
CREATE TABLE gateway.audit_log (
    seq             bigint PRIMARY KEY,            -- 1, 2, 3, ... with no gaps, assigned by the keeper
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    at              timestamptz NOT NULL,          -- the entry's own time (its `at`)
    action          text NOT NULL,
    event_id        text,
    case_id         text,
    sender          text,
    contract        text,
    version         int,
    entry           jsonb NOT NULL,
    topic           text NOT NULL,                 -- where the entry was read: topic, partition, offset
    kafka_partition int NOT NULL,
    kafka_offset    bigint NOT NULL,
    prev_hash       text NOT NULL,
    hash            text NOT NULL,
    UNIQUE (topic, kafka_partition, kafka_offset)
);
CREATE INDEX ON gateway.audit_log (case_id, seq);
CREATE INDEX ON gateway.audit_log (sender, seq);
CREATE INDEX ON gateway.audit_log USING gin ((entry -> 'delivered'));  -- consumers: entry->'delivered' ? dept
CREATE INDEX ON gateway.audit_log (contract, seq);
CREATE INDEX ON gateway.audit_log (at);

-- How far the keeper has read each partition of the audit topic: the offset of the next record to append.
-- Written in the same transaction as the rows, so a record is appended exactly once.
CREATE TABLE gateway.audit_position (
    topic           text NOT NULL,
    kafka_partition int NOT NULL,
    next_offset     bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition)
);
