"""Credentials as a principal holds them, and the folder of secrets a deployment keeps for its own processes.

``concord credentials issue DEPT`` prints one ``Credentials`` object: what a department's team needs to reach
the broker (SCRAM-SHA-512 over TLS) and the HTTP APIs (a bearer token). The exchange itself keeps only
salted hashes of them (the broker its SCRAM verifiers, the gateway a salted hash of the token).

The secrets folder (``<stack>/secrets`` on the local stack, a mounted volume in Docker) holds what the
deployment's own processes use: the CA certificate clients trust, the broker admin's password (stack tooling
only), the PostgreSQL roles' passwords, one credentials file per principal the deployment runs, the key the
audit keeper signs the chain's anchors with (with its public key, which verifiers may be given), and the key of
the gateway's keyed-hash masks (never in the database: whoever holds it could test guesses against a token)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from base.errors import Explained


class KafkaCredentials(BaseModel):
    bootstrap: str
    security_protocol: str
    sasl_mechanism: str
    username: str
    password: str
    ssl_cafile: str


class Credentials(BaseModel):
    department: str  # the principal: a department's code, or ``gateway`` or ``operator``
    kafka: KafkaCredentials
    http_token: str


class CredentialsMissing(Explained, RuntimeError):
    """A secret a process needs is not where the settings say; the message says where and how to get it."""


def write_secret(path: Path, content: str) -> None:
    """Write a file only its owner can read (the folder too)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(content)
    os.chmod(path, 0o600)


@dataclass(frozen=True)
class Secrets:
    root: Path
    credentials_root: Path | None = None

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    @property
    def admin_file(self) -> Path:
        return self.root / "kafka-admin.json"

    @property
    def postgres_file(self) -> Path:
        return self.root / "postgres.json"

    @property
    def anchor_key_file(self) -> Path:
        return self.root / "audit-anchor-key.pem"

    @property
    def anchor_public_file(self) -> Path:
        return self.root / "audit-anchor-public.pem"

    @property
    def mask_key_file(self) -> Path:
        return self.root / "mask-key"

    def mask_key(self) -> bytes:
        """The key of the keyed-hash masks (``contracts.masks.KeyedHash``): 32 bytes, hex in its file."""
        try:
            key = bytes.fromhex(self.mask_key_file.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            raise CredentialsMissing(f"no mask key at {self.mask_key_file}: `concord stack up` makes it for the local "
                                     "stack (a deployment keeps 32 random bytes there, in hex)") from None
        if len(key) < 32:
            raise CredentialsMissing(f"the mask key at {self.mask_key_file} is shorter than 32 bytes")
        return key

    @property
    def credentials_folder(self) -> Path:
        return self.credentials_root or self.root / "credentials"

    def credentials_file(self, principal: str) -> Path:
        return self.credentials_folder / f"{principal}.json"

    def credentials(self, principal: str) -> Credentials:
        path = self.credentials_file(principal)
        try:
            return Credentials.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CredentialsMissing(
                f"no credentials for {principal}: expected {path} (save the output of `concord credentials issue "
                f"{principal}` there, or set CONCORD_CREDENTIALS_DIR to the folder that holds {principal}.json)"
            ) from None

    def save_credentials(self, credentials: Credentials) -> Path:
        path = self.credentials_file(credentials.department)
        write_secret(path, credentials.model_dump_json(indent=2))
        return path

    def kafka_admin_password(self) -> str:
        try:
            return str(json.loads(self.admin_file.read_text(encoding="utf-8"))["password"])
        except FileNotFoundError:
            raise CredentialsMissing(f"no broker admin secret at {self.admin_file}: `concord stack up` makes it "
                                     "for the local stack") from None

    def postgres_passwords(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.postgres_file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return {}

    def postgres_password(self, role: str) -> str | None:
        return self.postgres_passwords().get(role)
