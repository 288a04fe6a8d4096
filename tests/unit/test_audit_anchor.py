"""Anchors without a broker: signing and reading them back, what a record that is no genuine anchor reads as, what
a chain shows against its anchors (a truncated tail, a consistent rewrite, a forged anchor), and when the keeper's
side publishes one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from base.clock import AcceleratedClock
from base.kafka import KafkaAccess
from gateway.audit.anchor import (
    Anchor,
    Anchored,
    Anchoring,
    ForgedAnchor,
    anchor_of,
    key_id,
    new_key_pair,
    public_pem,
    reading,
    signed_record,
)
from gateway.audit.chain import GENESIS, ChainRow, link
from gateway.audit.verification import Finding, against_anchors, classify
from tests.unit.test_audit_chain import chain

CHAIN = "gateway.audit_log"
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def anchor_at(rows: list[ChainRow], seq: int, minutes: int = 0) -> Anchor:
    return Anchor(chain=CHAIN, seq=seq, hash=rows[seq - 1].hash, count=seq, at=T0 + timedelta(minutes=minutes),
                  key=key_id(PUBLIC))


def anchored(*anchors: Anchor, key: Ed25519PrivateKey = KEY) -> list[Anchored]:
    found = [reading(offset, signed_record(a, key), CHAIN, PUBLIC) for offset, a in enumerate(anchors)]
    assert all(isinstance(f, Anchored) for f in found)
    return [f for f in found if isinstance(f, Anchored)]


def kinds(findings: list[Finding]) -> list[tuple[str, int]]:
    return [(f.kind, f.seq) for f in findings]


# --- signing ---------------------------------------------------------------------------------------------------
def test_a_signed_anchor_reads_back_as_itself() -> None:
    anchor = anchor_at(chain(), 5)
    value = signed_record(anchor, KEY)
    assert anchor_of(value, CHAIN, PUBLIC) == anchor
    assert set(json.loads(value)) == {"chain", "seq", "hash", "count", "at", "key", "signature"}


def test_a_key_pair_is_pem_and_its_public_half_can_be_derived_again() -> None:
    private, public = new_key_pair()
    assert private.startswith("-----BEGIN PRIVATE KEY-----") and public.startswith("-----BEGIN PUBLIC KEY-----")
    assert public_pem(private) == public


def forge(value: bytes, **changes: Any) -> bytes:
    data = json.loads(value)
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(("value", "why"), [
    (forge(signed_record(anchor_at(chain(), 5), KEY), seq=6), "does not verify"),
    (forge(signed_record(anchor_at(chain(), 5), KEY), hash="0" * 64), "does not verify"),
    (forge(signed_record(anchor_at(chain(), 5), KEY), extra=1), "does not verify"),
    (forge(signed_record(anchor_at(chain(), 5), KEY), signature="not base64!"), "does not verify"),
    (signed_record(anchor_at(chain(), 5).model_copy(update={"key": "0123456789abcdef"}),
                   Ed25519PrivateKey.generate()), "signed by key '0123456789abcdef'"),
    (signed_record(anchor_at(chain(), 5).model_copy(update={"chain": "gateway.other"}), KEY),
     "an anchor of chain gateway.other"),
    (json.dumps(anchor_at(chain(), 5).model_dump(mode="json")).encode(), "not signed"),
    (b"{not json", "not an anchor"),
    (b"[1, 2]", "not a JSON object"),
    (None, "not an anchor"),
])
def test_a_record_that_is_no_anchor_of_the_chain_signed_by_its_key_is_forged(value: bytes | None, why: str) -> None:
    with pytest.raises(ForgedAnchor, match=why):
        anchor_of(value, CHAIN, PUBLIC)


def test_a_forged_record_reads_with_the_seq_it_claims() -> None:
    forged = reading(7, forge(signed_record(anchor_at(chain(), 5), KEY), seq=8), CHAIN, PUBLIC)
    assert not isinstance(forged, Anchored) and (forged.offset, forged.seq) == (7, 8)
    assert not isinstance(unreadable := reading(9, b"\xff", CHAIN, PUBLIC), Anchored) and unreadable.seq is None


# --- the chain against its anchors ---------------------------------------------------------------------------
def test_a_chain_that_agrees_with_its_anchors_or_has_none_yet_has_no_finding() -> None:
    rows = chain(12)
    assert against_anchors(rows, anchored(anchor_at(rows, 4), anchor_at(rows, 9, 1), anchor_at(rows, 12, 2))) == []
    assert against_anchors(rows, []) == [] and against_anchors([], []) == []


def test_a_tail_cut_off_after_an_anchor_is_truncated_at_the_first_missing_seq() -> None:
    rows = chain(12)
    anchors = anchored(anchor_at(rows, 6), anchor_at(rows, 10, 1))
    assert classify(rows[:8]) == []  # the rows alone cannot tell
    [finding] = against_anchors(rows[:8], anchors)
    assert (finding.kind, finding.seq) == ("truncated", 9)
    assert "ends at seq 8" in finding.detail and "10 entries up to seq 10" in finding.detail
    assert kinds(against_anchors([], anchors)) == [("truncated", 1)]  # every row removed


def rewritten(rows: list[ChainRow], at_seq: int) -> list[ChainRow]:
    """The chain with the entry at ``at_seq`` changed and every hash recomputed the new way: consistent."""
    out: list[ChainRow] = []
    prev_hash = GENESIS
    for row in rows:
        content = {**row.entry, "sender": "planning"} if row.seq == at_seq else row.entry
        out.append(link(row.seq, prev_hash, content, row.origin))
        prev_hash = out[-1].hash
    return out


def test_a_consistently_rewritten_chain_is_found_at_the_first_anchor_it_disagrees_with() -> None:
    rows = chain(12)
    anchors = anchored(anchor_at(rows, 3), anchor_at(rows, 6, 1), anchor_at(rows, 9, 2), anchor_at(rows, 12, 3))
    forged = rewritten(rows, 5)
    assert classify(forged) == []  # the rows alone cannot tell
    [finding] = against_anchors(forged, anchors)
    assert (finding.kind, finding.seq) == ("rewritten", 6)
    assert "rows after seq 3 up to seq 6" in finding.detail and "2 later anchored seq disagree" in finding.detail


def test_a_rewritten_and_shortened_chain_is_both() -> None:
    rows = chain(12)
    anchors = anchored(anchor_at(rows, 6), anchor_at(rows, 12, 1))
    assert kinds(against_anchors(rewritten(rows, 2)[:9], anchors)) == [("rewritten", 6), ("truncated", 10)]


def test_a_forged_anchor_is_reported_at_the_seq_it_claims_and_does_not_count_as_an_anchor() -> None:
    rows = chain(12)
    fake = Ed25519PrivateKey.generate()
    claims = Anchor(chain=CHAIN, seq=20, hash="f" * 64, count=20, at=T0, key=key_id(fake.public_key()))
    found = [*anchored(anchor_at(rows, 12)), reading(5, signed_record(claims, fake), CHAIN, PUBLIC)]
    [finding] = against_anchors(rows, found)
    assert (finding.kind, finding.seq) == ("forged", 20)  # not a truncation: the anchor is not believed
    assert "offset 5" in finding.detail and "signed by key" in finding.detail


# --- publishing ----------------------------------------------------------------------------------------------
class Broker:
    """Stands for the producer: what was sent, or a failure."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.down = False

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        if self.down:
            raise ConnectionError("broker down")
        self.sent.append((topic, value, key))

    async def stop(self) -> None:
        return None


