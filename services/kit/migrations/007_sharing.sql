-- Data a review waits for: the sharing request its rules made at the exchange, what came of it, and whether its
-- refusal was escalated. An answer that comes before its task was filed (or to a request made by hand) is kept
-- in sharing_answers until a task asks for it.
ALTER TABLE {schema}.tasks ADD COLUMN agreement_id text;
ALTER TABLE {schema}.tasks ADD COLUMN data text;
ALTER TABLE {schema}.tasks ADD COLUMN escalated boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX ON {schema}.tasks (agreement_id) WHERE agreement_id IS NOT NULL;

CREATE TABLE {schema}.sharing_answers (
    agreement_id text PRIMARY KEY,
    outcome      text NOT NULL,               -- approved | rejected (contracts.exchange.AgreementOutcome)
    reasons      text NOT NULL,
    answered_at  timestamptz NOT NULL
);
