-- The bureau's cases, the opinions it asked for, and the conflicts it raised (schema `bureau`).
CREATE SCHEMA IF NOT EXISTS bureau;

CREATE TABLE bureau.cases (
    case_id            text PRIMARY KEY,
    application        jsonb NOT NULL,
    agent              text NOT NULL,
    catalogue_version  text NOT NULL,
    status             text NOT NULL,
    stage              int NOT NULL,
    submitted_at       timestamptz NOT NULL,
    completed_at       timestamptz,
    reasons            jsonb NOT NULL DEFAULT '[]',
    documents          jsonb NOT NULL DEFAULT '[]',
    promised_documents jsonb NOT NULL DEFAULT '[]',
    promised_by        timestamptz,
    suspended_at       timestamptz,
    survey_at          timestamptz,
    resubmissions      int NOT NULL DEFAULT 0,
    stage_started      jsonb NOT NULL DEFAULT '{}',
    stage_completed    jsonb NOT NULL DEFAULT '{}',
    next_check_at      timestamptz            -- when the deadline watch should look at the case again
);
CREATE INDEX ON bureau.cases (status);
CREATE INDEX ON bureau.cases (next_check_at) WHERE next_check_at IS NOT NULL;

CREATE TABLE bureau.requests (
    request_id     text PRIMARY KEY,
    case_id        text NOT NULL REFERENCES bureau.cases (case_id),
    stage          int NOT NULL,
    department     text NOT NULL,
    item_code      text NOT NULL,
    item_name      text NOT NULL,
    committed_days int NOT NULL,
    requested_at   timestamptz NOT NULL,
    allowed_days   double precision NOT NULL,
    due_at         timestamptz NOT NULL,
    status         text NOT NULL,
    decision       text,
    conditions     jsonb NOT NULL DEFAULT '[]',
    reasons        jsonb NOT NULL DEFAULT '[]',
    decided_at     timestamptz,
    supplements    int NOT NULL DEFAULT 0,
    paused_since   timestamptz,
    paused_days    double precision NOT NULL DEFAULT 0,
    reminded       jsonb NOT NULL DEFAULT '[]',
    escalated_at   timestamptz,
    overridden     boolean NOT NULL DEFAULT false
);
CREATE INDEX ON bureau.requests (case_id);
CREATE INDEX ON bureau.requests (department, status);

CREATE TABLE bureau.conflicts (
    conflict_id text PRIMARY KEY,
    case_id     text NOT NULL REFERENCES bureau.cases (case_id),
    stage       int NOT NULL,
    raised_at   timestamptz NOT NULL,
    resolved_at timestamptz,
    resolution  text,
    conditions  jsonb NOT NULL DEFAULT '[]',
    reasons     jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX ON bureau.conflicts (case_id);
