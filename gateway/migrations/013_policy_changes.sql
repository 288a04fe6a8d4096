-- The router applies what changed in the agreements instead of loading every one again at each change (their
-- number grows with the cases open: most are case-scoped). Each agreement's row carries the policy version its
-- last change made (`changed_in`), taken from the counter in the changing transaction, whose row lock orders
-- such transactions: once a version can be read, every change stamped with it or an earlier one has committed.
-- What the router cannot apply piecemeal (a contract registered or changed, an agreement deleted) sets `whole`
-- to the version it made: a router that has loaded an earlier one loads everything again.
ALTER TABLE gateway.policy_version ADD COLUMN whole bigint NOT NULL DEFAULT 0;
ALTER TABLE gateway.agreements ADD COLUMN changed_in bigint NOT NULL DEFAULT 0;
CREATE INDEX ON gateway.agreements (changed_in);

CREATE OR REPLACE FUNCTION gateway.bump_policy_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gateway.policy_version SET version = version + 1, whole = version + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION gateway.stamp_agreement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gateway.policy_version SET version = version + 1 RETURNING version INTO NEW.changed_in;
    RETURN NEW;
END $$;

DROP TRIGGER agreements_changed ON gateway.agreements;
-- Every column the router's policy reads of an agreement.
CREATE TRIGGER agreement_changed BEFORE INSERT OR UPDATE OF status, fields, valid_from, valid_until, purpose, consumer,
    contract_id, case_id ON gateway.agreements FOR EACH ROW EXECUTE FUNCTION gateway.stamp_agreement();
CREATE TRIGGER agreements_removed AFTER DELETE OR TRUNCATE ON gateway.agreements
    FOR EACH STATEMENT EXECUTE FUNCTION gateway.bump_policy_version();
