-- The bureau's cases and the opinions it asked for (schema `bureau`, created by the kit's migration).
CREATE SCHEMA IF NOT EXISTS bureau;

CREATE TABLE bureau.cases (
    case_id      text PRIMARY KEY,
    application  jsonb NOT NULL,
    agent        text NOT NULL,
    status       text NOT NULL,
    stage        int NOT NULL,
    submitted_at timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX ON bureau.cases (status);

CREATE TABLE bureau.requests (
    request_id   text PRIMARY KEY,
    case_id      text NOT NULL REFERENCES bureau.cases (case_id),
    stage        int NOT NULL,
    department   text NOT NULL,
    item_code    text NOT NULL,
    item_name    text NOT NULL,
    requested_at timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    decision     text,
    conditions   jsonb NOT NULL DEFAULT '[]',
    reasons      jsonb NOT NULL DEFAULT '[]',
    decided_at   timestamptz
);
CREATE INDEX ON bureau.requests (case_id);
CREATE INDEX ON bureau.requests (department) WHERE decision IS NULL;
