"""What the broker's admin does for the exchange, and only the admin may: create the topics, issue and revoke
credentials (SCRAM users on the broker, salted token hashes in the gateway's store), and keep the broker's
ACLs equal to the plan derived from the credentials in force and the topic namespaces (``gateway.acls``).

The ACL and SCRAM calls use confluent-kafka's admin client (aiokafka has none); topics use aiokafka's, and so does
the wait for every broker of a cluster to hold the ACLs (its client can address one broker)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import DescribeAclsRequest
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from base import tokens
from base.credentials import Credentials, KafkaCredentials
from base.errors import Explained
from base.kafka import SCRAM, KafkaAccess, Replication
from base.settings import ADMIN, Settings
from contracts.departments import PRINCIPALS
from contracts.topics import Topics
from gateway.acls import Acl, Operation, Pattern, Resource, namespace_of, planned
from gateway.credentials import KIND, CredentialRecord, CredentialStore, kafka_user
from gateway.topics import ensure_topics, existing_topics, planned_topics

SCRAM_ITERATIONS = 8192
TIMEOUT = 30.0
PROVISIONING_LOCK = 7_310_003  # one admin change at a time (deploy.migrate holds 7_310_001, the audit 7_310_002)


class UnknownPrincipal(Explained, ValueError):
    def __init__(self, principal: str) -> None:
        super().__init__(f"no principal {principal!r}; principals: {', '.join(PRINCIPALS)}")


class BrokerAdmin:
    """The admin's calls for ACLs and SCRAM users (blocking; run them in a thread from async code)."""

    def __init__(self, access: KafkaAccess) -> None:
        self.client = AdminClient(access.confluent())

    def acls(self) -> tuple[set[Acl], list[AclBinding]]:
        """The rules the broker holds for every user but the admin (who needs none): those the plan can make,
        and the others (another permission, host or operation), which a reconciliation removes."""
        bindings = self.client.describe_acls(
            AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY), request_timeout=TIMEOUT).result()
        ours: set[Acl] = set()
        foreign: list[AclBinding] = []
        for b in bindings:
            user = b.principal.partition(":")[2]
            if user == ADMIN:
                continue
            if _plannable(b):
                ours.add(Acl(user, Resource(b.restype.name), b.name, Pattern(b.resource_pattern_type.name),
                             Operation(b.operation.name)))
            else:
                foreign.append(b)
        return ours, foreign

    def create(self, acls: Iterable[Acl]) -> None:
        bindings = [AclBinding(ResourceType[a.resource.value], a.name, ResourcePatternType[a.pattern.value],
                               a.principal, "*", AclOperation[a.operation.value], AclPermissionType.ALLOW)
                    for a in sorted(acls)]
        if bindings:
            for future in self.client.create_acls(bindings, request_timeout=TIMEOUT).values():
                future.result()

    def delete(self, acls: Iterable[Acl], foreign: Iterable[AclBinding] = ()) -> None:
        filters = [AclBindingFilter(ResourceType[a.resource.value], a.name, ResourcePatternType[a.pattern.value],
                                    a.principal, None, AclOperation[a.operation.value], AclPermissionType.ANY)
                   for a in sorted(acls)]
        filters += [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                     b.permission_type) for b in foreign]
        if filters:
            for future in self.client.delete_acls(filters, request_timeout=TIMEOUT).values():
                future.result()

    def scram_users(self) -> set[str]:
        described = self.client.describe_user_scram_credentials(request_timeout=TIMEOUT).result()
        return set(described) - {ADMIN}

    def set_password(self, user: str, password: str) -> None:
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        [future] = self.client.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, info, password.encode())], request_timeout=TIMEOUT).values()
        future.result()

    def disable_users(self, users: Iterable[str]) -> None:
        """Give users a random password nobody keeps. Users are never deleted: Kafka 4.1 to 4.4 may lose every
        SCRAM credential when a broker restarts after one was removed (replaying a removal into an empty image
        detaches the mechanism's map, and the credentials added after it in that delta are dropped)."""
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upserts = [UserScramCredentialUpsertion(u, info, secrets.token_bytes(32)) for u in sorted(users)]
        if upserts:
            for future in self.client.alter_user_scram_credentials(upserts, request_timeout=TIMEOUT).values():
                future.result()


