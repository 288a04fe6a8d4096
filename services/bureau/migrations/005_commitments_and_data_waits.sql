-- Approval on commitment (告知承诺制): a request approved on the applicant's commitment, its verification and a
-- revocation; the data a department's review waited for (each wait: the agreement, the provider, since and until
-- when, what came of it); when a revoked approval reopened an ended case.
ALTER TABLE bureau.requests ADD COLUMN on_commitment boolean NOT NULL DEFAULT false;
ALTER TABLE bureau.requests ADD COLUMN verify_by timestamptz;
ALTER TABLE bureau.requests ADD COLUMN verified_at timestamptz;
ALTER TABLE bureau.requests ADD COLUMN verification text;
ALTER TABLE bureau.requests ADD COLUMN findings jsonb NOT NULL DEFAULT '[]';
ALTER TABLE bureau.requests ADD COLUMN revoked_at timestamptz;
ALTER TABLE bureau.requests ADD COLUMN data_waits jsonb NOT NULL DEFAULT '[]';
CREATE INDEX ON bureau.requests USING gin (data_waits jsonb_path_ops);
ALTER TABLE bureau.cases ADD COLUMN reopened jsonb NOT NULL DEFAULT '[]';

-- Sharing requests the bureau received as the provider of its contracts' conditional fields (the applicant's
-- contacts), answered by its rules at its pace when a review of one of its cases waits for them (the others are
-- left to its officers: outcome 'officers').
CREATE TABLE bureau.sharing_requests (
    agreement_id text PRIMARY KEY,
    request      jsonb NOT NULL,              -- the exchange.agreement-requested event, as received
    received_at  timestamptz NOT NULL,
    decide_at    timestamptz NOT NULL,
    decided_at   timestamptz,
    outcome      text,                        -- approved | rejected | officers
    reasons      text
);
CREATE INDEX ON bureau.sharing_requests (decide_at) WHERE decided_at IS NULL;
