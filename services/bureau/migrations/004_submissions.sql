-- A front desk's key for a submission (the Idempotency-Key header): the same submission sent again with the same
-- key, because its answer was lost, finds the case the first one opened instead of opening a second.
CREATE TABLE bureau.submissions (
    idempotency_key text PRIMARY KEY,
    case_id         text NOT NULL UNIQUE REFERENCES bureau.cases (case_id),
    submitted_at    timestamptz NOT NULL DEFAULT now()
);
