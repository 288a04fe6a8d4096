-- The gateway's state: the contract registry, department tokens, sharing agreements, and the ids of routed
-- events (duplicate detection).
CREATE SCHEMA IF NOT EXISTS gateway;

CREATE TABLE gateway.contracts (
    id            text PRIMARY KEY,
    owner         text NOT NULL,
    compatibility text NOT NULL DEFAULT 'BACKWARD',
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A version's schema carries everything the gateway enforces: x-sharing on every field and x-contract
-- (owner, publishers, consumers, subject and recipient fields).
CREATE TABLE gateway.contract_versions (
    contract_id   text NOT NULL REFERENCES gateway.contracts (id),
    version       int NOT NULL CHECK (version > 0),
    schema        jsonb NOT NULL,
    fingerprint   text NOT NULL,
    registered_by text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contract_id, version)
);

CREATE TABLE gateway.tokens (
    token_hash text PRIMARY KEY,          -- SHA-256 of the bearer token; the token itself is never stored
    department text NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE gateway.agreements (
    id           text PRIMARY KEY,
    contract_id  text NOT NULL REFERENCES gateway.contracts (id),
    provider     text NOT NULL,
    consumer     text NOT NULL,
    fields       text[] NOT NULL,
    purpose      text NOT NULL,
    legal_basis  text NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    status       text NOT NULL,           -- pending | approved | rejected | revoked
    requested_at timestamptz NOT NULL,
    remind_at    timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    decided_at   timestamptz,
    reasons      text,
    reminded_at  timestamptz,
    escalated_at timestamptz,
    revoked_at   timestamptz,
    CHECK (valid_until > valid_from)
);
CREATE INDEX ON gateway.agreements (status);
CREATE INDEX ON gateway.agreements (consumer);
CREATE INDEX ON gateway.agreements (provider);

-- Every change to what the router enforces bumps this counter; routers reload when it moves.
CREATE TABLE gateway.policy_version (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), version bigint NOT NULL);
INSERT INTO gateway.policy_version VALUES (true, 1);
CREATE FUNCTION gateway.bump_policy_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gateway.policy_version SET version = version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER contracts_changed AFTER INSERT OR UPDATE OR DELETE ON gateway.contracts
    FOR EACH STATEMENT EXECUTE FUNCTION gateway.bump_policy_version();
CREATE TRIGGER contract_versions_changed AFTER INSERT OR UPDATE OR DELETE ON gateway.contract_versions
    FOR EACH STATEMENT EXECUTE FUNCTION gateway.bump_policy_version();
CREATE TRIGGER agreements_changed AFTER INSERT OR UPDATE OF status, fields, valid_from, valid_until OR DELETE
    ON gateway.agreements FOR EACH STATEMENT EXECUTE FUNCTION gateway.bump_policy_version();

-- Ids of events routed, with where each entered: the same id again from another position is a duplicate;
-- the same position again is the router's own retry.
CREATE TABLE gateway.seen_events (
    sender   text NOT NULL,
    event_id text NOT NULL,
    position text NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sender, event_id)
);
CREATE INDEX ON gateway.seen_events (seen_at);

-- The exchange's own notices go through the outbox every component has (base/migrations/001_outbox.sql).
