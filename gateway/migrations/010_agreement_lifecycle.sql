-- Agreements as a lifecycle (gateway/lifecycle.py): counter-offers, windows relative to a case or to the approval,
-- suspension, expiry notices and renewal, refusals escalated to the coordination office. `status` now takes every
-- value of contracts.exchange.AgreementStatus; remind_at, due_at, reminded_at and escalated_at are the deadline of
-- the pending step the status says (the provider's decision, the consumer's answer, the office's decision).
ALTER TABLE gateway.agreements
    ADD COLUMN case_id           text,                 -- case-scoped: only this case's records get the fields
    ADD COLUMN working_days      int CHECK (working_days > 0),  -- in force this many working days from approval
    ADD COLUMN renews            text REFERENCES gateway.agreements (id),
    ADD COLUMN asked             jsonb,                -- the terms first asked for, once a counter-offer changed them
    ADD COLUMN conditions        text[] NOT NULL DEFAULT '{}',  -- attached by the coordination office
    ADD COLUMN suspended_at      timestamptz,
    ADD COLUMN expiry_noticed_at timestamptz,
    ADD COLUMN ended_at          timestamptz,
    ADD COLUMN overdue_steps     int NOT NULL DEFAULT 0;  -- pending steps that went past their deadline
CREATE INDEX ON gateway.agreements (case_id) WHERE case_id IS NOT NULL;

-- The efficacy report reads outcomes in the words it knows (approved, rejected, revoked, or pending); `lifecycle`
-- has the status itself.
CREATE OR REPLACE VIEW gateway.agreement_figures AS
SELECT id, contract_id, provider, consumer,
       CASE status WHEN 'countered' THEN 'pending' WHEN 'escalated' THEN 'pending'
                   WHEN 'suspended' THEN 'approved' WHEN 'ended' THEN 'approved'
                   WHEN 'declined' THEN 'rejected' WHEN 'upheld' THEN 'rejected'
                   ELSE status END AS status,
       requested_at, decided_at, reasons,
       escalated_at IS NOT NULL OR overdue_steps > 0 AS escalated,
       status AS lifecycle, case_id, renews
FROM gateway.agreements;
