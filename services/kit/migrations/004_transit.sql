-- How long the exchange took to bring each event, in real time: from the sender's outbox (sent_at) through its
-- entry into the exchange (ingress_at) and the router's delivery (routed_at) to this department taking it up
-- (received_at). The efficacy report reads these views (and measures departments by their own desk's times).
ALTER TABLE {schema}.inbox ADD COLUMN sent_at timestamptz, ADD COLUMN ingress_at timestamptz,
    ADD COLUMN routed_at timestamptz;

CREATE VIEW {schema}.transits AS
SELECT sender, contract, sent_at, ingress_at, routed_at, received_at AS handled_at
FROM {schema}.inbox WHERE outcome = 'handled' AND ingress_at IS NOT NULL;

-- A department's own times for each request it answered: when it had the request, when it decided.
CREATE VIEW {schema}.answered AS
SELECT task_id AS request_id, received_at, decided_at
FROM {schema}.tasks WHERE kind = 'opinion' AND decided_at IS NOT NULL;
