"""Credentials the exchange has issued, kept in ``gateway.credentials`` as the gateway needs them: whose each
is, the Kafka user it authenticates as, and a salted hash of its HTTP token (never the token or a password).
The gateway's API finds the principal of a bearer token here; the other services ask the gateway."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from base import tokens
from gateway.acls import Holder

KIND = "cnc"  # the prefix of the tokens of issued credentials


@dataclass(frozen=True)
class CredentialRecord:
    id: str
    principal: str
    kafka_user: str
    issued_at: datetime
    revoked_at: datetime | None

    @property
    def holder(self) -> Holder:
        return Holder(self.principal, self.kafka_user)


def kafka_user(principal: str, credential_id: str) -> str:
    return f"{principal}.{credential_id}"


class CredentialStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def principal_of(self, token: str) -> str | None:
        """The principal holding this HTTP token, if it is one the exchange issued and has not revoked."""
        presented = tokens.parse(token)
        if presented is None or presented.kind != KIND:
            return None
        row = await self.pool.fetchrow(
            "SELECT principal, token_salt, token_hash FROM gateway.credentials WHERE id = $1 AND revoked_at IS NULL",
            presented.id,
        )
        if row is None or not presented.matches(bytes(row["token_salt"]), bytes(row["token_hash"])):
            return None
        return str(row["principal"])

    async def add(self, principal: str, token: tokens.IssuedToken) -> CredentialRecord:
        row = await self.pool.fetchrow(
            "INSERT INTO gateway.credentials (id, principal, kafka_user, token_salt, token_hash)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING *",
            token.id, principal, kafka_user(principal, token.id), token.salt, token.hash,
        )
        return _record(row)

    async def remove(self, credential_id: str) -> None:
        """Forget a credential whose issue did not complete."""
        await self.pool.execute("DELETE FROM gateway.credentials WHERE id = $1", credential_id)

    async def records(self, principal: str | None = None, include_revoked: bool = True) -> list[CredentialRecord]:
        rows = await self.pool.fetch(
            "SELECT * FROM gateway.credentials WHERE ($1::text IS NULL OR principal = $1)"
            " AND ($2 OR revoked_at IS NULL) ORDER BY principal, issued_at", principal, include_revoked,
        )
        return [_record(r) for r in rows]

    async def active(self) -> list[CredentialRecord]:
        return await self.records(include_revoked=False)

    async def revoke(self, principal: str, ids: list[str] | None = None) -> list[CredentialRecord]:
        """Mark a principal's credentials in force (all, or those with these ids) revoked; returns them."""
        rows = await self.pool.fetch(
            "UPDATE gateway.credentials SET revoked_at = now() WHERE principal = $1 AND revoked_at IS NULL"
            " AND ($2::text[] IS NULL OR id = ANY($2)) RETURNING *", principal, ids,
        )
        return [_record(r) for r in rows]


def _record(row: asyncpg.Record) -> CredentialRecord:
    return CredentialRecord(row["id"], row["principal"], row["kafka_user"], row["issued_at"], row["revoked_at"])
