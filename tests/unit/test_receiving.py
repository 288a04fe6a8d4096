"""How a department receives what the gateway delivers, on an in-memory inbox: once per event, unreadable input
kept and passed over, a failing handler retried by the batch and then parked, never a stopped stream."""

from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from contracts.base import Event
from contracts.bureau import OpinionIssued
from contracts.envelope import SENDER_HEADER, Envelope, KafkaRecord, encode
from services.kit.inbox import (
    MAX_ATTEMPTS,
    Delivered,
    Dispatch,
    Handler,
    NotReplayable,
    Outcome,
    ParkedEvent,
    Receiver,
    Unreplayable,
)
from tests.factories import case_submitted, opinion_issued
from tests.fakes import PARKED_AT, MemoryInbox


def delivered(record: KafkaRecord, offset: int = 0, sender: bytes = b"planning") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("deliver.bureau", 0, offset, 0, 0, record.key, record.value, None, 0, len(record.value),
                          [*record.headers, (SENDER_HEADER, sender)])


class Desk:
    """Handles opinions; writes what it saw to the inbox's state, so a savepoint's undo shows; fails on demand."""

    def __init__(self, inbox: MemoryInbox, failures: int = 0) -> None:
        self.inbox = inbox
        self.failures = failures
        self.handle_error: Exception = ConnectionError("the database went away")
        self.seen: list[tuple[str, str]] = []

    async def handle(self, event: OpinionIssued, sender: str) -> None:
        self.inbox.kept[f"side-effect:{event.request_id}"] = (Outcome.HANDLED, sender)
        if self.failures:
            self.failures -= 1
            raise self.handle_error
        self.seen.append((event.request_id, sender))


def receiver() -> Receiver:
    async def handler(event: Any, context: Any) -> None:
        raise AssertionError("the tests dispatch to their desk")

    return Receiver("bureau", {OpinionIssued.CONTRACT.key: (OpinionIssued, handler)}, backoff_seconds=0)


def dispatch_to(desk: Desk) -> Dispatch:
    async def dispatch(handler: Handler, event: Event, sender: str, envelope: Envelope) -> None:
        assert isinstance(event, OpinionIssued)
        await desk.handle(event, sender)

    return dispatch


async def in_lane(receive: Receiver, inbox: MemoryInbox, desk: Desk, record: ConsumerRecord[bytes, bytes]) -> list[str]:
    """One record received in a lane's transaction (the fake's savepoint stands for it): what the receiver raises
    rolls it all back, as the lane's rollback does."""
    async with inbox.savepoint():
        return await receive.receive(inbox, record, dispatch_to(desk))


async def test_an_event_is_handled_once_however_often_it_is_delivered() -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox)
    receive = receiver()
    record = delivered(encode(opinion_issued(), source="/concord/planning", id="e-1"))
    assert await receive.receive(inbox, record, dispatch_to(desk)) == ["e-1"]
    assert await receive.receive(inbox, delivered(encode(opinion_issued(), source="/x", id="e-1"), offset=9),
                                 dispatch_to(desk)) == []
    assert desk.seen == [("G-TEST-1/NRP-101/1", "planning")] and inbox.kept["e-1"][0] is Outcome.HANDLED


@pytest.mark.parametrize("headers", [
    [],
    [("ce_id", b"e-2")],
    [("ce_specversion", b"1.0"), ("ce_id", b""), ("ce_type", b"\xff\xfe"), ("ce_source", b"/x")],
])
async def test_a_record_without_a_readable_envelope_is_kept_as_unreadable_and_passed_over(
        headers: list[tuple[str, bytes]]) -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox)
    record = ConsumerRecord("deliver.bureau", 3, 41, 0, 0, None, b"{}", None, 0, 2, headers)
    assert await receiver().receive(inbox, record, dispatch_to(desk)) == []
    outcome, detail = inbox.kept["unreadable:deliver.bureau/3/41"]
    assert outcome is Outcome.UNREADABLE and detail and desk.seen == []


