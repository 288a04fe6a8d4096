"""The router's benchmark (`make bench`): throughput against a raw aiokafka pipe of the same records on the same
broker, with one router process and with two in one group; end-to-end latency at a fixed rate (ingress produce
to a read_committed deliver consume) beside the floor of Kafka transactions (a transactional pipe that copies
each record and does nothing else, and the same pipe writing each record three times, as many records as the
router writes: how fast this client could move the router's output with no routing at all), the same two on
confluent-kafka, and the router's own Python work for one event with no I/O (bench/routing.py: how fast one router
process could route were Kafka free); and the same route as a Kafka Streams application (bench/peer.py) measured the
same way; and a department's subscriber at a quiet pace, produce to handler, on the kit's consumer and on
FastStream's own (bench/subscriber.py). Prints a table, writes ``<stack>/bench/bench.json`` and PNG plots beside it.

Everything is measured on the secured stack (SASL/SCRAM-SHA-512 over TLS, ACLs; the router as the gateway's
principal, events sent as planning's) and, unless told not to, again on a throwaway plaintext node started for
the purpose, so that what the trust boundary costs is measured, not guessed.

The router does everything it does in production: envelope, sender and schema checks, duplicate ids in
PostgreSQL, projection per consumer, the shared record, the delivery, the audit entry, all in Kafka
transactions with the input offsets. The raw pipe copies each record once and commits offsets."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import typer
from rich.table import Table

from base.settings import ADMIN, Settings
from bench.measure import Processes, Target, console, latency, percentile, preload, provision, remove, timed
from bench.peer import measure_peer
from bench.plots import latency_cdf, throughput
from bench.routing import routing_us_per_event
from bench.subscriber import RATE as SUBSCRIBER_RATE
from bench.subscriber import handler_waits
from contracts.departments import GATEWAY
from contracts.topics import Topics
from deploy.stack import KafkaNode, Stack
from gateway.topics import DAY_MS, TopicSpec

PLAINTEXT_PORT_OFFSET = 100  # the throwaway node's ports: the stack's (CONCORD_KAFKA_PORT, …) + 100
READY = b"assigned"  # what the router and the pipe log once their group has given them partitions


@dataclass(frozen=True)
class Figures:
    raw_events_per_s: float
    router_events_per_s: float
    router_ratio: float  # router / raw
    routers_2_events_per_s: float  # two router processes in one group
    routers_2_scaling: float  # two / one
    peer_events_per_s: float  # the Kafka Streams peer (bench/peer.py): the same route, exactly_once_v2
    latency_rate_per_s: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_samples: int
    eos_pipe_events_per_s: float  # a transactional copy pipe and nothing else (aiokafka, as the router)
    eos_pipe_latency_p50_ms: float  # the floor of transactions here
    eos_pipe_latency_p99_ms: float
    eos_pipe_3_events_per_s: float  # the same pipe writing each input three times: the router's output volume
    confluent_pipe_events_per_s: float  # the same pipe on confluent-kafka (librdkafka): is the client the bound?
    confluent_pipe_latency_p50_ms: float
    confluent_pipe_latency_p99_ms: float
    confluent_pipe_3_events_per_s: float  # the confluent-kafka pipe writing each input three times
    routing_us_per_event: float  # the router's Python work for one event, no I/O (bench/routing.py)
    routing_ratio_bound: float  # events a second that work allows on one core, against the raw pipe
    peer_latency_p50_ms: float
    peer_latency_p99_ms: float
    subscriber_latency_p50_ms: float  # a quiet department's subscriber, produce → handler (bench/subscriber.py)
    subscriber_latency_p99_ms: float
    faststream_subscriber_latency_p50_ms: float  # the same on the consumer FastStream builds itself
    faststream_subscriber_latency_p99_ms: float


def router_command(instance: str) -> list[str]:
    return [sys.executable, "-m", "deploy.cli", "gateway", "run", "--no-serve", "--instance", instance]


def router_env(topics: Topics) -> dict[str, str]:
    return {"CONCORD_TOPIC_NAMESPACE": topics.namespace, "CONCORD_ROUTER_GROUP": router_group(topics)}


def router_group(topics: Topics) -> str:
    return f"{GATEWAY}.{topics.namespace}-router"


def pipe_command(source: str, target: str, group: str, batch: int, transactional: bool = False, copies: int = 1
                 ) -> list[str]:
    return [sys.executable, "-m", "bench.raw_pipe", "--principal", ADMIN, "--source", source, "--target", target,
            "--group", group, "--batch", str(batch), "--copies", str(copies),
            *(["--transactional"] if transactional else [])]


def confluent_pipe_command(source: str, target: str, group: str, batch: int, copies: int = 1) -> list[str]:
    return [sys.executable, "-m", "bench.confluent_pipe", "--principal", ADMIN, "--source", source, "--target", target,
            "--group", group, "--batch", str(batch), "--copies", str(copies)]


def routers_throughput(target: Target, run: str, events: int, count: int) -> float:
    """``count`` router processes in one group over a preload of their own namespace."""
    topics = Topics(f"{run}-x{count}")
    asyncio.run(provision(target, topics))
    try:
        source = topics.ingress("planning")
        asyncio.run(preload(target.kafka("planning"), source, events, topics.namespace))
        commands = [router_command(f"{topics.namespace}-{i}") for i in range(count)]
        return timed(f"routers-{count}", target, router_group(topics), source, commands, router_env(topics)).rate
    finally:
        asyncio.run(remove(target, topics))


def latency_through(target: Target, name: str, command: list[str], env: dict[str, str], topics: Topics, rate: int,
                    seconds: int, run: str, source: str | None = None, destination: str | None = None,
                    sender: str = "planning") -> list[float]:
    with Processes(target, name, [command], env) as process:
        process.wait_for(READY)
        return asyncio.run(latency(target, topics, rate, seconds, run, source, destination, sender))


def measure(target: Target, events: int, rate: int, seconds: int) -> tuple[Figures, dict[str, list[float]]]:
    s = target.settings
    run = f"bench{int(time.time())}{target.name[0]}"
    topics = Topics(run)
    raw_out, eos_in, eos_out, cf_in, cf_out, kit_in, fs_in = (
        TopicSpec(f"{run}.{name}", 3, DAY_MS)
        for name in ("raw.out", "eos.in", "eos.out", "cf.in", "cf.out", "subscriber.kit", "subscriber.faststream"))
    asyncio.run(provision(target, topics, [raw_out, eos_in, eos_out, cf_in, cf_out, kit_in, fs_in]))
    try:
        source = topics.ingress("planning")
        asyncio.run(preload(target.kafka("planning"), source, events, run))
        # the baseline copies with the admin's access: the same TLS and SCRAM cost, no ACL set of its own
        raw = timed("raw-pipe", target, f"{run}-raw", source,
                    [pipe_command(source, raw_out.name, f"{run}-raw", s.router_batch_records)], {})
        copied = {name: timed(f"{name}-pipe", target, f"{run}-{name}", source, [command(
            source, raw_out.name, f"{run}-{name}", s.router_batch_records)], {}).rate
            for name, command in (("eos", partial(pipe_command, transactional=True)),
                                  ("eos3", partial(pipe_command, transactional=True, copies=3)),
                                  ("confluent", confluent_pipe_command),
                                  ("confluent3", partial(confluent_pipe_command, copies=3)))}
        routed = timed("router", target, router_group(topics), source, [router_command(run)], router_env(topics))
        # the same group again, now at the end of the preload: only the latency run's events
        routed_latency = latency_through(target, "router-latency", router_command(run), router_env(topics), topics,
                                         rate, seconds, run)
        eos = latency_through(target, "eos-pipe", pipe_command(eos_in.name, eos_out.name, f"{run}-eos",
                                                               s.router_batch_records, transactional=True),
                              {}, topics, rate, seconds, run, eos_in.name, eos_out.name, sender=ADMIN)
        confluent = latency_through(target, "confluent-pipe", confluent_pipe_command(
            cf_in.name, cf_out.name, f"{run}-cf", s.router_batch_records), {}, topics, rate, seconds, run, cf_in.name,
            cf_out.name, sender=ADMIN)
        kit_waits, faststream_waits = (
            asyncio.run(handler_waits(target, spec.name, f"{spec.name}-group", seconds, waiting))
            for waiting, spec in ((True, kit_in), (False, fs_in)))
    finally:
        asyncio.run(remove(target, topics))
    two = routers_throughput(target, run, events, 2)
    routing_us = routing_us_per_event(events, topics, s.max_payload_bytes, s.secrets.mask_key())
    peer = measure_peer(target, run, events, rate, seconds)
    figures = Figures(
        round(raw.rate), round(routed.rate), round(routed.rate / raw.rate, 3), round(two),
        round(two / routed.rate, 3), peer.events_per_s, rate, percentile(routed_latency, 0.5),
        percentile(routed_latency, 0.99), len(routed_latency), round(copied["eos"]), percentile(eos, 0.5),
        percentile(eos, 0.99), round(copied["eos3"]), round(copied["confluent"]), percentile(confluent, 0.5),
        percentile(confluent, 0.99), round(copied["confluent3"]), routing_us, round(1e6 / routing_us / raw.rate, 3),
        peer.latency_p50_ms, peer.latency_p99_ms, percentile(kit_waits, 0.5),
        percentile(kit_waits, 0.99), percentile(faststream_waits, 0.5), percentile(faststream_waits, 0.99))
    return figures, {"router": routed_latency, "transactional copy pipe": eos,
                     "transactional copy pipe, confluent-kafka": confluent, "Kafka Streams peer": peer.latencies}


def plaintext_target(s: Settings) -> tuple[Target, KafkaNode]:
    port = s.kafka_port + PLAINTEXT_PORT_OFFSET
    node = KafkaNode(s, secured=False, home=s.stack_path / "bench-plaintext", port=port,
                     controller_port=s.kafka_controller_port + PLAINTEXT_PORT_OFFSET)
    bootstrap = f"127.0.0.1:{port}"
    plain = s.model_copy(update={"kafka_security": "PLAINTEXT", "kafka_bootstrap": bootstrap})
    env = {"CONCORD_KAFKA_SECURITY": "PLAINTEXT", "CONCORD_KAFKA_BOOTSTRAP": bootstrap}
    return Target("plaintext", plain, env), node


ROWS = [
    ("raw aiokafka pipe (1 output per input), events/s", "raw_events_per_s"),
    ("gateway router (shared + deliver + audit, transactions), events/s", "router_events_per_s"),
    ("router / raw", "router_ratio"),
    ("two routers in one group, events/s", "routers_2_events_per_s"),
    ("two routers / one", "routers_2_scaling"),
    ("Kafka Streams peer (same route, exactly_once_v2), events/s", "peer_events_per_s"),
    ("router latency, p50 ms", "latency_p50_ms"),
    ("router latency, p99 ms", "latency_p99_ms"),
    ("transactional copy pipe (aiokafka), events/s", "eos_pipe_events_per_s"),
    ("transactional copy pipe latency (the floor), p50 ms", "eos_pipe_latency_p50_ms"),
    ("transactional copy pipe latency (the floor), p99 ms", "eos_pipe_latency_p99_ms"),
    ("transactional copy pipe, 3 copies an input (the router's output volume), events/s",
     "eos_pipe_3_events_per_s"),
    ("transactional copy pipe on confluent-kafka, events/s", "confluent_pipe_events_per_s"),
    ("transactional copy pipe on confluent-kafka, p50 ms", "confluent_pipe_latency_p50_ms"),
    ("transactional copy pipe on confluent-kafka, p99 ms", "confluent_pipe_latency_p99_ms"),
    ("transactional copy pipe on confluent-kafka, 3 copies an input, events/s", "confluent_pipe_3_events_per_s"),
    ("the router's Python work for one event, no I/O, µs", "routing_us_per_event"),
    ("events/s that work allows on one core, against the raw pipe", "routing_ratio_bound"),
    ("Kafka Streams peer latency, p50 ms", "peer_latency_p50_ms"),
    ("Kafka Streams peer latency, p99 ms", "peer_latency_p99_ms"),
    (f"a department's subscriber at {SUBSCRIBER_RATE} records/s, produce → handler, p50 ms",
     "subscriber_latency_p50_ms"),
    (f"a department's subscriber at {SUBSCRIBER_RATE} records/s, produce → handler, p99 ms",
     "subscriber_latency_p99_ms"),
    ("the same on the consumer FastStream builds, p50 ms", "faststream_subscriber_latency_p50_ms"),
    ("the same on the consumer FastStream builds, p99 ms", "faststream_subscriber_latency_p99_ms"),
]


@dataclass(frozen=True)
class Goal:
    """What issue 10 asks of one figure: at most ``bound`` (``at_most``) or at least it; a latency goal holds at
    ``rate`` events/s only."""

    figure: str  # a field of Figures
    label: str
    bound: float
    at_most: bool
    rate: int | None = None

    def judge(self, figures: Figures) -> dict[str, object]:
        """The figure against the goal; ``met`` None when it was measured at another rate than the goal's."""
        measured = getattr(figures, self.figure)
        met: bool | None = None
        if self.rate is None or figures.latency_rate_per_s == self.rate:
            met = measured <= self.bound if self.at_most else measured >= self.bound
        return {"figure": self.figure, "goal": f"{'≤' if self.at_most else '≥'} {self.bound:g}", "measured": measured,
                "met": met}


