-- A consumer's request for an agreement sent again with the same Idempotency-Key (its answer was lost, or the
-- department's own save failed after the gateway had accepted) is answered with the agreement the first one made:
-- no second request reaches the provider. What was asked for (contract, fields) is kept to refuse the key's reuse
-- for another request.
CREATE TABLE gateway.agreement_requests (
    consumer        text NOT NULL,
    idempotency_key text NOT NULL,
    agreement_id    text NOT NULL REFERENCES gateway.agreements (id),
    contract_id     text NOT NULL,
    fields          text[] NOT NULL,
    PRIMARY KEY (consumer, idempotency_key)
);
