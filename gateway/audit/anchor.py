"""Anchors: the chain's head (seq, hash, count, time) signed with the keeper's Ed25519 key and published to a
compacted topic (``audit.anchor``) that only the gateway's principal may write, keyed by the chain's table.

The database role can rewrite every row and every hash of the chain, but neither the anchors (not on the broker)
nor a signature (the private key is in the deployment's secrets folder, never in the database): against them a
verifier that knows the public key finds a chain that ends before an anchored seq, a row at an anchored seq with
another hash, and a record of the topic that is not an anchor the key signed (``verification.against_anchors``).
What stays open is the stretch after the last anchor: the last few seconds of appends."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from base.clock import Clock
from base.credentials import CredentialsMissing
from base.errors import Explained
from base.kafka import KafkaAccess, stop_client
from gateway.audit.chain import canonical
from gateway.topics import partitions_of

log = logging.getLogger("concord.audit")
ANCHOR_SECONDS = 5.0  # how often the keeper anchors a chain that grew
READ_SECONDS = 60.0  # how long reading the whole anchor topic may take
RETRY_SECONDS = 5.0
STOP_SECONDS = 15.0  # how long the keeper waits to publish its last anchor when it stops


class Anchor(BaseModel):
    """What an anchor says: the chain (its table) had ``count`` entries up to ``seq``, whose hash is ``hash``, at
    ``at``; signed by the key whose id is ``key``. The keeper numbers entries 1, 2, 3, ..., so ``count`` is
    ``seq`` for the chain it appends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: StrictStr
    seq: StrictInt
    hash: StrictStr
    count: StrictInt
    at: AwareDatetime
    key: StrictStr

    def signed(self) -> bytes:
        """The bytes the signature covers: the anchor's canonical JSON."""
        return canonical(self.model_dump(mode="json")).encode()


def key_id(public: Ed25519PublicKey) -> str:
    """A public key's id: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_record(anchor: Anchor, key: Ed25519PrivateKey) -> bytes:
    """The value of an anchor's record: the anchor with its signature (base64) beside it."""
    signature = base64.b64encode(key.sign(anchor.signed())).decode()
    return canonical({**anchor.model_dump(mode="json"), "signature": signature}).encode()


class ForgedAnchor(ValueError):
    """A record of the anchor topic that is not an anchor of this chain signed by its key; the message says why."""


