"""The local stack: Apache Kafka (KRaft: one combined node, or a cluster of them, `--brokers 3`) and PostgreSQL,
run as plain processes, secured as a government deployment is.

Kafka comes from the official Maven Central artifacts listed in ``deploy/kafka/pom.xml``; Maven copies the
runtime classpath once into a cache folder that later runs reuse. Its client listener takes SASL/SCRAM-SHA-512
over TLS only, with a CA and a broker certificate the stack makes; the StandardAuthorizer allows what the
ACLs derived from the departments and contracts allow, and only the admin is a super user. PostgreSQL is
Debian's server, a cluster of our own in a data folder, with password (SCRAM) authentication and a role per
component. The secrets (CA, admin and role passwords, the local components' credentials) live in
``<stack>/secrets``, readable by their owner only. ``down`` stops only what ``up`` started (pid files).
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from base.clock import clock_file
from base.credentials import write_secret
from base.errors import Explained
from base.kafka import KafkaAccess, Replication
from base.settings import ADMIN, Settings
from contracts.topics import Topics
from deploy.pki import KEYSTORE, ensure_certificates

KAFKA_DIR = Path(__file__).parent / "kafka"
MAIN_CLASS = "kafka.Kafka"


class StackError(Explained, RuntimeError):
    """A problem the user must fix, said in one line."""


@dataclass(frozen=True)
class Prerequisite:
    what: str
    ok: bool
    install: str


def _java_major() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def postgres_bin() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    return candidates[-1].parent if candidates else None


# Loaded by the stack's PostgreSQL: what each role's statements cost, counted (`concord demo` prints statements a hop).
STATEMENT_STATISTICS = "pg_stat_statements"
POSTGRES_MISSING = "PostgreSQL server binaries are missing: install them with `apt-get install -y postgresql`"


def check_prerequisites() -> None:
    java = _java_major()
    checks = [
        Prerequisite("Java 17 or newer", java is not None and java >= 17,
                     "apt-get install -y openjdk-17-jre-headless"),
        Prerequisite("Maven", shutil.which("mvn") is not None, "apt-get install -y maven"),
    ]
    if postgres_bin() is None:
        raise StackError(POSTGRES_MISSING)
    for check in checks:
        if not check.ok:
            raise StackError(f"{check.what} is missing: install it with `{check.install}`")


def _pid_alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _runs(pid: int, main_class: str) -> bool:
    """Whether the process runs that main class (a process that has just started may not show its command
    line yet: it counts as running)."""
    if not _pid_alive(pid):
        return False
    cmdline = _cmdline(pid)
    return not cmdline or main_class in cmdline


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


async def answers(access: KafkaAccess, timeout_ms: int = 3000) -> bool:
    """Whether a broker answers a metadata request with this access (its TLS and SASL, when secured)."""
    from aiokafka.admin import AIOKafkaAdminClient  # local: the stack CLI should start fast

    admin = AIOKafkaAdminClient(**access.aiokafka(), request_timeout_ms=timeout_ms)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka makes one: 16 random bytes in URL-safe base64, never starting with a dash."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cluster_id


@dataclass(frozen=True)
class Quorum:
    """The KRaft cluster a node belongs to: each controller's node id and port, and the file that keeps the
    cluster's id (made once; every node's storage is formatted with it)."""

    controllers: tuple[tuple[int, int], ...]
    id_file: Path

    @property
    def voters(self) -> str:
        return ",".join(f"{node_id}@127.0.0.1:{port}" for node_id, port in self.controllers)

    @property
    def replication(self) -> Replication:
        return Replication.on(len(self.controllers))

    def cluster_id(self) -> str:
        """The cluster's id, made on the first call (which must not race another: `Stack.up` makes it before it
        formats its nodes at once)."""
        if not self.id_file.exists():
            self.id_file.parent.mkdir(parents=True, exist_ok=True)
            self.id_file.write_text(new_cluster_id())
        return self.id_file.read_text().strip()


class KafkaNode:
    """One Kafka node in KRaft mode, broker and controller combined: the stack's, secured, alone or one of a
    cluster (``quorum``: every node of it a controller); or the benchmark's throwaway plaintext node
    (``secured=False``, a folder and ports of its own)."""

    def __init__(self, settings: Settings, *, secured: bool = True, home: Path | None = None,
                 port: int | None = None, controller_port: int | None = None, node_id: int = 1,
                 quorum: Quorum | None = None) -> None:
        self.settings = settings
        self.secured = secured
        self.port = port or settings.kafka_port
        self.controller_port = controller_port or settings.kafka_controller_port
        self.node_id = node_id
        root = settings.stack_path
        pom = (KAFKA_DIR / "pom.xml").read_bytes()
        self.libs = root / "cache" / f"kafka-libs-{hashlib.sha256(pom).hexdigest()[:12]}"
        self.home = home or root / "kafka"
        self.quorum = quorum or Quorum(((node_id, self.controller_port),), self.home / "cluster-id")
        self.data = self.home / "data"
        self.config = self.home / "server.properties"
        self.pid_file = self.home / "kafka.pid"
        self.log_file = self.home / "kafka.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin(self) -> KafkaAccess:
        """The super user's access to this node alone: the stack's tooling only."""
        if not self.secured:
            return KafkaAccess(self.bootstrap)
        secrets_ = self.settings.secrets
        return KafkaAccess(self.bootstrap, "SASL_SSL", ADMIN, secrets_.kafka_admin_password(), str(secrets_.ca_file))

    def fetch_runtime(self) -> None:
        """The Kafka runtime's jars in the cache, fetched by Maven once. Stacks may share a cache (a test's cluster
        uses the session stack's): whoever comes second waits for the first one's fetch, under a lock on the file."""
        if (self.libs / ".complete").exists():
            return
        self.libs.mkdir(parents=True, exist_ok=True)
        with (self.libs.parent / f"{self.libs.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (self.libs / ".complete").exists():
                return
            result = subprocess.run(
                ["mvn", "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"), "dependency:copy-dependencies",
                 f"-DoutputDirectory={self.libs}", "-DincludeScope=runtime"],
                capture_output=True, text=True,
            )
            if result.returncode != 0:
                raise StackError("Maven could not fetch the Kafka runtime: "
                                 f"{result.stdout[-400:]}{result.stderr[-400:]}")
            (self.libs / ".complete").touch()

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java", f"-Xmx{self.settings.kafka_heap}", f"-Xms{self.settings.kafka_heap}",
            *shlex.split(self.settings.kafka_jvm_options),
            f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp", f"{self.libs}/*", main, *args,
        ]

    def write_config(self) -> None:
        template = (KAFKA_DIR / ("server.properties" if self.secured else "plaintext.properties")).read_text()
        self.home.mkdir(parents=True, exist_ok=True)
        replication = self.quorum.replication
        values = {"node_id": self.node_id, "voters": self.quorum.voters, "port": self.port,
                  "controller_port": self.controller_port, "data": self.data,
                  "replicas": replication.factor, "min_isr": replication.min_insync}
        if self.secured:
            store = self.settings.secrets
            values |= {"bind": "127.0.0.1", "advertised": "127.0.0.1", "keystore": store.root / KEYSTORE,
                       "truststore": store.ca_file, "admin_password": self.admin.password}
        write_secret(self.config, template.format(**values))  # it holds the admin's password

    def format_storage(self) -> None:
        if (self.data / "meta.properties").exists():
            return
        scram = ["--add-scram", f"SCRAM-SHA-512=[name={ADMIN},password={self.admin.password}]"] if self.secured else []
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", self.quorum.cluster_id(), "-c", str(self.config),
                       *scram),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"Kafka storage format failed: {result.stdout[-300:]}{result.stderr[-300:]}")

    def pid(self) -> int | None:
        if not self.pid_file.exists():
            return None
        pid = int(self.pid_file.read_text().strip() or 0)
        return pid if pid and _runs(pid, MAIN_CLASS) else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> None:
        """Start the node (formatting its storage the first time); `wait_ready` waits for it to answer."""
        if self.running():
            return
        for port in (self.port, self.controller_port):
            if port_open(port):
                raise StackError(f"port {port} is taken by a process this stack did not start; stop it or set "
                                 "CONCORD_KAFKA_PORT and CONCORD_KAFKA_CONTROLLER_PORT")
        self.fetch_runtime()
        self.write_config()
        self.format_storage()
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                self._java(MAIN_CLASS, str(self.config)), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Return once the broker answers the admin's metadata request (over SASL_SSL when secured). A node of a
        cluster answers once a majority of its controllers runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise StackError(f"Kafka exited during start; see {self.log_file}")
            if port_open(self.port) and asyncio.run(answers(self.admin)):
                return
            time.sleep(0.5)
        raise StackError(f"Kafka did not answer within {timeout:.0f}s; see {self.log_file}")

    def stop(self) -> None:
        """A clean shutdown (SIGKILL if it takes more than 30 s)."""
        stop_nodes([self])

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed, nothing handed over."""
        stop_nodes([self], signal.SIGKILL)


