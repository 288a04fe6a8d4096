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

-- Events to publish, written in the same transaction as the state change that produced them,
-- then sent to the department's ingress topic by the relay.
CREATE TABLE {schema}.outbox (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    contract     text NOT NULL,
    topic        text NOT NULL,
    key          bytea,
    value        bytea NOT NULL,
    headers      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX ON {schema}.outbox (id) WHERE published_at IS NULL;

-- Rejection notices from the gateway: what this department sent that the exchange refused, and why.
CREATE TABLE {schema}.rejections (
    event_id    text PRIMARY KEY,
    rejected_id text NOT NULL,
    contract    text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
