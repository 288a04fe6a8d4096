"""The router's JVM peer in the benchmark: the same route as a Kafka Streams application (``bench/peer/``,
kafka-streams 4.1.1, exactly_once_v2, networknt's JSON Schema validator), fed the same records on the same broker,
measured the same way as the router: throughput over a preload from the first commit to the last (``timed``), and
latency from an ingress produce at a fixed rate to a read_committed deliver consume (``latency``).

Per record it does the router's work (gateway/routing.py): envelope, contract, sender and schema checks; the
shared record without not-shared fields; one delivery per consumer cut to the unconditional fields (the benchmark
has no agreements, so conditional fields are not delivered); the audit entry; or the dead letter, the sender's
notice and the audit entry. It does not check duplicate ids (the router's is in PostgreSQL) nor read agreements.
Its contracts are the JSON Schemas `concord contracts docs` writes.

The peer gets a copy of the preload (the same events, made by the same function) in a namespace of its own
(``<run>-peer``), so that its outputs and its latency run are its own. Throughput: a fresh process over the preload,
timed from its first commit to its last as the router's is (commit.interval.ms 100, Streams' default under
exactly_once_v2), so a JVM's warm-up is inside the figure. Latency: the same application id again, committing every
20 ms, first warmed by a burst of records it routes unmeasured (a cold JVM answers in seconds, not milliseconds).

On the secured stack it connects as the gateway's principal (SCRAM-SHA-512 over TLS, the stack's CA as a PEM trust
store), with an application id under ``gateway.``: the gateway's ACLs give it its consumer group and transactional
ids (Streams names them after the application id), and the topology has no internal topics. No ACL was added.

Maven builds it once (``mvn -q -B package``) into ``<stack>/cache/concord-peer-<hash of the pom and sources>``;
later runs reuse the jar and its libraries, and need no network."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from base.credentials import write_secret
from base.errors import Explained
from base.kafka import KafkaAccess
from base.settings import ADMIN, Settings
from bench.measure import Consumption, Processes, Target, latency, percentile, preload, provision, remove, timed
from contracts.departments import GATEWAY, SERVICE_DEPARTMENTS
from contracts.topics import Topics

PEER_DIR = Path(__file__).parent / "peer"
JAR = "concord-peer.jar"
COMMIT_INTERVAL_MS = 100  # Streams' default under exactly_once_v2: outputs become visible at each commit
LATENCY_COMMIT_INTERVAL_MS = 20  # for the latency run (at 100 ms, p50 is about 110 ms warm; at 20 ms, about 60)
WARM_UP_EVENTS = 20_000
HEAP = "512m"
RUNNING = b"concord-peer: RUNNING"  # what it logs once Streams has joined its group and been given its tasks
START_SECONDS = 180.0


class PeerError(Explained, RuntimeError):
    """The peer could not be built or run; the message says why and what to do."""


@dataclass(frozen=True)
class PeerFigures:
    events_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latencies: list[float]  # ms, sorted


def sources() -> list[Path]:
    """What the build depends on: the pom and the Java sources."""
    return [PEER_DIR / "pom.xml", *sorted((PEER_DIR / "src").rglob("*.java"))]


def build(settings: Settings) -> Path:
    """The peer's runnable jar (its libraries beside it in ``lib/``), built by Maven once per content of the pom
    and sources into the stack's cache folder (builds of other contents are removed). A build goes to a folder of
    its own and is renamed into place, so that two processes building at once cannot leave a half-built cache."""
    digest = hashlib.sha256()
    for path in sources():
        digest.update(str(path.relative_to(PEER_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    home = settings.stack_path / "cache" / f"concord-peer-{digest.hexdigest()[:12]}"
    if (home / ".complete").exists():
        return home / JAR
    for tool, package in (("mvn", "maven"), ("javac", "openjdk-17-jdk-headless")):
        if shutil.which(tool) is None:
            raise PeerError(f"{tool} is missing to build the benchmark's peer: install it with "
                            f"`apt-get install -y {package}`")
    staging = home.with_name(f"{home.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(["mvn", "-q", "-B", "-f", str(PEER_DIR / "pom.xml"), "package",
                             f"-Dpeer.build.dir={staging}"], capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise PeerError(f"Maven could not build the peer: {result.stdout[-600:]}{result.stderr[-400:]}")
    (staging / ".complete").touch()
    try:
        staging.rename(home)
    except OSError:  # another process built it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    for old in home.parent.glob("concord-peer-*"):  # builds of other sources (a hundred MB each)
        if old != home and (old / ".complete").exists():
            shutil.rmtree(old, ignore_errors=True)
    return home / JAR


def write_contracts(folder: Path) -> Path:
    """Every contract version's JSON Schema with its x-contract, as `concord contracts docs FOLDER` writes them."""
    from gateway.contracts_cli import docs

    docs(folder)
    return folder


