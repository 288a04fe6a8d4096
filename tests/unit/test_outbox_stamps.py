"""What the outbox relay sends as a record's send time (``base.outbox.sent_at_commit``): the commit time of the
transaction that queued it where PostgreSQL knows it, else the time stamped when it was queued; no other header
changes, and a record without the stamp gets none."""

from __future__ import annotations

from base.outbox import sent_at_commit
from contracts.envelope import SENT_AT

STORED = [["ce_id", "e-1"], [SENT_AT, "1000"], ["traceparent", "00-ab-cd-01"]]


def test_the_stamp_becomes_the_commit_time_and_nothing_else_changes() -> None:
    assert sent_at_commit(STORED, 1234) == [("ce_id", b"e-1"), (SENT_AT, b"1234"), ("traceparent", b"00-ab-cd-01")]


def test_without_a_commit_time_the_stamp_stands() -> None:
    assert sent_at_commit(STORED, None) == [("ce_id", b"e-1"), (SENT_AT, b"1000"), ("traceparent", b"00-ab-cd-01")]


def test_a_record_queued_without_a_stamp_is_sent_without_one() -> None:
    assert sent_at_commit([["ce_id", "audit:1"]], 1234) == [("ce_id", b"audit:1")]
