"""Bearer tokens: ``<kind>_<id>.<secret>``. The id finds the stored row; the secret is kept only as a salted
SHA-256 hash and compared in constant time. Shown once, when issued."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

TOKEN = re.compile(r"^(?P<kind>[a-z]{2,8})_(?P<id>[a-z0-9]{10})\.(?P<secret>[A-Za-z0-9_-]{43})$")
MAX_TOKEN_LENGTH = 80


@dataclass(frozen=True)
class IssuedToken:
    token: str  # what the holder gets, once
    id: str
    salt: bytes
    hash: bytes


@dataclass(frozen=True)
class PresentedToken:
    kind: str
    id: str
    secret: str

    def matches(self, salt: bytes, hashed: bytes) -> bool:
        return hmac.compare_digest(salted_hash(salt, self.secret), hashed)


def salted_hash(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def new_id() -> str:
    return secrets.token_hex(5)


def issue(kind: str, id: str | None = None) -> IssuedToken:
    token_id = id or new_id()
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    return IssuedToken(f"{kind}_{token_id}.{secret}", token_id, salt, salted_hash(salt, secret))


def parse(token: str) -> PresentedToken | None:
    """The parts of a well-formed token; None for anything else (checked before any lookup)."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    match = TOKEN.fullmatch(token)
    return PresentedToken(match["kind"], match["id"], match["secret"]) if match else None
