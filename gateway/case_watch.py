"""Case-scoped agreements end with their case: the gateway follows the bureau's case completions on the exchange's
record (``shared.bureau.case-completed``) and ends the agreements for each completed case. Offsets are committed
only once the agreements are ended (ending one twice is refused as not from its status, so a replay is harmless)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer

from base.kafka import KafkaAccess, stop_client
from contracts.bureau import CaseCompleted
from contracts.topics import Topics
from gateway.agreements import AgreementStore

log = logging.getLogger("concord.gateway")
GROUP = "gateway.case-watch"
RETRY_SECONDS = 1.0


def group_of(topics: Topics) -> str:
    return f"{GROUP}.{topics.namespace}" if topics.namespace else GROUP


async def watch_cases(kafka: KafkaAccess, topics: Topics, agreements: AgreementStore, stop: asyncio.Event) -> None:
    while not stop.is_set():
        consumer = AIOKafkaConsumer(topics.shared(CaseCompleted.CONTRACT.id), **kafka.aiokafka(),
                                    group_id=group_of(topics), enable_auto_commit=False,
                                    auto_offset_reset="earliest", isolation_level="read_committed")
        try:
            await consumer.start()
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        if record.key:
                            await agreements.end_with_case(record.key.decode())
                if batch:
                    await consumer.commit()
        except Exception:
            log.exception("case watch failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
        finally:
            await stop_client(consumer.stop, "the case watch's consumer")