STOP_SECONDS = 30.0


def stop_nodes(nodes: Sequence[KafkaNode], sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal every node at once, then wait for each to exit (SIGKILL after STOP_SECONDS): stopped one after
    the other, the last nodes of a cluster would wait for a quorum of controllers that is already gone."""
    running = [(node, pid) for node in nodes if (pid := node.pid()) is not None]
    for _, pid in running:
        os.killpg(pid, sig)
    deadline = time.monotonic() + STOP_SECONDS
    for node, pid in running:
        # its main thread may show as exited while its other threads still hold the port: wait for both
        while (_pid_alive(pid) or port_open(node.port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    for node in nodes:
        node.pid_file.unlink(missing_ok=True)


def kafka_nodes(settings: Settings) -> list[KafkaNode]:
    """The local stack's Kafka nodes (``settings.brokers`` of them): one in <stack>/kafka; or a cluster, each
    node broker and controller, in <stack>/kafka/node-<id>, on the ports ``settings.kafka_ports`` derives."""
    ports = settings.kafka_ports
    if len(ports) == 1:
        return [KafkaNode(settings)]
    root = settings.stack_path / "kafka"
    quorum = Quorum(tuple((i, controller) for i, (_, controller) in enumerate(ports, 1)), root / "cluster-id")
    return [KafkaNode(settings, home=root / f"node-{i}", port=port, controller_port=controller, node_id=i,
                      quorum=quorum)
            for i, (port, controller) in enumerate(ports, 1)]


class PostgresCluster:
    """Our own PostgreSQL cluster in a data folder, on its own port, with password (SCRAM) authentication for
    every connection, local or TCP."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = self._home(settings.stack_path)
        self.data = self.home / "data"
        self.log_file = self.home / "postgres.log"

    def _bin(self, name: str) -> str:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise StackError(POSTGRES_MISSING)
        return str(bin_dir / name)

    @staticmethod
    def _home(stack: Path) -> Path:
        """The cluster's folder: in the stack's, unless the stack runs as root from a folder the `postgres` user
        cannot reach (a checkout under /root, say); then in that user's home, one folder per stack."""
        home = stack / "postgres"
        if os.geteuid() != 0:
            return home
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            return home  # _as_owner says what to install
        stack.mkdir(parents=True, exist_ok=True)
        if subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(stack)]).returncode == 0:
            return home
        digest = hashlib.sha256(str(stack.resolve()).encode()).hexdigest()[:12]
        elsewhere = Path(owner.pw_dir) / f"concord-{digest}"
        if not Path(owner.pw_dir).is_dir():
            raise StackError(f"PostgreSQL runs as `postgres`, which cannot reach {stack} and has no home folder "
                             f"({owner.pw_dir}): set CONCORD_STACK_DIR to a folder it can reach")
        return elsewhere

    def _as_owner(self, args: Sequence[str]) -> list[str]:
        """PostgreSQL refuses to run as root: run its tools as the unprivileged `postgres` user then."""
        if os.geteuid() != 0:
            return list(args)
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise StackError("PostgreSQL will not run as root and there is no `postgres` user to run it: "
                             "`apt-get install -y postgresql` creates one") from exc
        return ["runuser", "-u", "postgres", "--", *args]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for p in [path, *path.rglob("*")]:
                os.chown(p, entry.pw_uid, entry.pw_gid)

    def pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text().splitlines()[0])
        return pid if _pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(mode=0o700, exist_ok=True)
        password_file = self.home / "superuser.password"  # read by initdb, then removed
        password = self.settings.secrets.postgres_password(self.settings.postgres_user)
        assert password is not None, "ensure_secrets() first"
        write_secret(password_file, password)
        self._chown(self.home)
        try:
            result = subprocess.run(
                self._as_owner([self._bin("initdb"), "-D", str(self.data), "-U", self.settings.postgres_user,
                                "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8",
                                "--locale=C.UTF-8"]),
                capture_output=True, text=True,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(f"initdb failed: {result.stderr.strip()[-400:]}")

    def start(self) -> None:
        if self.running():
            return
        if port_open(self.settings.postgres_port):
            raise StackError(
                f"port {self.settings.postgres_port} is taken by a process this stack did not start; "
                "stop it or set CONCORD_POSTGRES_PORT"
            )
        self.init()
        self.log_file.touch()
        self._chown(self.log_file)
        options = (f"-p {self.settings.postgres_port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.data} -c max_connections=200 -c fsync=on "
                   f"-c shared_preload_libraries={STATEMENT_STATISTICS} -c track_commit_timestamp=on")
        result = subprocess.run(
            self._as_owner([self._bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_file),
                            "-o", options, "-w", "-t", "60", "start"]),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"PostgreSQL did not start: {result.stderr.strip()[-300:]}; see {self.log_file}")

    def create_database(self) -> None:
        import asyncpg

        s = self.settings

        async def create() -> None:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=s.postgres_port, user=s.postgres_user, database="postgres",
                password=s.secrets.postgres_password(s.postgres_user),
            )
            try:
                if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", s.postgres_db):
                    await connection.execute(f'CREATE DATABASE "{s.postgres_db}"')
            finally:
                await connection.close()

        asyncio.run(create())

    def stop(self) -> None:
        if not self.running():
            return
        subprocess.run(
            self._as_owner([self._bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
            capture_output=True, text=True,
        )


def ensure_secrets(settings: Settings, hosts: Sequence[str] = ("localhost", "127.0.0.1")) -> None:
    """A deployment's secrets, made once: the broker admin's password, a password per PostgreSQL role, the
    CA with a broker certificate for the names clients dial (``hosts``), the audit keeper's signing key with
    its public key (the anchors'; never in the database), and the key of the gateway's keyed-hash masks."""
    from deploy.migrate import ROLES
    from gateway.audit.anchor import new_key_pair, public_pem

    store = settings.secrets
    store.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not store.admin_file.exists():
        write_secret(store.admin_file, json.dumps({"username": ADMIN, "password": secrets.token_urlsafe(32)}))
    passwords = store.postgres_passwords()
    missing = [role for role in (settings.postgres_user, *ROLES) if role not in passwords]
    if missing:
        passwords |= {role: secrets.token_urlsafe(24) for role in missing}
        write_secret(store.postgres_file, json.dumps(passwords, indent=2))
    if not store.anchor_key_file.exists():
        private, public = new_key_pair()
        write_secret(store.anchor_key_file, private)
        write_secret(store.anchor_public_file, public)
    elif not store.anchor_public_file.exists():
        write_secret(store.anchor_public_file, public_pem(store.anchor_key_file.read_text()))
    if not store.mask_key_file.exists():
        write_secret(store.mask_key_file, secrets.token_hex(32))
    ensure_certificates(store.root, list(hosts))


def settled_size(settings: Settings) -> int:
    """How many Kafka nodes the stack runs: as many as its first `up` recorded (a single node's data from before
    the record counts as one), or, on a new stack, as many as asked (one by default). Another size than the one
    recorded is refused until the stack is reset; so are ports that collide."""
    single_before = (settings.stack_path / "kafka" / "data" / "meta.properties").exists()
    recorded = settings.brokers if settings.brokers_file.exists() else 1 if single_before else None
    wanted = settings.kafka_brokers or recorded or 1
    if recorded is not None and wanted != recorded:
        raise StackError(f"this stack has {recorded} Kafka node(s), not {wanted}: `concord stack reset` wipes it, "
                         "then `concord stack up --brokers N` makes a new one of that size")
    ports = [port for node in settings.model_copy(update={"kafka_brokers": wanted}).kafka_ports for port in node]
    if len(set(ports)) != len(ports):
        raise StackError(f"the Kafka nodes' ports collide ({ports}): node i takes CONCORD_KAFKA_PORT + 2i and "
                         "CONCORD_KAFKA_CONTROLLER_PORT + 2i, so make the two differ by an odd number")
    return wanted


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nodes = kafka_nodes(settings)
        self.postgres = PostgresCluster(settings)

    def up(self) -> None:
        check_prerequisites()
        size = settled_size(self.settings)
        self.settings.brokers_file.parent.mkdir(parents=True, exist_ok=True)
        self.settings.brokers_file.write_text(f"{size}\n")  # `down`, `status`, `reset` and clients read it
        if any((n.data / "meta.properties").exists() for n in self.nodes) \
                and not self.settings.secrets.admin_file.exists():
            raise StackError("this stack's data predates the secured broker (no admin secret): "
                             "wipe it with `concord stack reset`, then `concord stack up`")
        ensure_secrets(self.settings)
        # PostgreSQL and every Kafka node start at once (formatting a node's storage is a JVM start of its own).
        with ThreadPoolExecutor(len(self.nodes) + 1) as starting:
            database = starting.submit(self._database)
            self.nodes[0].fetch_runtime()
            if not all((node.data / "meta.properties").exists() for node in self.nodes):
                self.nodes[0].quorum.cluster_id()  # one id for every node, made before they are formatted
            list(starting.map(KafkaNode.start, self.nodes))
            database.result()
        for node in self.nodes:
            node.wait_ready()
        provision(self.settings, topics=False)

    def _database(self) -> None:
        self.postgres.start()
        self.postgres.create_database()

    def down(self) -> None:
        stop_nodes(self.nodes)
        self.postgres.stop()

    def reset(self) -> None:
        self.down()
        for folder in (self.settings.stack_path / "kafka", self.postgres.home, self.settings.secrets.root):
            shutil.rmtree(folder, ignore_errors=True)
        clock_file(self.settings).unlink(missing_ok=True)  # the time it kept was the wiped data's

    def status(self) -> dict[str, str]:
        s = self.settings
        states: dict[str, str] = {}
        for node in self.nodes:
            pid = node.pid()
            role = "" if len(self.nodes) == 1 else f"node {node.node_id} of {len(self.nodes)}, broker and controller, "
            states["kafka" if len(self.nodes) == 1 else f"kafka-{node.node_id}"] = \
                f"running (pid {pid}, {role}{node.bootstrap}, SASL_SSL with SCRAM-SHA-512, ACLs)" if pid else "stopped"
        pg_pid = self.postgres.pid()
        return states | {
            "postgres": f"running (pid {pg_pid}, 127.0.0.1:{s.postgres_port}/{s.postgres_db}, scram-sha-256, "
                        f"a role per component; data in {self.postgres.data})" if pg_pid else "stopped",
            "secrets": str(s.secrets.root),
        }


async def provision_own_credentials(settings: Settings) -> list[str]:
    """Credentials for every principal the deployment runs itself (each department, the gateway, the operator),
    in its secrets folder; those still in force are kept. Returns the principals issued new ones."""
    from base.credentials import CredentialsMissing
    from contracts.departments import PRINCIPALS
    from gateway.provisioning import provisioner

    store = settings.secrets
    issued: list[str] = []
    async with provisioner(settings) as admin:
        for principal in PRINCIPALS:
            try:
                if await admin.in_force(store.credentials(principal)):
                    continue
            except (CredentialsMissing, ValueError):
                pass  # none yet, or unreadable: issue new ones
            store.save_credentials(await admin.issue(principal))
            issued.append(principal)
    return issued


def provision(settings: Settings, topics: bool = True) -> None:
    """What a running broker and database need before the exchange starts (all idempotent): the roles and
    migrations, credentials for every principal this deployment runs, and the exchange's topics with their ACLs."""
    from deploy.migrate import migrate

    migrate(settings.admin_dsn, settings.secrets.postgres_passwords(), settings.postgres_db)
    asyncio.run(provision_own_credentials(settings))
    if topics:
        asyncio.run(ensure_exchange(settings, settings.topics))


def ready(settings: Settings) -> None:
    """The stack up, its migrations applied, the local credentials issued, the exchange's topics there and the
    ACLs in place (all idempotent)."""
    Stack(settings).up()
    asyncio.run(ensure_exchange(settings, settings.topics))


async def ensure_exchange(settings: Settings, topics: Topics) -> dict[str, str]:
    """A namespace's topics, and the ACLs of every namespace (as the admin)."""
    from gateway.provisioning import provisioner

    async with provisioner(settings) as admin:
        return await admin.ensure_topics(topics)


async def remove_exchange(settings: Settings, topics: Topics, reconcile: bool = True) -> None:
    """A namespace's topics deleted (as the admin), and then, unless told not to (a broker without ACLs), the
    ACLs brought back in line with what is left."""
    from aiokafka.admin import AIOKafkaAdminClient

    from gateway.provisioning import provisioner
    from gateway.topics import existing_topics

    access = settings.kafka(ADMIN)
    mine = [t for t in await existing_topics(access) if t.startswith(f"{topics.namespace}.")]
    client = AIOKafkaAdminClient(**access.aiokafka())
    await client.start()
    try:
        await client.delete_topics(mine)
    finally:
        await client.close()
    if reconcile:
        async with provisioner(settings) as admin:
            await admin.reconcile()