GOALS = (
    Goal("latency_p50_ms", "router latency at 1,000 events/s, p50 ms", 10, at_most=True, rate=1_000),
    Goal("latency_p99_ms", "router latency at 1,000 events/s, p99 ms", 30, at_most=True, rate=1_000),
    Goal("router_ratio", "router / raw pipe", 0.7, at_most=False),
    Goal("routers_2_scaling", "two routers / one, where two cores are free", 1.6, at_most=False),
)


def against_goals(figures: Figures, cores: object) -> tuple[list[dict[str, object]], Table]:
    """Each goal judged on ``figures``, and the table that shows them."""
    goals = [goal.judge(figures) for goal in GOALS]
    table = Table("goal (issue 10)", "target", "measured", "met",
                  title=f"Against the targets ({cores} cores, shared with the broker and PostgreSQL)")
    for goal, judged in zip(GOALS, goals, strict=True):
        met = judged["met"]
        table.add_row(goal.label, str(judged["goal"]), f"{judged['measured']:,}",
                      "not at the goal's rate" if met is None else "yes" if met else "no")
    return goals, table


def plots(out: Path, name: str, figures: Figures, samples: dict[str, list[float]]) -> list[Path]:
    return [
        latency_cdf(samples, figures.latency_rate_per_s, name, out / f"latency-{name}.png"),
        throughput({"raw pipe": figures.raw_events_per_s, "1 router": figures.router_events_per_s,
                    "2 routers": figures.routers_2_events_per_s, "Streams peer": figures.peer_events_per_s,
                    "EOS copy (aiokafka)": figures.eos_pipe_events_per_s,
                    "EOS copy x3 (aiokafka)": figures.eos_pipe_3_events_per_s,
                    "EOS copy (librdkafka)": figures.confluent_pipe_events_per_s,
                    "EOS copy x3 (librdkafka)": figures.confluent_pipe_3_events_per_s},
                   f"{name}, {os.cpu_count()} cores shared with the broker", out / f"throughput-{name}.png"),
    ]


