-- What the operators' console reads live: the entries of the last hour (by the real time the keeper appended
-- them) and the refusals, newest first, without scanning the whole log.
CREATE INDEX audit_log_recorded ON gateway.audit_log (recorded_at);
CREATE INDEX audit_log_rejected ON gateway.audit_log (seq) WHERE action = 'rejected';