# Kafka's protocol codes (DescribeAcls) of what a plan holds, and of "any" in a filter.
RESOURCES = {2: Resource.TOPIC, 3: Resource.GROUP, 5: Resource.TRANSACTIONAL_ID}
PATTERNS = {3: Pattern.LITERAL, 4: Pattern.PREFIXED}
OPERATIONS = {3: Operation.READ, 4: Operation.WRITE, 8: Operation.DESCRIBE}
ANY, ALLOW = 1, 3


async def held_everywhere(access: KafkaAccess, wanted: set[Acl]) -> None:
    """Return once every broker of the cluster holds exactly the ACLs ``wanted`` (for every user but the admin).
    Each broker applies the metadata log at its own pace, so each is asked by its node id: aiokafka's client can
    address one; confluent-kafka sends DescribeAcls to whichever broker the metadata names as controller."""
    client = AIOKafkaClient(**access.aiokafka())
    await client.bootstrap()
    try:
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while differing := {node: len(held ^ wanted) for node in sorted(b.nodeId for b in client.cluster.brokers())
                            if (held := await _held_by(client, node)) != wanted}:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"brokers hold ACLs other than planned (node: how many): {differing}")
            await asyncio.sleep(0.1)
    finally:
        await client.close()


async def _held_by(client: AIOKafkaClient, node: int) -> set[Acl]:
    """The plannable ACLs one broker enforces (the others are the reconciliation's to delete)."""
    response = await client.send(node, DescribeAclsRequest(ANY, None, ANY, None, None, ANY, ANY))
    if response.error_code:
        raise for_code(response.error_code)(response.error_message)
    return {Acl(principal.partition(":")[2], RESOURCES[kind], name, PATTERNS[pattern], OPERATIONS[operation])
            for kind, name, pattern, entries in response.resources for principal, host, operation, permission in entries
            if principal != f"User:{ADMIN}" and host == "*" and permission == ALLOW and kind in RESOURCES
            and pattern in PATTERNS and operation in OPERATIONS}


def _plannable(binding: AclBinding) -> bool:
    return (binding.permission_type == AclPermissionType.ALLOW and binding.host == "*"
            and binding.restype.name in Resource.__members__
            and binding.resource_pattern_type.name in Pattern.__members__
            and binding.operation.name in Operation.__members__)


@dataclass(frozen=True)
class Reconciled:
    created: int
    deleted: int
    users_disabled: int


