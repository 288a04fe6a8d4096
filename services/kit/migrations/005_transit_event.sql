-- The event each transit belongs to, so that a case's trace shows the exchange's time for each of its events.
CREATE OR REPLACE VIEW {schema}.transits AS
SELECT sender, contract, sent_at, ingress_at, routed_at, received_at AS handled_at, event_id
FROM {schema}.inbox WHERE outcome = 'handled' AND ingress_at IS NOT NULL;