def anchor_of(value: bytes | None, chain: str, public: Ed25519PublicKey) -> Anchor:
    """The anchor a record of the topic holds, when ``public``'s key signed it for ``chain``."""
    try:
        data = json.loads((value or b"").decode())
    except (ValueError, RecursionError) as exc:
        raise ForgedAnchor(f"not an anchor ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ForgedAnchor("not an anchor (not a JSON object)")
    signature = data.pop("signature", None)
    if not isinstance(signature, str):
        raise ForgedAnchor("not signed")
    try:
        public.verify(base64.b64decode(signature, validate=True), canonical(data).encode())
    except (InvalidSignature, binascii.Error, ValueError):
        signer = data.get("key")
        if isinstance(signer, str) and signer != key_id(public):
            raise ForgedAnchor(f"signed by key {signer[:16]!r}, not the chain's key {key_id(public)}") from None
        raise ForgedAnchor(f"its signature does not verify with the chain's key {key_id(public)}") from None
    try:
        anchor = Anchor.model_validate(data)
    except ValidationError as exc:
        raise ForgedAnchor(f"signed, but not an anchor ({exc.error_count()} fields wrong)") from None
    if anchor.chain != chain:
        raise ForgedAnchor(f"an anchor of chain {anchor.chain}, under the key of chain {chain}")
    return anchor


@dataclass(frozen=True)
class Anchored:
    """An anchor of the chain found at ``offset`` of the topic."""

    offset: int
    anchor: Anchor


@dataclass(frozen=True)
class Forged:
    """A record under the chain's key at ``offset`` that is not an anchor its key signed: the seq it claims (when
    it claims one) and why it is not."""

    offset: int
    seq: int | None
    why: str


Reading = Anchored | Forged


def reading(offset: int, value: bytes | None, chain: str, public: Ed25519PublicKey) -> Reading:
    try:
        return Anchored(offset, anchor_of(value, chain, public))
    except ForgedAnchor as exc:
        return Forged(offset, _claimed_seq(value), str(exc))


def _claimed_seq(value: bytes | None) -> int | None:
    try:
        seq = json.loads((value or b"").decode()).get("seq")
    except (ValueError, RecursionError, AttributeError):
        return None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


# --- the key -------------------------------------------------------------------------------------------------
def new_key_pair() -> tuple[str, str]:
    """A new signing key and its public key, as PEM (PKCS #8 and SubjectPublicKeyInfo)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public.decode()


def public_pem(private_pem: str) -> str:
    """The public key of a signing key (PEM)."""
    return _private(private_pem.encode(), "the signing key").public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class AnchorKeyUnusable(Explained, ValueError):
    """A key file that holds no Ed25519 key of the kind wanted."""


def _private(data: bytes, what: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise AnchorKeyUnusable(f"{what} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AnchorKeyUnusable(f"{what} is not an Ed25519 key")
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CredentialsMissing(f"no {what} at {path}: `concord stack up` (or, for Docker, the `secrets` job) "
                                 "makes it with the deployment's other secrets") from None


def signing_key(path: Path) -> Ed25519PrivateKey:
    """The keeper's signing key (PEM, in the secrets folder)."""
    return _private(_read(path, "audit anchor signing key"), str(path))


def verifying_key(path: Path) -> Ed25519PublicKey:
    """The public key anchors are checked with (PEM): the secrets folder's copy, or one a verifier was given."""
    try:
        key = serialization.load_pem_public_key(_read(path, "audit anchor public key"))
    except ValueError as exc:
        raise AnchorKeyUnusable(f"{path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AnchorKeyUnusable(f"{path} is not an Ed25519 public key")
    return key


# --- publishing ----------------------------------------------------------------------------------------------
class Anchoring:
    """The keeper's side: after appending, it notes the head it wrote (``grew``); ``due`` publishes it when it
    moved and ``every`` seconds passed since the last anchor, ``stop`` publishes what is pending. The head is the
    one the keeper itself committed, never read back from the database."""

    def __init__(self, access: KafkaAccess, topic: str, chain: str, key: Ed25519PrivateKey, clock: Clock,
                 every: float = ANCHOR_SECONDS) -> None:
        self.topic, self.chain, self.key, self.clock, self.every = topic, chain, key, clock, every
        self.key_id = key_id(key.public_key())
        self.producer = AIOKafkaProducer(**access.aiokafka(), client_id="gateway.audit-anchor", acks="all",
                                         enable_idempotence=True)
        self.pending: tuple[int, str] | None = None
        self.last_publish = time.monotonic()
        self.failing = False

    async def start(self) -> None:
        await self.producer.start()

    def grew(self, seq: int, hash: str) -> None:
        if self.pending is None or seq > self.pending[0]:
            self.pending = (seq, hash)

    async def due(self) -> None:
        if self.pending is not None and time.monotonic() - self.last_publish >= self.every:
            await self.publish()

    async def publish(self) -> None:
        """Publish the pending head now, if there is one. A failure is logged once while it lasts, and the head
        stays pending."""
        if self.pending is None:
            return
        seq, hash = self.pending
        anchor = Anchor(chain=self.chain, seq=seq, hash=hash, count=seq, at=self.clock.now(), key=self.key_id)
        self.last_publish = time.monotonic()
        try:
            await self.producer.send_and_wait(self.topic, signed_record(anchor, self.key), key=self.chain.encode())
        except Exception:
            if not self.failing:
                log.exception("audit keeper: anchor of seq %s not published to %s; trying again", seq, self.topic)
            self.failing = True
            return
        if self.failing:
            log.info("audit keeper: anchors published to %s again", self.topic)
        self.failing = False
        if self.pending == (seq, hash):
            self.pending = None

    async def stop(self) -> None:
        """Publish the pending head (waiting at most ``STOP_SECONDS`` for the broker), then stop."""
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await self.publish()
        except TimeoutError:
            log.error("audit keeper: the anchor of seq %s was not published before stopping",
                      self.pending[0] if self.pending else None)
        finally:
            await stop_client(self.producer.stop, "the anchor producer")


# --- reading -------------------------------------------------------------------------------------------------
class AnchorTopicMissing(Explained, RuntimeError):
    """The anchor topic is not on the broker (or not visible to the principal reading it)."""


class AnchorLog:
    """The anchor topic as a verifier reads it: every reading of a chain (``read``, from the beginning), and the
    latest reading of each chain while ``run`` follows the topic (the console's audit view)."""

    def __init__(self, access: KafkaAccess, topic: str, public: Ed25519PublicKey, poll_seconds: float = 1.0) -> None:
        self.access, self.topic, self.public, self.poll_seconds = access, topic, public, poll_seconds
        self.key_id = key_id(public)
        self.latest: dict[str, Reading] = {}

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(**self.access.aiokafka(), client_id="gateway.audit-anchor-reader",
                                enable_auto_commit=False, isolation_level="read_committed")

    async def _assigned(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        assigned = await partitions_of(self.access, self.topic)
        if not assigned:
            raise AnchorTopicMissing(f"no anchor topic {self.topic} on the broker: `concord topics ensure` makes it")
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        return assigned

    async def read(self, chain: str) -> list[Reading]:
        """Every record under the chain's key, from the beginning of the topic to its end as it is now, in
        offset order."""
        consumer = self._consumer()
        await consumer.start()
        found: list[Reading] = []
        try:
            async with asyncio.timeout(READ_SECONDS):
                assigned = await self._assigned(consumer)
                ends = await consumer.end_offsets(assigned)
                while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                    batch = await consumer.getmany(*assigned, timeout_ms=1000)
                    found += [reading(r.offset, r.value, chain, self.public)
                              for records in batch.values() for r in records if r.key == chain.encode()]
        finally:
            await stop_client(consumer.stop, "a reader of the anchor log")
        return sorted(found, key=lambda r: r.offset)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the topic until ``stop``, keeping the latest reading of each chain; a failure is logged (once
        while it lasts) and the topic read again after a pause."""
        failing = False
        while not stop.is_set():
            consumer = self._consumer()
            try:
                await consumer.start()
                await self._assigned(consumer)
                if failing:
                    log.info("anchor log: reading %s again", self.topic)
                failing = False
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=int(self.poll_seconds * 1000))
                    for records in batch.values():
                        for r in records:
                            if r.key is not None:
                                chain = r.key.decode("utf-8", "replace")
                                self.latest[chain] = reading(r.offset, r.value, chain, self.public)
            except Exception:
                if not failing:
                    log.exception("anchor log: reading %s failed; trying again every %ss", self.topic, RETRY_SECONDS)
                failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
            finally:
                await stop_client(consumer.stop, "the anchor log's reader")


def described(found: Reading | None) -> dict[str, Any] | None:
    """A reading as plain data for the console and the command line."""
    if found is None:
        return None
    if isinstance(found, Forged):
        return {"genuine": False, "offset": found.offset, "seq": found.seq, "why": found.why}
    a = found.anchor
    return {"genuine": True, "offset": found.offset, "seq": a.seq, "hash": a.hash, "count": a.count, "at": a.at,
            "key": a.key}
