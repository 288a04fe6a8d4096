"""The audit log: the entries of the audit topic, appended once each to PostgreSQL as a hash chain.

Every row holds one entry and ``hash = sha256(prev_hash + canonical JSON of the entry)``, where ``prev_hash``
is the hash of the row before it (``GENESIS`` for the first). Changing, removing, adding or reordering rows
breaks a link, and ``verify`` says which of the four happened where. What the chain cannot show is a change
at its very end (the last rows removed, or rows added that extend it correctly): for that, compare ``head``
with a copy kept elsewhere.

One concept per module: ``entry`` (what an entry says), ``chain`` (the hash chain and how a row is stored),
``keeper`` (appending the audit topic to the chain, exactly once), ``verification`` (what was done to a chain)
and ``queries`` (reading it).
"""

from gateway.audit.chain import GENESIS, canonical, chain_hash
from gateway.audit.entry import AuditAction, AuditEntry, Ingress
from gateway.audit.keeper import APPEND_LOCK, AuditKeeper, decode_entry
from gateway.audit.queries import query
from gateway.audit.verification import Finding, classify, head, verify

__all__ = ["APPEND_LOCK", "GENESIS", "AuditAction", "AuditEntry", "AuditKeeper", "Finding", "Ingress", "canonical",
           "chain_hash", "classify", "decode_entry", "head", "query", "verify"]
