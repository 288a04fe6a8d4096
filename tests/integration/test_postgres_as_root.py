"""The stack's PostgreSQL from a checkout its `postgres` user cannot reach: run as root (as CI and containers
do) from a private folder, the cluster is kept in that user's home instead, and starts, answers and stops."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import asyncpg
import pytest

from base.settings import Settings
from deploy.stack import PostgresCluster, ensure_secrets

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")


async def test_a_checkout_in_a_private_folder_gets_a_cluster_the_postgres_user_can_reach(
        stack: Settings, tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    settings = Settings(stack_dir=private / "checkout" / ".stack", postgres_port=stack.postgres_port + 200)
    ensure_secrets(settings)
    cluster = PostgresCluster(settings)
    assert not cluster.home.is_relative_to(private)
    try:
        await asyncio.to_thread(cluster.start)
        connection = await asyncpg.connect(host="127.0.0.1", port=settings.postgres_port, database="postgres",
                                           user=settings.postgres_user,
                                           password=settings.secrets.postgres_password(settings.postgres_user))
        assert await connection.fetchval("SELECT current_user") == settings.postgres_user
        await connection.close()
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(cluster.home, ignore_errors=True)
    assert not cluster.running()