class Provisioner:
    """The admin's tasks for one deployment: its topics, its credentials and the ACLs that follow from them."""

    def __init__(self, admin: KafkaAccess, pool: asyncpg.Pool, bootstrap_for_clients: str, ca_file: str,
                 replication: Replication) -> None:
        self.access = admin
        self.replication = replication
        self.broker = BrokerAdmin(admin)
        self.store = CredentialStore(pool)
        self.pool = pool
        self.bootstrap = bootstrap_for_clients
        self.ca_file = ca_file

    async def ensure_topics(self, topics: Topics) -> dict[str, str]:
        """The namespace's topics (with a shared topic for every contract in code or in the registry), then the
        ACLs for every namespace present."""
        registered = {r["id"] for r in await self.pool.fetch("SELECT id FROM gateway.contracts")}
        done = await ensure_topics(self.access, planned_topics(topics, registered), self.replication)
        await self.reconcile(also=topics.namespace)
        return done

    @asynccontextmanager
    async def _alone(self) -> AsyncIterator[None]:
        """Admin changes one at a time, across processes: a reconciliation must not see a credential's row
        without its SCRAM user, or the other way round."""
        async with self.pool.acquire() as connection:
            await connection.execute("SELECT pg_advisory_lock($1)", PROVISIONING_LOCK)
            try:
                yield
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", PROVISIONING_LOCK)

    async def reconcile(self, also: str | None = None) -> Reconciled:
        """Make the broker's ACLs exactly those of the credentials in force, and disable any SCRAM user that is
        not one of them, for every topic namespace present (and ``also`` this one, whose topics may be too new to
        be listed); returns once the broker holds the result."""
        async with self._alone():
            return await self._reconcile(also)

    async def _reconcile(self, also: str | None = None) -> Reconciled:
        records = await self.store.records()
        holders = [r.holder for r in records if r.revoked_at is None]
        disabled = {r.kafka_user for r in records if r.revoked_at is not None}  # done when they were revoked
        namespaces = {ns for topic in await existing_topics(self.access) if (ns := namespace_of(topic)) is not None}
        wanted = planned(holders, namespaces | ({also} if also is not None else set()))
        held, foreign = await asyncio.to_thread(self.broker.acls)
        stray_users = await asyncio.to_thread(self.broker.scram_users) - {h.user for h in holders} - disabled
        await asyncio.to_thread(self.broker.create, wanted - held)
        await asyncio.to_thread(self.broker.delete, held - wanted, foreign)
        await asyncio.to_thread(self.broker.disable_users, stray_users)
        await held_everywhere(self.access, wanted)
        return Reconciled(len(wanted - held), len(held - wanted) + len(foreign), len(stray_users))

    async def issue(self, principal: str) -> Credentials:
        """New credentials for a principal; those it already holds keep working until revoked."""
        if principal not in PRINCIPALS:
            raise UnknownPrincipal(principal)
        token = tokens.issue(KIND)
        password = secrets.token_urlsafe(32)
        async with self._alone():
            record = await self.store.add(principal, token)
            try:
                await asyncio.to_thread(self.broker.set_password, record.kafka_user, password)
                await self._reconcile()
            except Exception:
                await self.store.remove(record.id)
                raise
        return Credentials(
            department=principal, http_token=token.token,
            kafka=KafkaCredentials(bootstrap=self.bootstrap, security_protocol="SASL_SSL", sasl_mechanism=SCRAM,
                                   username=kafka_user(principal, token.id), password=password,
                                   ssl_cafile=self.ca_file),
        )

    async def revoke(self, principal: str, ids: list[str] | None = None) -> list[CredentialRecord]:
        """Revoke a principal's credentials (all, or those named): the Kafka user's password is replaced by one
        nobody knows, so new connections are refused, and every request on an open one fails from now on, since
        the user's ACLs are gone."""
        if principal not in PRINCIPALS:
            raise UnknownPrincipal(principal)
        async with self._alone():
            revoked = await self.store.revoke(principal, ids)
            if revoked:
                await asyncio.to_thread(self.broker.disable_users, [r.kafka_user for r in revoked])
                await self._reconcile()
        return revoked

    async def in_force(self, credentials: Credentials) -> bool:
        """Whether saved credentials are still ones the exchange honours."""
        parsed = tokens.parse(credentials.http_token)
        return parsed is not None and any(
            r.id == parsed.id and r.kafka_user == credentials.kafka.username
            for r in await self.store.records(credentials.department, include_revoked=False))


@asynccontextmanager
async def provisioner(settings: Settings) -> AsyncIterator[Provisioner]:
    """The deployment's provisioner, as its admin (the broker's super user and the database's superuser)."""
    pool = await asyncpg.create_pool(settings.admin_dsn, min_size=1, max_size=2)
    try:
        yield Provisioner(settings.kafka(ADMIN), pool, settings.bootstrap, str(settings.secrets.ca_file),
                          settings.replication)
    finally:
        await pool.close()
