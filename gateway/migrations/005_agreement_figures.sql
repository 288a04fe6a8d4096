-- What the gateway publishes of its agreements for the efficacy report (read by the `reporter` role): the
-- bureau's report reads this view, never the gateway's table.
CREATE VIEW gateway.agreement_figures AS
SELECT id, contract_id, provider, consumer, status, requested_at, decided_at, reasons,
       escalated_at IS NOT NULL AS escalated
FROM gateway.agreements;
