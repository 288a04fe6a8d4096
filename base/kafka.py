"""How a principal reaches the broker: the address and, on a secured cluster, SCRAM-SHA-512 over TLS with the
deployment's CA. One description, turned into the options of each client library the project uses; and how a
client is let go of."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from base.stopping import within

log = logging.getLogger("concord.kafka")

SCRAM = "SCRAM-SHA-512"
MOST_REPLICAS = 3


@dataclass(frozen=True)
class Replication:
    """How many copies of each partition a cluster keeps, and how many of them must hold a write before it is
    acknowledged (``acks=all``, which every producer of the exchange uses through idempotence): three and two on
    a cluster of three nodes or more, so that one node may be lost with no acknowledged write lost and writes
    going on; one and one on a single node."""

    factor: int
    min_insync: int

    @classmethod
    def on(cls, brokers: int) -> Replication:
        factor = min(MOST_REPLICAS, brokers)
        return cls(factor, max(1, factor - 1))


@lru_cache(maxsize=8)
def _ssl_context(cafile: str) -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context

    context: ssl.SSLContext = create_ssl_context(cafile=cafile)  # hostname checking stays on (SAN: 127.0.0.1)
    return context


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    username: str | None = None
    password: str | None = None
    cafile: str | None = None
    sasl_mechanism: str = SCRAM

    @property
    def secured(self) -> bool:
        return self.security_protocol != "PLAINTEXT"

    def ssl_context(self) -> ssl.SSLContext | None:
        return _ssl_context(self.cafile) if self.cafile and "SSL" in self.security_protocol else None

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            options |= {"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.username,
                        "sasl_plain_password": self.password}
        if (context := self.ssl_context()) is not None:
            options["ssl_context"] = context
        return options

    def faststream(self) -> Any:
        """FastStream's security object (None on a plaintext node)."""
        if not self.secured:
            return None
        from faststream.security import SASLScram512

        assert self.username is not None and self.password is not None
        return SASLScram512(self.username, self.password, ssl_context=self.ssl_context(), use_ssl=True)

    def confluent(self) -> dict[str, str]:
        """Configuration for confluent-kafka (librdkafka) clients."""
        config = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol.lower()}
        if self.security_protocol.startswith("SASL"):
            config |= {"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.username or "",
                       "sasl.password": self.password or ""}
        if self.cafile and "SSL" in self.security_protocol:
            config["ssl.ca.location"] = self.cafile
        return config


# A transaction begun right after the last one's commit is told CONCURRENT_TRANSACTIONS while the broker writes that
# one's markers (a millisecond or two): a transactional producer retries after this, not after aiokafka's 100 ms.
TRANSACTION_RETRY_BACKOFF_MS = 2


def quick_transaction_retries() -> None:
    """Make this process's transactional producers retry a transaction's first AddPartitionsToTxn, refused with
    CONCURRENT_TRANSACTIONS while the last transaction's markers are written, after ``TRANSACTION_RETRY_BACKOFF_MS``:
    aiokafka waits a fixed 20 ms there whatever ``retry_backoff_ms`` says (``BACKOFF_OVERRIDE``, as the Java client
    does), which cost every transaction of a busy router about that much (bench/: a transactional copy pipe at 1,000
    events/s, p50 44 → 20 ms). Idempotent."""
    import aiokafka.producer.sender as sender

    sender.BACKOFF_OVERRIDE = TRANSACTION_RETRY_BACKOFF_MS / 1000


CLIENT_STOP_SECONDS = 5.0


async def stop_client(stop: Callable[[], Awaitable[object]], what: str, seconds: float = CLIENT_STOP_SECONDS) -> None:
    """Stop a Kafka client (``stop``: its ``stop`` method), waiting ``seconds`` at most. aiokafka's stop waits
    until each of its connections is closed, which over TLS includes the broker's answering close_notify (the
    event loop gives that up to 30 s); the gateway's anchor log reader, stopped a few seconds after it started (as
    the tests restart the gateway), was seen waiting longer than the supervisor waits for a whole process to stop,
    time after time (why its connections do not close sooner is not known). What is left of the stop is
    cancelled, with a warning: the sockets close with the process, and nothing the exchange relies on is lost with
    an unfinished stop (an outbox record is sent again, a transaction left open is aborted by the broker, a group
    member not heard of leaves at its session timeout)."""
    await within(stop(), seconds, f"stopping {what}", log)
