-- An answer to data a review asked for is an `exchange.agreement-changed` step (approved, refused on a typed ground,
-- counter-offered, accepted, declined, proceeded or upheld by the coordination office): kept as told, until a task
-- asks for it. `outcome` now holds the step's change (contracts.exchange.AgreementChange).
ALTER TABLE {schema}.sharing_answers ADD COLUMN told jsonb;