def write_config(path: Path, access: KafkaAccess, application_id: str, topics: Topics, contracts: Path,
                 commit_interval_ms: int = COMMIT_INTERVAL_MS, mask_key: bytes | None = None) -> Path:
    """The peer's properties file (it holds the principal's password and the gateway's mask key: readable by its
    owner only). Without a mask key the peer withholds keyed hashes, as the router's route does."""
    values = {
        "application.id": application_id,
        "bootstrap.servers": access.bootstrap,
        "commit.interval.ms": str(commit_interval_ms),
        "security.protocol": access.security_protocol,
        "peer.namespace": topics.namespace,
        "peer.ingress": ",".join(SERVICE_DEPARTMENTS),  # the router reads every department's ingress too
        "peer.contracts": str(contracts),
    }
    if mask_key:
        values["peer.mask.key"] = mask_key.hex()
    if access.security_protocol.startswith("SASL"):
        values["sasl.mechanism"] = access.sasl_mechanism
        values["sasl.jaas.config"] = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                                      f'username="{access.username}" password="{access.password}";')
    if access.cafile and "SSL" in access.security_protocol:
        values |= {"ssl.truststore.type": "PEM", "ssl.truststore.location": access.cafile}
    lines = [f"{name}={value.replace(chr(92), chr(92) * 2)}" for name, value in values.items()]
    write_secret(path, "\n".join(lines) + "\n")
    return path


def command(jar: Path, config: Path, jvm_options: Sequence[str] = ()) -> list[str]:
    return ["java", f"-Xmx{HEAP}", *jvm_options, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-jar", str(jar),
            str(config)]


def wait_routed(target: Target, peer: Processes, group: str, topic: str, timeout: float = 300.0) -> None:
    """Return once the peer's group has committed past every record in the topic."""

    async def routed() -> None:
        async with Consumption(target.kafka(ADMIN), group, topic) as consumption:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                done, total = await consumption.consumed()
                if done >= total:
                    return
                peer.check()
                await asyncio.sleep(0.2)
        raise PeerError(f"the peer did not route {topic} within {timeout:.0f}s; see {peer.log_path}")

    asyncio.run(routed())


def measure_peer(target: Target, run: str, events: int, rate: int, seconds: int) -> PeerFigures:
    """The peer's throughput over ``events`` preloaded records and its latency at ``rate`` events/s for
    ``seconds``, on the target's broker, in the namespace ``<run>-peer``."""
    s = target.settings
    topics = Topics(f"{run}-peer")
    asyncio.run(provision(target, topics, []))
    source = topics.ingress("planning")
    asyncio.run(preload(target.kafka("planning"), source, events, run))
    jar = build(s)
    folder = s.stack_path / "bench" / "peer"
    contracts = write_contracts(folder / "contracts")
    application_id = f"{GATEWAY}.{topics.namespace}"  # its group and transactional ids: under the gateway's ACLs
    access = target.kafka(GATEWAY)
    key = s.secrets.mask_key()  # the router under measurement has the stack's key: the peer does the same work
    config = write_config(folder / f"{target.name}.properties", access, application_id, topics, contracts,
                          mask_key=key)
    routed = timed("peer", target, application_id, source, [command(jar, config)], {})

    # The same application id again, so it resumes after the preload; committing more often, as latency wants.
    # A JVM compiles its hot code in its first seconds (3 to 4 s of latency at first on this machine, then about
    # 0.1 s): a burst of records it routes warms it, before the warm-up at the measured rate that every pipe has
    # (bench.measure.latency).
    config = write_config(folder / f"{target.name}-latency.properties", access, application_id, topics, contracts,
                          LATENCY_COMMIT_INTERVAL_MS, mask_key=key)
    with Processes(target, "peer-latency", [command(jar, config)], {}) as peer:
        peer.wait_for(RUNNING, START_SECONDS)
        asyncio.run(preload(target.kafka("planning"), source, WARM_UP_EVENTS, f"{run}-warm"))
        wait_routed(target, peer, application_id, source)
        latencies = asyncio.run(latency(target, topics, rate, seconds, run))
    asyncio.run(remove(target, topics))
    return PeerFigures(round(routed.rate), percentile(latencies, 0.5), percentile(latencies, 0.99), latencies)
