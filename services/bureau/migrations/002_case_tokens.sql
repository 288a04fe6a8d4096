-- The applicant's token for one case, given at submission: it reads that case and hands in its documents,
-- supplements and resubmissions, nothing else. Only a salted hash of it is kept.
CREATE TABLE bureau.case_tokens (
    token_id   text PRIMARY KEY,
    case_id    text NOT NULL UNIQUE REFERENCES bureau.cases (case_id),
    token_salt bytea NOT NULL,
    token_hash bytea NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now()
);
