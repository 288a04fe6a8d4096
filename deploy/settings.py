"""Configuration from environment variables (prefix ``CONCORD_``), with defaults for the local stack."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import Topics


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONCORD_", extra="ignore")

    # Where clients connect. Left empty, they point at the local stack's ports below.
    kafka_bootstrap: str = ""
    database_url: str = ""

    # The local stack: folders and ports.
    stack_dir: Path = Path(".stack")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap: str = "512m"
    postgres_port: int = 15432
    postgres_user: str = "concord"
    postgres_db: str = "concord"

    # HTTP entry points.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8400
    bureau_host: str = "127.0.0.1"
    bureau_port: int = 8401

    # Topic names: empty for the exchange itself; a namespace keeps a benchmark or a second exchange apart.
    topic_namespace: str = ""

    # Gateway routing.
    max_payload_bytes: int = 1024 * 1024
    router_batch_records: int = 1000
    router_group: str = "concord-router"

    # The shared simulated clock: a start instant and a speed factor (simulated seconds per real second).
    clock_start: datetime | None = None
    clock_speed: float = 1.0
    clock_anchor: float | None = None  # the real epoch second at which simulated time was clock_start

    # Departments' response times are drawn around each one's median; this scales them all (tests use less).
    response_scale: float = 1.0
    departments_host: str = "127.0.0.1"
    departments_port: int = 8402

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def dsn(self) -> str:
        return self.database_url or (
            f"postgresql://{self.postgres_user}@127.0.0.1:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_namespace)

    @property
    def stack_path(self) -> Path:
        return self.stack_dir.resolve()


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
