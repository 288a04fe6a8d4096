-- The department kit's tables, created once per department schema.
CREATE SCHEMA IF NOT EXISTS {schema};

-- Every event handled, recorded in the same transaction as the state change it caused:
-- an event delivered again finds its id here and changes nothing.
CREATE TABLE {schema}.inbox (
    event_id    text PRIMARY KEY,
    contract    text NOT NULL,
    sender      text NOT NULL,
    outcome     text NOT NULL,            -- handled | unreadable | parked
    detail      text,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Events to publish go through the outbox every component has (base/migrations/001_outbox.sql).

-- Rejection notices from the gateway: what this department sent that the exchange refused, and why.
CREATE TABLE {schema}.rejections (
    event_id    text PRIMARY KEY,
    rejected_id text NOT NULL,
    contract    text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