async def test_a_payload_its_contract_does_not_allow_is_kept_as_unreadable_with_the_reason() -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox)
    good = encode(opinion_issued(), source="/concord/planning", id="e-3")
    broken = KafkaRecord(good.key, good.value.replace(b'"approved"', b'"maybe"'), good.headers)
    assert await receiver().receive(inbox, delivered(broken), dispatch_to(desk)) == []
    outcome, detail = inbox.kept["e-3"]
    assert outcome is Outcome.UNREADABLE and "decision" in detail and desk.seen == []


async def test_a_contract_the_department_does_not_handle_is_passed_over_without_a_trace() -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox)
    record = delivered(encode(case_submitted(), source="/concord/bureau", id="e-4"))
    assert await receiver().receive(inbox, record, dispatch_to(desk)) == [] and inbox.kept == {}


async def test_a_failing_handler_is_retried_by_the_batch_and_its_changes_undone_each_time() -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox, failures=2)
    receive = receiver()
    record = delivered(encode(opinion_issued(), source="/concord/planning", id="e-5"))
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await in_lane(receive, inbox, desk, record)
        assert inbox.kept == {}  # neither the claim nor the handler's writes survive the lane's rollback
    assert await in_lane(receive, inbox, desk, record) == ["e-5"]
    assert desk.seen == [("G-TEST-1/NRP-101/1", "planning")]


async def test_a_handler_that_keeps_failing_parks_its_event_and_the_stream_goes_on() -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox, failures=MAX_ATTEMPTS)
    receive = receiver()
    record = delivered(encode(opinion_issued(), source="/concord/planning", id="e-6"))
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(ConnectionError):
            await in_lane(receive, inbox, desk, record)
    assert await in_lane(receive, inbox, desk, record) == ["e-6"]
    outcome, detail = inbox.kept["e-6"]
    assert outcome is Outcome.PARKED and "the database went away" in detail and desk.seen == []
    receive.settled(["e-6"])
    next_one = delivered(encode(opinion_issued(request_id="G-TEST-1/NRP-101/2"), source="/x", id="e-7"), offset=1)
    assert await receive.receive(inbox, next_one, dispatch_to(desk)) == ["e-7"]
    assert desk.seen == [("G-TEST-1/NRP-101/2", "planning")]


async def test_only_the_attempt_that_would_park_an_event_takes_a_savepoint_of_its_own() -> None:
    """Any other failure rolls the lane back whole: a savepoint there would cost two round trips for nothing."""
    inbox = MemoryInbox()
    savepoint, taken = inbox.savepoint, [0]

    def counted() -> AbstractAsyncContextManager[None]:
        taken[0] += 1
        return savepoint()

    inbox.savepoint = counted  # type: ignore[method-assign]
    receive = receiver()
    handled = delivered(encode(opinion_issued(request_id="G-TEST-1/NRP-101/3"), source="/x", id="e-8"))
    assert await in_lane(receive, inbox, Desk(inbox), handled) == ["e-8"]
    assert taken[0] == 1  # the lane's own
    desk, record = Desk(inbox, failures=MAX_ATTEMPTS), delivered(encode(opinion_issued(), source="/x", id="e-9"), 1)
    for attempt in range(1, MAX_ATTEMPTS):
        with pytest.raises(ConnectionError):
            await in_lane(receive, inbox, desk, record)
        assert taken[0] == 1 + attempt  # the lanes' own only
    assert await in_lane(receive, inbox, desk, record) == ["e-9"]
    assert taken[0] == 1 + MAX_ATTEMPTS + 1  # the last lane's, and the parking attempt's
    assert inbox.kept["e-9"][0] is Outcome.PARKED and "side-effect:G-TEST-1/NRP-101/1" not in inbox.kept


