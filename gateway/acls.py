"""Who may do what on the broker, derived from the departments and the exchange's topics, never written by
hand. ``concord topics ensure`` and ``concord credentials issue|revoke`` apply the plan; ``concord acls list``
shows what the broker holds.

Each credential is a SCRAM user of its own (``<principal>.<credential id>``), so that new credentials work
before the old are revoked; every user of a principal gets that principal's ACLs:

- a department writes only its ingress topic and reads only its deliver topic and its own dead-letter topic;
  its consumer groups and transactional ids are its code or start with ``<code>.``;
- the gateway reads the ingress topics (and writes them for HTTP ingest), writes the shared, deliver and
  dead-letter topics and the audit topic, reads the shared topics (backfill), the audit topic (the audit
  keeper) and the deliver and dead-letter topics (what operators tail, masked); it describes every consumer
  group (the lag operators watch); its groups and transactional ids start with ``gateway``; it alone writes
  the audit chain's anchors (the audit keeper, which runs in the gateway's process) and reads them;
- the operator reads the anchors, to check the chain's head against them; no other topic (its views are the
  gateway's HTTP API);
- nobody but the admin (the broker's only super user) creates or deletes topics or touches ACLs.

Topic rights are given per namespace of topics (the exchange, and any benchmark or test exchange beside it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from contracts.departments import DEPARTMENTS, GATEWAY, OPERATOR
from contracts.topics import Topics


class Resource(StrEnum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"
    TRANSACTIONAL_ID = "TRANSACTIONAL_ID"


class Pattern(StrEnum):
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(StrEnum):
    READ = "READ"
    WRITE = "WRITE"
    DESCRIBE = "DESCRIBE"


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule for a Kafka user, from any host (READ and WRITE imply DESCRIBE)."""

    user: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


@dataclass(frozen=True)
class Holder:
    """A credential in force: whose it is, and the Kafka user it authenticates as."""

    principal: str
    user: str


FAMILIES = ("ingress", "deliver", "deadletter", "shared", "audit")


def namespace_of(topic: str) -> str | None:
    """The namespace of one of the exchange's topics (``""`` for the exchange itself), else None: what comes
    before the first name of a topic family (``ingress``, ``deliver``, ``deadletter``, ``shared``, ``audit``)."""
    parts = topic.split(".")
    for i, part in enumerate(parts[:-1]):
        if part in FAMILIES:
            return ".".join(parts[:i])
    return None


def _own_groups_and_transactions(user: str, prefix: str) -> list[Acl]:
    return [Acl(user, resource, name, pattern, operation)
            for resource, operation in ((Resource.GROUP, Operation.READ), (Resource.TRANSACTIONAL_ID, Operation.WRITE))
            for name, pattern in ((prefix, Pattern.LITERAL), (f"{prefix}.", Pattern.PREFIXED))]


def _department(user: str, code: str, topics: Topics) -> list[Acl]:
    return [
        Acl(user, Resource.TOPIC, topics.ingress(code), Pattern.LITERAL, Operation.WRITE),
        Acl(user, Resource.TOPIC, topics.deliver(code), Pattern.LITERAL, Operation.READ),
        Acl(user, Resource.TOPIC, topics.deadletter(code), Pattern.LITERAL, Operation.READ),
    ]


def _gateway(user: str, topics: Topics) -> list[Acl]:
    prefixed = {
        topics.ingress(""): (Operation.READ, Operation.WRITE),  # routes them; writes them for HTTP ingest
        topics.shared(""): (Operation.READ, Operation.WRITE),  # the exchange's record; read for backfill
        topics.deliver(""): (Operation.READ, Operation.WRITE),
        topics.deadletter(""): (Operation.READ, Operation.WRITE),
    }
    acls = [Acl(user, Resource.TOPIC, prefix, Pattern.PREFIXED, operation)
            for prefix, operations in prefixed.items() for operation in operations]
    acls += [Acl(user, Resource.TOPIC, topic, Pattern.LITERAL, operation)
             for topic in (topics.audit, topics.audit_anchor) for operation in (Operation.READ, Operation.WRITE)]
    return acls


def planned(holders: Iterable[Holder], namespaces: Iterable[str]) -> set[Acl]:
    """Every ACL the broker should hold for these credentials and topic namespaces, and no other."""
    spaces = [Topics(namespace) for namespace in sorted(set(namespaces))]
    acls: set[Acl] = set()
    for holder in holders:
        if holder.principal in DEPARTMENTS:
            acls.update(_own_groups_and_transactions(holder.user, holder.principal))
            for topics in spaces:
                acls.update(_department(holder.user, holder.principal, topics))
        elif holder.principal == GATEWAY:
            acls.update(_own_groups_and_transactions(holder.user, GATEWAY))
            acls.add(Acl(holder.user, Resource.GROUP, "*", Pattern.LITERAL, Operation.DESCRIBE))  # consumer lag
            for topics in spaces:
                acls.update(_gateway(holder.user, topics))
        elif holder.principal == OPERATOR:
            acls.update(Acl(holder.user, Resource.TOPIC, topics.audit_anchor, Pattern.LITERAL, Operation.READ)
                        for topics in spaces)
    return acls
