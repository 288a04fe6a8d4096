"""How a department's service takes what the gateway delivers to it: FastStream's batch subscriber on the
department's deliver topic, read_committed, its offsets left to the kit (``services.kit.commits``), each batch handed
over as it came, with a consumer that answers a fetch as soon as records have come (``WaitingConsumer``).

FastStream's batch subscriber asks its consumer for a batch, waiting ``batch_timeout_ms`` at most, and after an
answer with nothing in it sleeps as long again before it asks anew: a record that reaches a quiet department during
that sleep waits for it to end (up to 20 ms, about 5 on average: ``make bench``, "a department's subscriber").
The consumer it builds is this module's, whose fetch does not answer empty."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

WAIT_MS = 1_000  # how long one ask of the consumer's fetch waits for records before it asks again
BATCH_RECORDS = 200
BATCH_TIMEOUT_MS = 20  # what the subscriber passes to each fetch: the consumer waits for records instead


class WaitingConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """aiokafka's consumer whose ``getmany`` answers only with records: it asks again (``WAIT_MS`` each time) until
    some have come, and returns them at once. The subscriber's stop cancels the wait; each ask counts as a poll for
    the group (``max_poll_interval_ms``), and a rebalance goes on as it does under any fetch."""

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        while True:
            records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = await super().getmany(
                *partitions, timeout_ms=WAIT_MS, max_records=max_records)
            if records:
                return records


async def as_it_came(message: KafkaMessage) -> KafkaMessage:
    """The subscriber's decoder: what its handler gets is the batch's message itself, whose records the receiver
    decodes one by one (``services.kit.inbox``)."""
    return message


def subscribe(broker: KafkaBroker, topic: str, group: str, listener: ConsumerRebalanceListener | None,
              handler: Callable[[Any], Awaitable[None]], description: str) -> None:
    """The department's one subscriber: batches of ``topic`` for ``group``, read_committed, acknowledged by no one
    (the kit commits the offsets), from the earliest record where the group has no offset."""
    broker.subscriber(
        topic, group_id=group, auto_offset_reset="earliest", isolation_level="read_committed",
        ack_policy=AckPolicy.MANUAL, batch=True, max_records=BATCH_RECORDS, batch_timeout_ms=BATCH_TIMEOUT_MS,
        listener=listener, decoder=as_it_came, description=description,
    )(handler)


async def connect_waiting(broker: KafkaBroker) -> None:
    """Connect the broker, its subscribers to build ``WaitingConsumer``s: the consumer's builder, set when FastStream's
    broker connects, is the seam its own test broker uses to put a fake consumer in; its options are kept."""
    await broker.connect()
    config = broker.config.broker_config
    builder = config.builder
    assert isinstance(builder, partial), builder
    config.builder = partial(WaitingConsumer, *builder.args, **builder.keywords)
