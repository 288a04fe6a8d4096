-- A department's desk: the work the exchange brings it (opinions to give, conflicts to decide), what it
-- knows of each case, and whether its rules or its officers decide.
CREATE TABLE {schema}.tasks (
    task_id     text PRIMARY KEY,             -- the request id, or the conflict id
    kind        text NOT NULL,                -- opinion | conflict
    case_id     text NOT NULL,
    item_code   text NOT NULL,
    payload     jsonb NOT NULL,               -- the event that brought the task, as received
    status      text NOT NULL,                -- open | on_hold | awaiting_supplement | decided
    round       int NOT NULL DEFAULT 1,
    received_at timestamptz NOT NULL,
    decide_at   timestamptz NOT NULL,         -- when the rules will have an answer (the department's pace)
    due_at      timestamptz,
    decided_at  timestamptz,
    decision    text,
    decided_by  text
);
CREATE INDEX ON {schema}.tasks (status, decide_at);
CREATE INDEX ON {schema}.tasks (case_id);

CREATE TABLE {schema}.case_files (
    case_id      text PRIMARY KEY,
    survey_at    timestamptz,
    suspended    boolean NOT NULL DEFAULT false,
    registration jsonb
);

CREATE TABLE {schema}.desk (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    mode     text NOT NULL DEFAULT 'rules'    -- rules | human (officers decide through the API or the CLI)
);
INSERT INTO {schema}.desk VALUES (true, 'rules');
