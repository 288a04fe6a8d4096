"""Configuration from environment variables (prefix ``CONCORD_``), with defaults for the local stack."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from base.credentials import Credentials, CredentialsMissing, Secrets
from base.kafka import KafkaAccess, Replication
from contracts.topics import Topics

KafkaSecurity = Literal["SASL_SSL", "PLAINTEXT"]
LogFormat = Literal["text", "json"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONCORD_", extra="ignore")

    # Where clients connect. Left empty, they point at the local stack's ports below.
    kafka_bootstrap: str = ""
    database_url: str = ""  # the server and database; each component connects as its own role

    # The local stack: folders and ports.
    stack_dir: Path = Path(".stack")
    kafka_port: int = 19092  # the first Kafka node's client port; node i (from 0) takes kafka_port + 2i
    kafka_controller_port: int = 19093  # and its controller port kafka_controller_port + 2i
    kafka_brokers: int | None = Field(default=None, ge=1)  # Kafka nodes, each broker and controller; see brokers
    kafka_heap: str = "512m"
    # More options for the broker's JVM, as a shell would split them. "-XX:TieredStopAtLevel=1" (the three-broker
    # cluster of tests/integration/test_cluster.py) starts a broker in about half the time, but with no optimising
    # compiler it moves bulk data a few times slower (the router fuzz test: 129 s against 30): the stack and the
    # demo keep the JVM's defaults.
    kafka_jvm_options: str = ""
    postgres_port: int = 15432
    postgres_user: str = "concord"  # the cluster's superuser: migrations, roles and stack tooling only
    postgres_db: str = "concord"

    # The trust boundary. Every client of the broker authenticates with SCRAM-SHA-512 over TLS; PLAINTEXT
    # exists only for the benchmark's throwaway node, which measures what TLS costs.
    kafka_security: KafkaSecurity = "SASL_SSL"
    secrets_dir: Path | None = None  # default: <stack_dir>/secrets (the CA, the admin's and the roles' secrets)
    credentials_dir: Path | None = None  # default: <secrets_dir>/credentials, one <principal>.json each

    # HTTP entry points: where each API listens, and (when that is not where others reach it, as in Docker)
    # the gateway's address for the services that check tokens with it.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8400
    gateway_url: str = ""
    bureau_host: str = "127.0.0.1"
    bureau_port: int = 8401
    http_max_body_bytes: int = 256 * 1024  # the bureau's and the desks' APIs; the gateway takes events too

    # Topic names: empty for the exchange itself; a namespace keeps a benchmark or a second exchange apart.
    topic_namespace: str = ""

    # Gateway routing.
    max_payload_bytes: int = 1024 * 1024
    router_batch_records: int = 1000
    # How long the router, having taken what its consumer fetched while a transaction committed, waits for what the
    # broker received after that fetch (Router._fetched_meanwhile): a fetch's round trip, and a little more.
    router_refetch_ms: int = 3
    router_group: str = "gateway.router"
    # A router that has records to route and has committed none for this long is stuck (it rewinds the same batch,
    # say): its liveness probe (/healthz) fails, so that its supervisor restarts it.
    router_stall_seconds: float = 30.0
    ingest_verdict_seconds: float = 5.0  # how long POST /v1/events waits for the router's verdict before a 202

    # A simulated clock given in the environment (all three, the same in every process), which overrides the one
    # the stack records (`concord clock set`): simulated time was clock_start at the real epoch second
    # clock_anchor, and runs clock_speed times faster than real time.
    clock_start: datetime | None = None
    clock_speed: float | None = None
    clock_anchor: float | None = None

    # Departments' response times are drawn around each one's median; this scales them all (tests use less).
    response_scale: float = 1.0
    departments_host: str = "127.0.0.1"
    departments_port: int = 8402

    # How the processes log: text lines, or one JSON object a line (with trace and span ids when tracing is on).
    log_format: LogFormat = "text"

    @property
    def brokers_file(self) -> Path:
        """Where the local stack records how many Kafka nodes it has (written by its first `up`)."""
        return self.stack_path / "kafka" / "brokers"

    @property
    def brokers(self) -> int:
        """How many Kafka nodes the local stack runs: as many as it was first brought up with, else
        CONCORD_KAFKA_BROKERS (`concord stack up --brokers N`), else one."""
        try:
            return int(self.brokers_file.read_text())
        except (OSError, ValueError):
            return self.kafka_brokers or 1

    @property
    def kafka_ports(self) -> list[tuple[int, int]]:
        """Each local Kafka node's client port and controller port."""
        return [(self.kafka_port + 2 * i, self.kafka_controller_port + 2 * i) for i in range(self.brokers)]

    @property
    def bootstrap(self) -> str:
        """Where clients connect: every node of the local stack (any of them will do while the others are down)."""
        return self.kafka_bootstrap or ",".join(f"127.0.0.1:{port}" for port, _ in self.kafka_ports)

    @property
    def replication(self) -> Replication:
        """The exchange's topics' replication on this deployment's cluster."""
        return Replication.on(self.brokers)

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_namespace)

    @property
    def stack_path(self) -> Path:
        return self.stack_dir.resolve()

    @property
    def secrets(self) -> Secrets:
        return Secrets((self.secrets_dir or self.stack_path / "secrets").resolve(),
                       self.credentials_dir.resolve() if self.credentials_dir else None)

    @property
    def gateway_address(self) -> str:
        return self.gateway_url or f"http://{self.gateway_host}:{self.gateway_port}"

    def credentials(self, principal: str) -> Credentials:
        """A principal's credentials, as ``concord credentials issue`` printed them."""
        return self.secrets.credentials(principal)

    def kafka(self, principal: str) -> KafkaAccess:
        """How a principal reaches the broker. ``admin`` is the stack's own super user (tooling only)."""
        if self.kafka_security == "PLAINTEXT":
            return KafkaAccess(self.bootstrap)
        if principal == ADMIN:
            password = self.secrets.kafka_admin_password()
            return KafkaAccess(self.bootstrap, "SASL_SSL", ADMIN, password, str(self.secrets.ca_file))
        access = self.credentials(principal).kafka
        return KafkaAccess(self.kafka_bootstrap or access.bootstrap, access.security_protocol, access.username,
                           access.password, access.ssl_cafile, access.sasl_mechanism)

    def dsn(self, role: str) -> str:
        """Where a component's PostgreSQL role connects: the server of ``database_url`` (or the local stack),
        as that role, with its password from the secrets (when they hold one)."""
        base = urlsplit(self.database_url or f"postgresql://127.0.0.1:{self.postgres_port}/{self.postgres_db}")
        password = self.secrets.postgres_password(role)
        if password is None:
            if base.username:
                return urlunsplit(base)  # a complete DSN of the user's own
            raise CredentialsMissing(f"no PostgreSQL password for role {role!r} in {self.secrets.postgres_file}")
        host = base.hostname or "127.0.0.1"
        netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}" + (f":{base.port}" if base.port else "")
        return urlunsplit((base.scheme, netloc, base.path, base.query, base.fragment))

    @property
    def admin_dsn(self) -> str:
        return self.dsn(self.postgres_user)

    @classmethod
    def from_environment(cls) -> Settings:
        """A process's or command's settings, read at its entry point and passed down from there."""
        return cls()


ADMIN = "admin"  # the broker's super user: the stack's tooling (topics, ACLs, credentials), never a component
REPORTER = "reporter"  # the PostgreSQL role the efficacy report reads through (read-only)

