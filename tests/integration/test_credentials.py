"""Credentials on the real stack: issued as one JSON object, rotated with the old ones still working until
revoked, revoked so that they fail at once on the broker and on every API, listed without a secret; and
PostgreSQL with password authentication and a role per component that owns its schema only."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from base.credentials import Credentials
from base.kafka import KafkaAccess
from base.settings import REPORTER, Settings
from contracts.departments import GATEWAY
from deploy.processes import AppProcesses
from gateway.provisioning import provisioner
from tests.tools import bearer, http_client


async def concord(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"})
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode()


def access(credentials: Credentials) -> KafkaAccess:
    k = credentials.kafka
    return KafkaAccess(k.bootstrap, k.security_protocol, k.username, k.password, k.ssl_cafile, k.sasl_mechanism)


async def writes(producer: AIOKafkaProducer) -> bool:
    try:
        await asyncio.wait_for(producer.send_and_wait("ingress.water", b"rotation", key=b"rotation"), 30)
        return True
    except TopicAuthorizationFailedError:
        return False


async def connects(credentials: Credentials) -> bool:
    producer = AIOKafkaProducer(**access(credentials).aiokafka(), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(producer.start(), 60)
        return True
    except KafkaConnectionError:
        return False
    finally:
        await producer.stop()


async def http_status(url: str, path: str, token: str) -> int:
    async with http_client(base_url=url, timeout=30) as http:
        return (await http.get(path, headers=bearer(token))).status_code


@pytest_asyncio.fixture
async def two_water_credentials(stack: Settings) -> AsyncIterator[tuple[Credentials, Credentials]]:
    """Two new credentials for water (the stack's own, used by its service, are left alone)."""
    async with provisioner(stack) as admin:
        old, new = await admin.issue("water"), await admin.issue("water")
    yield old, new
    async with provisioner(stack) as admin:
        ids = [c.kafka.username.partition(".")[2] for c in (old, new)]
        await admin.revoke("water", ids)


async def test_rotation_keeps_the_old_credentials_working_until_they_are_revoked_then_they_fail_at_once(
    stack: Settings, exchange: AppProcesses, two_water_credentials: tuple[Credentials, Credentials]
) -> None:
    old, new = two_water_credentials
    assert old.department == new.department == "water"
    assert old.kafka.username != new.kafka.username and old.http_token != new.http_token
    desks = f"http://{stack.departments_host}:{stack.departments_port}"
    producer = AIOKafkaProducer(**access(old).aiokafka(), enable_idempotence=True)
    await producer.start()
    try:
        assert await writes(producer)  # the old credentials, connected before the new ones exist
        for token in (old.http_token, new.http_token):
            assert await http_status(stack.gateway_address, "/v1/whoami", token) == 200
            assert await http_status(desks, "/v1/departments/water/mode", token) == 200
        assert await connects(new)

        async with provisioner(stack) as admin:
            revoked = await admin.revoke("water", [old.kafka.username.partition(".")[2]])
        assert [r.kafka_user for r in revoked] == [old.kafka.username]

        assert not await writes(producer)  # the connection already open is refused at its next request
    finally:
        await producer.stop()
    assert not await connects(old) and await connects(new)
    assert await http_status(stack.gateway_address, "/v1/whoami", old.http_token) == 401
    assert await http_status(desks, "/v1/departments/water/mode", old.http_token) == 401
    assert await http_status(desks, "/v1/departments/water/mode", new.http_token) == 200


async def test_issue_prints_one_json_object_and_list_shows_no_secret(stack: Settings) -> None:
    code, out = await concord("credentials", "issue", "operator")
    assert code == 0, out
    issued = json.loads(out)
    assert set(issued) == {"department", "kafka", "http_token"}
    assert set(issued["kafka"]) == {"bootstrap", "security_protocol", "sasl_mechanism", "username", "password",
                                    "ssl_cafile"}
    assert issued["kafka"]["security_protocol"] == "SASL_SSL" and issued["kafka"]["sasl_mechanism"] == "SCRAM-SHA-512"
    code, out = await concord("credentials", "list", "operator")
    assert code == 0 and issued["kafka"]["username"] in out, out
    assert issued["kafka"]["password"] not in out and issued["http_token"] not in out
    assert issued["http_token"].partition(".")[2] not in out
    code, out = await concord("credentials", "revoke", "operator", "--id", issued["kafka"]["username"].split(".")[1])
    assert code == 0 and "revoked" in out, out
    code, out = await concord("credentials", "issue", "nosuchdept")
    assert code == 2 and "planning" in out and "operator" in out and "Traceback" not in out, out


async def test_acls_list_says_the_broker_holds_the_plan(stack: Settings) -> None:
    code, out = await concord("acls", "list", "planning")
    assert code == 0 and "ingress.planning" in out and "in line with the plan" in out, out
    assert "ingress.water" not in out


async def test_postgresql_asks_every_role_for_its_password(stack: Settings) -> None:
    for role in (stack.postgres_user, GATEWAY, "planning"):
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
            await asyncpg.connect(host="127.0.0.1", port=stack.postgres_port, user=role, database=stack.postgres_db,
                                  password="not-the-password")


async def test_each_component_owns_its_schema_and_reads_no_other(stack: Settings) -> None:
    admin = await asyncpg.connect(stack.admin_dsn)
    try:
        owners = dict(await admin.fetch(
            "SELECT n.nspname, r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner"
            " WHERE n.nspname IN ('gateway', 'bureau', 'planning', 'coordination')"))
        table_owners = {r["schemaname"]: r["owners"] for r in await admin.fetch(
            "SELECT schemaname, array_agg(DISTINCT tableowner) AS owners FROM pg_tables"
            " WHERE schemaname IN ('gateway', 'bureau', 'planning') GROUP BY schemaname")}
    finally:
        await admin.close()
    assert owners == {"gateway": "gateway", "bureau": "bureau", "planning": "planning", "coordination": "coordination"}
    assert table_owners == {"gateway": ["gateway"], "bureau": ["bureau"], "planning": ["planning"]}

    planning = await asyncpg.connect(stack.dsn("planning"))
    try:
        await planning.fetchval("SELECT count(*) FROM planning.inbox")
        for foreign in ("bureau.cases", "gateway.credentials", "water.inbox"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await planning.fetchval(f"SELECT count(*) FROM {foreign}")
    finally:
        await planning.close()

    reporter = await asyncpg.connect(stack.dsn(REPORTER))
    try:
        await reporter.fetchval("SELECT count(*) FROM bureau.cases")
        await reporter.fetchval("SELECT count(*) FROM gateway.agreement_figures")
        for statement in ("DELETE FROM bureau.cases", "SELECT count(*) FROM gateway.credentials",
                          "SELECT count(*) FROM gateway.agreements",
                          "CREATE TABLE bureau.mine (x int)"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reporter.execute(statement)
    finally:
        await reporter.close()