async def parked(receive: Receiver, inbox: MemoryInbox, desk: Desk, record: ConsumerRecord[bytes, bytes]) -> None:
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(ConnectionError):
            await in_lane(receive, inbox, desk, record)
    await in_lane(receive, inbox, desk, record)


async def test_a_parked_event_keeps_the_record_it_came_in_and_how_often_its_handler_ran() -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox, failures=MAX_ATTEMPTS)
    record = delivered(encode(opinion_issued(), source="/concord/planning", id="e-8"))
    await parked(receiver(), inbox, desk, record)
    kept = inbox.parked["e-8"]
    assert (kept.contract, kept.sender, kept.attempts) == ("bureau.opinion-issued", "planning", MAX_ATTEMPTS)
    assert "the database went away" in kept.error
    assert kept.record == Delivered(record.key, record.value, list(record.headers))


async def test_a_parked_event_replayed_once_its_cause_is_gone_is_handled_by_its_handler_once() -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox, failures=MAX_ATTEMPTS)
    receive = receiver()
    await parked(receive, inbox, desk, delivered(encode(opinion_issued(), source="/concord/planning", id="e-9")))
    assert desk.seen == []
    assert await receive.replay(inbox, inbox.parked["e-9"], dispatch_to(desk)) is None
    assert desk.seen == [("G-TEST-1/NRP-101/1", "planning")]  # the sender as delivered, not the operator
    assert inbox.kept["e-9"][0] is Outcome.HANDLED and inbox.replayed == {"e-9"}
    with pytest.raises(NotReplayable) as again:
        await receive.replay(inbox, inbox.parked["e-9"], dispatch_to(desk))
    assert again.value.why is Unreplayable.HANDLED
    assert desk.seen == [("G-TEST-1/NRP-101/1", "planning")]  # no second effect


async def test_a_replay_that_fails_again_undoes_its_changes_and_leaves_the_event_parked_with_the_new_error() -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox, failures=MAX_ATTEMPTS)
    receive = receiver()
    await parked(receive, inbox, desk, delivered(encode(opinion_issued(), source="/concord/planning", id="e-10")))
    desk.failures = 1
    desk.handle_error = TimeoutError("the registry timed out")
    error = await receive.replay(inbox, inbox.parked["e-10"], dispatch_to(desk))
    assert error is not None and "the registry timed out" in error
    assert inbox.kept["e-10"] == (Outcome.PARKED, error) and "side-effect:G-TEST-1/NRP-101/1" not in inbox.kept
    assert inbox.parked["e-10"].attempts == MAX_ATTEMPTS + 1 and inbox.replayed == set()
    assert await receive.replay(inbox, inbox.parked["e-10"], dispatch_to(desk)) is None
    assert desk.seen == [("G-TEST-1/NRP-101/1", "planning")]


async def test_a_parked_event_that_no_longer_reads_stays_parked_with_why() -> None:
    inbox = MemoryInbox()
    desk = Desk(inbox, failures=MAX_ATTEMPTS)
    receive = receiver()
    await parked(receive, inbox, desk, delivered(encode(opinion_issued(), source="/concord/planning", id="e-11")))
    kept = inbox.parked["e-11"]
    assert kept.record is not None
    mangled = replace(kept, record=Delivered(kept.record.key, b"{not json", kept.record.headers))
    error = await receive.replay(inbox, mangled, dispatch_to(desk))
    assert error is not None and inbox.kept["e-11"][0] is Outcome.PARKED and desk.seen == []


async def test_an_event_parked_without_its_record_cannot_be_replayed() -> None:
    inbox = MemoryInbox()
    nothing = ParkedEvent("e-12", "bureau.opinion-issued", "planning", PARKED_AT, None, "old", None)
    with pytest.raises(NotReplayable) as refused:
        await receiver().replay(inbox, nothing, dispatch_to(Desk(inbox)))
    assert refused.value.why is Unreplayable.NO_RECORD and "cannot run again" in str(refused.value)
