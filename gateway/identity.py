"""Department identity over HTTP: a bearer token per department, stored only as its SHA-256 hash.
(Over Kafka, identity is the ingress topic a message entered by.)"""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from contracts.departments import DEPARTMENTS


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(pool: asyncpg.Pool, department: str) -> str:
    """A new token for a department; shown once, never stored in clear."""
    if department not in DEPARTMENTS:
        raise ValueError(f"unknown department {department!r}")
    token = f"cnc_{department}_{secrets.token_urlsafe(32)}"
    await pool.execute("INSERT INTO gateway.tokens (token_hash, department) VALUES ($1, $2)",
                       token_hash(token), department)
    return token


async def department_of(pool: asyncpg.Pool, token: str) -> str | None:
    return await pool.fetchval(  # type: ignore[no-any-return]
        "SELECT department FROM gateway.tokens WHERE token_hash = $1 AND revoked_at IS NULL", token_hash(token)
    )
