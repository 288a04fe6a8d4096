-- Credentials replace the bare department tokens: one row per credential issued, whose it is (a department,
-- the gateway or the operator), the Kafka user it authenticates as (`<principal>.<id>`), and a salted hash of
-- its HTTP token. Neither the token nor the Kafka password is stored; the broker keeps its own SCRAM verifier.
DROP TABLE gateway.tokens;

CREATE TABLE gateway.credentials (
    id          text PRIMARY KEY,             -- also the middle of the token and the end of the Kafka user
    principal   text NOT NULL,
    kafka_user  text NOT NULL UNIQUE,
    token_salt  bytea NOT NULL,
    token_hash  bytea NOT NULL,               -- sha256(salt || secret part of the token)
    issued_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX ON gateway.credentials (principal) WHERE revoked_at IS NULL;
