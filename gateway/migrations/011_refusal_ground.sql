-- A refusal's (or a counter-offer's) ground as a type (contracts.refusal_grounds.SharingGround), beside its free-text
-- reasons; it stays with the agreement through its later steps (an escalation, the office's decision), as does when
-- the provider refused. Refusals kept before this migration led their reasons with the ground's code: read back once.
ALTER TABLE gateway.agreements
    ADD COLUMN ground     text,  -- a SharingGround's value, checked by the gateway against the enum
    ADD COLUMN refused_at timestamptz;  -- when the provider refused (an escalated refusal keeps it)
UPDATE gateway.agreements SET refused_at = decided_at,
       ground = CASE WHEN split_part(reasons, ':', 1) IN ('no_legal_basis', 'personal_information', 'not_necessary',
                                                           'no_case_named', 'vertical_system', 'unverified')
                     THEN split_part(reasons, ':', 1) END
WHERE status = 'rejected';

-- The efficacy report's view, with the typed ground, whether the provider refused (whatever the office decided
-- after) and whether a counter-offer changed the terms asked for (accepted, declined or still open).
CREATE OR REPLACE VIEW gateway.agreement_figures AS
SELECT id, contract_id, provider, consumer,
       CASE status WHEN 'countered' THEN 'pending' WHEN 'escalated' THEN 'pending'
                   WHEN 'suspended' THEN 'approved' WHEN 'ended' THEN 'approved'
                   WHEN 'declined' THEN 'rejected' WHEN 'upheld' THEN 'rejected'
                   ELSE status END AS status,
       requested_at, decided_at, reasons,
       escalated_at IS NOT NULL OR overdue_steps > 0 AS escalated,
       status AS lifecycle, case_id, renews,
       ground, refused_at IS NOT NULL AS refused, asked IS NOT NULL AS countered
FROM gateway.agreements;
