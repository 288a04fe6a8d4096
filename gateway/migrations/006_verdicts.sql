-- The verdict on an event sent over HTTP: the audit entry of the ingress position it was written to, or of its
-- id from its sender (every copy), found by these indexes.
CREATE INDEX audit_log_ingress ON gateway.audit_log (
    (entry -> 'ingress' ->> 'topic'), ((entry -> 'ingress' ->> 'partition')::int),
    ((entry -> 'ingress' ->> 'offset')::bigint)
) WHERE action IN ('routed', 'rejected');
CREATE INDEX audit_log_event ON gateway.audit_log (sender, event_id) WHERE action IN ('routed', 'rejected');
