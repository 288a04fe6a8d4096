-- The outbox, one per component schema (the gateway's and each department's): events to publish, written in
-- the same transaction as the state change that produced them, then relayed to Kafka (base/outbox.py).
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.outbox (
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
CREATE INDEX IF NOT EXISTS outbox_id_idx ON {schema}.outbox (id) WHERE published_at IS NULL;