REFERENCE_STEPS = 5_000_000


def machine() -> dict[str, object]:
    """The machine the figures came from, and how fast one of its cores ran that day (the seconds a fixed loop of
    Python takes, the best of three): the figures of one kind of shared machine have differed by a factor of three
    between days, so figures of different days compare only beside this reference."""
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []

    def loop() -> float:
        started, total = time.perf_counter(), 0
        for i in range(REFERENCE_STEPS):
            total += i
        return time.perf_counter() - started

    return {"cpu": models[0] if models else platform.processor(), "cores": os.cpu_count(),
            "python_loop_s": round(min(loop() for _ in range(3)), 3)}


def main(
    events: int = typer.Option(20_000, help="records preloaded for each throughput run"),
    rate: int = typer.Option(1_000, help="events per second for the latency runs"),
    seconds: int = typer.Option(10, help="length of each latency run"),
    plaintext: bool = typer.Option(True, help="also measure on a throwaway plaintext node"),
) -> None:
    s = Settings.from_environment()
    host = machine()  # before the stack starts: the loop has a core to itself
    Stack(s).up()
    results = {"secured": measure(Target("secured", s, {}), events, rate, seconds)}
    if plaintext:
        target, node = plaintext_target(s)
        shutil.rmtree(node.home, ignore_errors=True)
        node.start()
        try:
            node.wait_ready()
            results["plaintext"] = measure(target, events, rate, seconds)
        finally:
            node.stop()
        shutil.rmtree(node.home, ignore_errors=True)  # kept when the measurement failed: its log says why

    table = Table("measure", *results, title=f"Router benchmark ({events:,} events per throughput run, latency at "
                                             f"{rate:,} events/s for {seconds} s; {host['cores']} cores of "
                                             f"{host['cpu']}, reference loop {host['python_loop_s']} s)")
    for label, key in ROWS:
        table.add_row(label, *(f"{getattr(figures, key):,}" for figures, _ in results.values()))
    console.print(table)
    secured, _ = results["secured"]
    goals, verdicts = against_goals(secured, host["cores"])
    console.print(verdicts)
    out = s.stack_path / "bench"
    out.mkdir(parents=True, exist_ok=True)
    report = {**asdict(secured), "secured": True, "cores": host["cores"], "machine": host,
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "goals": goals,
              "runs": {name: asdict(figures) for name, (figures, _) in results.items()}}
    (out / "bench.json").write_text(json.dumps(report, indent=2))
    pictures = [path for name, (figures, samples) in results.items() for path in plots(out, name, figures, samples)]
    console.print(f"figures written to {out / 'bench.json'}; plots: {', '.join(p.name for p in pictures)}")


if __name__ == "__main__":
    typer.run(main)
