-- A parked event keeps the record it came in (key, value and headers, as delivered), so that an operator can run
-- it again once the cause is fixed (`concord inbox replay`); attempts counts its handler's runs, and replayed_at
-- says when a replay handled it (the row is then 'handled'). Header names are kept as bytes: a name that
-- PostgreSQL's text cannot hold must not stop the stream.
ALTER TABLE {schema}.inbox ADD COLUMN attempts int, ADD COLUMN replayed_at timestamptz,
    ADD COLUMN record_key bytea, ADD COLUMN record_value bytea, ADD COLUMN header_names bytea[],
    ADD COLUMN header_values bytea[];
CREATE INDEX ON {schema}.inbox (received_at) WHERE outcome = 'parked';