def anchoring(every: float) -> tuple[Anchoring, Broker]:
    side = Anchoring(KafkaAccess("127.0.0.1:1"), "audit.anchor", CHAIN, KEY, AcceleratedClock(T0, 1.0), every)
    broker = Broker()
    side.producer = broker
    return side, broker


async def test_the_keeper_anchors_the_head_it_appended_when_due_and_on_stop() -> None:
    side, broker = anchoring(every=3600)
    await side.due()
    assert broker.sent == []  # nothing appended yet
    side.grew(4, "a" * 64)
    side.grew(3, "b" * 64)  # an older head noted late changes nothing
    await side.due()
    assert broker.sent == []  # not due for an hour
    await side.stop()
    [(topic, value, key)] = broker.sent
    assert (topic, key) == ("audit.anchor", CHAIN.encode())
    anchor = anchor_of(value, CHAIN, PUBLIC)
    assert (anchor.seq, anchor.hash, anchor.count, anchor.key) == (4, "a" * 64, 4, key_id(PUBLIC))


async def test_an_anchor_the_broker_did_not_take_stays_pending() -> None:
    side, broker = anchoring(every=0)
    side.grew(7, "c" * 64)
    broker.down = True
    await side.due()
    assert side.pending == (7, "c" * 64) and broker.sent == []
    broker.down = False
    side.grew(9, "d" * 64)
    await side.due()
    assert [anchor_of(v, CHAIN, PUBLIC).seq for _, v, _ in broker.sent] == [9] and side.pending is None
    await side.due()
    assert len(broker.sent) == 1  # the head did not move: no new anchor


def test_an_anchor_changed_in_any_field_no_longer_reads() -> None:
    anchor = anchor_at(chain(), 5)
    value = json.loads(signed_record(anchor, KEY))
    for field, other in [("seq", 4), ("count", 4), ("chain", "x"), ("at", "2026-11-27T01:00:01Z"), ("key", "k"),
                         ("hash", "0" * 64)]:
        with pytest.raises(ForgedAnchor):
            anchor_of(json.dumps({**value, field: other}).encode(), CHAIN, PUBLIC)
