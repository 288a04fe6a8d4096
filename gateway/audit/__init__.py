"""The audit log: the entries of the audit topic, appended once each to PostgreSQL as a hash chain, whose head
is anchored, signed, on the broker.

Every row holds one entry and ``hash = sha256(prev_hash + canonical JSON of the entry and the audit record it
came from: topic, partition, offset, Kafka timestamp)``, where ``prev_hash`` is the hash of the row before it
(``GENESIS`` for the first); rows appended before the anchoring keep the older rule (the entry alone). Changing,
removing, adding or reordering rows breaks a link, and ``classify`` says which of the four happened where. What
the rows cannot show (the last rows removed, or the whole chain rewritten with every hash recomputed) the
anchors do: the keeper signs the head it committed with a key that is not in the database and publishes it to a
compacted topic only the gateway writes, and ``check`` finds a truncated tail, a rewritten chain and a forged
anchor against them.

One concept per module: ``entry`` (what an entry says), ``chain`` (the hash chain and how a row is stored),
``keeper`` (appending the audit topic to the chain, exactly once), ``anchor`` (the signed heads on the broker),
``verification`` (what was done to a chain) and ``queries`` (reading it).
"""

from gateway.audit.anchor import Anchor, Anchored, AnchorLog, Forged, Reading
from gateway.audit.chain import GENESIS, Origin, Scheme, canonical, chain_hash, record_hash
from gateway.audit.entry import AuditAction, AuditEntry, Ingress
from gateway.audit.keeper import APPEND_LOCK, AuditKeeper, decode_entry
from gateway.audit.queries import query
from gateway.audit.verification import Finding, Verification, against_anchors, check, classify, head, verify

__all__ = ["APPEND_LOCK", "GENESIS", "Anchor", "AnchorLog", "Anchored", "AuditAction", "AuditEntry", "AuditKeeper",
           "Finding", "Forged", "Ingress", "Origin", "Reading", "Scheme", "Verification", "against_anchors",
           "canonical", "chain_hash", "check", "classify", "decode_entry", "head", "query", "record_hash", "verify"]
