"""The audit hash chain without a database: the hash, how records become entries, and what ``classify``
reports for each kind of tampering."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.chain import GENESIS, ChainRow, Indexed, Origin, Scheme, chain_hash, link, record_hash
from gateway.audit.keeper import decode_entry
from gateway.audit.verification import Finding, classify

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 27, 9, 30, tzinfo=CST)


def entry(n: int) -> dict[str, Any]:
    return {
        "action": "routed" if n % 3 else "rejected",
        "at": (T0 + timedelta(seconds=n)).isoformat(),
        "event_id": f"ev-{n}",
        "case_id": f"G2026-{n % 4}",
        "sender": "bureau",
        "contract": "bureau.stage-completed",
        "version": 1,
        "delivered": {"planning": ["case_id", "stage"], "housing": ["case_id"]},
        "detail": "补正材料",
        "ratio": 0.25,
    }


def origin(n: int) -> Origin:
    """Where the keeper read entry n: the audit topic's record at offset 100 + n, written n seconds after T0."""
    return Origin("audit.exchange", 0, 100 + n, int(T0.timestamp() * 1000) + 1000 * n)


def linked(seq: int, prev_hash: str, content: dict[str, Any]) -> ChainRow:
    return link(seq, prev_hash, content, origin(seq))


def chain(count: int = 8) -> list[ChainRow]:
    rows: list[ChainRow] = []
    prev_hash = GENESIS
    for seq in range(1, count + 1):
        rows.append(linked(seq, prev_hash, entry(seq)))
        prev_hash = rows[-1].hash
    return rows


def renumbered(rows: list[ChainRow]) -> list[ChainRow]:
    """The rows numbered 1, 2, 3, ... in the order given: what someone closing a gap would do."""
    return [replace(row, seq=seq) for seq, row in enumerate(rows, start=1)]


def kinds(findings: list[Finding]) -> list[tuple[str, int]]:
    return [(f.kind, f.seq) for f in findings]


# --- the hash ----------------------------------------------------------------------------------------------

def test_the_hash_is_sha256_of_the_previous_hash_and_the_canonical_json() -> None:
    expected = hashlib.sha256(
        (GENESIS + '{"action":"routed","at":"2026-11-27T09:30:00+08:00","detail":"补正","n":[1,2.5]}').encode()
    ).hexdigest()
    assert chain_hash(GENESIS, {"n": [1, 2.5], "detail": "补正", "at": "2026-11-27T09:30:00+08:00",
                                "action": "routed"}) == expected


def test_the_hash_does_not_depend_on_key_order_but_on_every_value_and_the_previous_hash() -> None:
    base = chain_hash(GENESIS, {"a": 1, "b": {"y": 2, "x": 3}})
    assert chain_hash(GENESIS, {"b": {"x": 3, "y": 2}, "a": 1}) == base
    assert chain_hash(GENESIS, {"a": 1, "b": {"y": 2, "x": 4}}) != base
    assert chain_hash("1" * 64, {"a": 1, "b": {"y": 2, "x": 3}}) != base


def test_a_row_s_hash_covers_its_entry_and_the_record_it_was_read_from() -> None:
    where = Origin("audit.exchange", 2, 41, 1_764_207_000_123)
    content = {"action": "routed", "at": "2026-11-27T09:30:00+08:00", "delivered_sha256": {"planning": "ab" * 32}}
    expected = hashlib.sha256((GENESIS + '{"entry":{"action":"routed","at":"2026-11-27T09:30:00+08:00",'
                               '"delivered_sha256":{"planning":"' + "ab" * 32 + '"}},"offset":41,"partition":2,'
                               '"timestamp":1764207000123,"topic":"audit.exchange"}').encode()).hexdigest()
    assert record_hash(GENESIS, content, where) == expected
    assert link(1, GENESIS, content, where) == ChainRow(1, GENESIS, expected, content, Indexed.of(content), where,
                                                        Scheme.RECORD)
    for moved in (replace(where, topic="audit.other"), replace(where, partition=0), replace(where, offset=42),
                  replace(where, timestamp=1_764_207_000_124)):
        assert record_hash(GENESIS, content, moved) != expected, moved
    assert record_hash(GENESIS, {**content, "delivered_sha256": {"planning": "cd" * 32}}, where) != expected


# --- records into entries ----------------------------------------------------------------------------------

def test_a_well_formed_record_is_its_entry() -> None:
    value = '{"action":"contract_registered","at":"2026-11-27T09:30:00+08:00","contract":"x.y","extra":{"k":[1]}}'
    assert decode_entry(value.encode(), b"", 0) == {"action": "contract_registered", "at": "2026-11-27T09:30:00+08:00",
                                                    "contract": "x.y", "extra": {"k": [1]}}


def test_a_record_that_cannot_be_stored_as_an_entry_is_kept_as_unreadable_with_its_raw_text() -> None:
    at = "2026-11-27T09:30:00+08:00"
    for value, problem in [
        (b"{not json", "Expecting"),
        (b"\xff\xfe", "utf-8"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"at": "' + at.encode() + b'"}', "no action"),
        (b'{"action": "routed", "at": "yesterday"}', "no ISO-8601 at"),
        (b'{"action": "routed", "at": "' + at.encode() + b'", "x": NaN}', "NaN is not JSON"),
        (b'{"action": "routed", "at": "' + at.encode() + b'", "x": 1e999}', "Out of range float"),
        (b'{"action": "routed", "at": "' + at.encode() + b'", "x": "a\\u0000b"}', "U+0000"),
        (b'{"action": "routed", "at": "' + at.encode() + b'", "x": "\\ud800"}', "surrogate"),
    ]:
        kept = decode_entry(value, b"G-1", 1_764_207_000_000)
        assert kept["action"] == "unreadable", value
        assert problem in kept["detail"], (value, kept["detail"])
        assert kept["raw"] == value.decode("utf-8", "replace")
        assert kept["case_id"] == "G-1"
        assert kept["at"] == datetime.fromtimestamp(1_764_207_000, UTC).isoformat()


def test_an_escaped_backslash_before_u0000_is_ordinary_text() -> None:
    value = b'{"action": "routed", "at": "2026-11-27T09:30:00Z", "x": "\\\\u0000"}'
    assert decode_entry(value, None, 0)["x"] == "\\u0000"


def test_the_indexed_columns_take_only_well_typed_values_and_read_a_time_without_offset_as_utc() -> None:
    indexed = Indexed.of({"action": "routed", "at": "2026-11-27T01:30:00", "event_id": "", "case_id": 7,
                          "version": True, "sender": "bureau"})
    assert indexed == Indexed(action="routed", at=datetime(2026, 11, 27, 1, 30, tzinfo=UTC), event_id=None,
                              case_id=None, sender="bureau", contract=None, version=None)
    assert Indexed.of({"version": 2**31}).version is None


# --- what classify reports -------------------------------------------------------------------------------

def test_an_intact_chain_and_an_empty_one_have_no_finding() -> None:
    assert classify(chain()) == []
    assert classify(list(reversed(chain()))) == []  # the order rows are given in does not matter
    assert classify([]) == []


def test_an_edited_field_of_an_entry_is_a_change_at_that_row() -> None:
    rows = chain()
    edited = {**rows[3].entry, "delivered": {"planning": ["case_id", "stage", "applicant_id"]}}
    rows[3] = replace(rows[3], entry=edited)
    assert kinds(classify(rows)) == [("changed", 4)]


def test_an_edited_entry_and_column_together_are_a_change_at_that_row() -> None:
    rows = chain()
    edited = {**rows[3].entry, "sender": "planning"}
    rows[3] = replace(rows[3], entry=edited, indexed=Indexed.of(edited))
    assert kinds(classify(rows)) == [("changed", 4)]


def test_a_column_that_no_longer_matches_its_entry_is_a_change() -> None:
    rows = chain()
    rows[5] = replace(rows[5], indexed=replace(rows[5].indexed, case_id="G-OTHER"))
    [finding] = classify(rows)
    assert (finding.kind, finding.seq) == ("changed", 6) and "case_id" in finding.detail


def test_an_edited_stored_hash_is_a_change_at_that_row_only() -> None:
    rows = chain()
    rows[3] = replace(rows[3], hash="f" * 64)
    assert kinds(classify(rows)) == [("changed", 4)]


def test_an_edited_prev_hash_is_a_change_at_that_row_only() -> None:
    rows = chain()
    rows[3] = replace(rows[3], prev_hash="e" * 64)
    assert kinds(classify(rows)) == [("changed", 4)]


def test_a_deleted_middle_row_is_reported_at_its_seq() -> None:
    rows = chain()
    del rows[3]
    assert kinds(classify(rows)) == [("deleted", 4)]
    assert kinds(classify(renumbered(rows))) == [("deleted", 4)]  # also when the gap was closed


def test_a_deleted_first_row_is_reported_at_seq_1() -> None:
    rows = chain()[1:]
    assert kinds(classify(rows)) == [("deleted", 1)]
    assert kinds(classify(renumbered(rows))) == [("deleted", 1)]


def test_a_deleted_run_of_rows_is_one_finding_at_its_first_seq() -> None:
    rows = chain()
    del rows[2:5]
    [finding] = classify(rows)
    assert (finding.kind, finding.seq) == ("deleted", 3) and "seq 3 to 5" in finding.detail


def test_a_forged_row_with_a_consistent_hash_at_an_extra_seq_is_inserted() -> None:
    rows = chain()
    forged = linked(9, rows[3].hash, {**entry(4), "event_id": "ev-forged"})
    assert kinds(classify([*rows, forged])) == [("inserted", 9)]


def test_a_forged_row_put_in_the_middle_with_the_rows_after_renumbered_is_inserted() -> None:
    rows = chain()
    forged = linked(0, rows[3].hash, {**entry(4), "event_id": "ev-forged"})
    assert kinds(classify(renumbered([*rows[:4], forged, *rows[4:]]))) == [("inserted", 5)]


def test_a_forged_row_claiming_the_predecessor_of_the_last_row_is_inserted() -> None:
    rows = chain()
    forged = linked(9, rows[-2].hash, {**entry(8), "event_id": "ev-forged"})
    assert kinds(classify([*rows, forged])) == [("inserted", 9)]


def test_a_copy_of_a_row_or_a_second_start_of_the_chain_is_inserted() -> None:
    rows = chain()
    assert kinds(classify([*rows, replace(rows[2], seq=9)])) == [("inserted", 9)]
    assert kinds(classify([*rows, linked(9, GENESIS, entry(99))])) == [("inserted", 9)]


def test_a_forged_branch_of_several_rows_is_inserted_row_by_row() -> None:
    rows = chain()
    first = linked(9, rows[5].hash, entry(90))
    second = linked(10, first.hash, entry(91))
    findings = classify([*rows, first, second])
    assert kinds(findings) == [("inserted", 9), ("inserted", 10)]
    assert "itself inserted" in findings[1].detail


def test_rows_whose_links_run_in_a_loop_are_inserted() -> None:
    rows = chain()
    a = ChainRow(9, "b" * 64, "a" * 64, entry(90), Indexed.of(entry(90)), origin(9), Scheme.RECORD)
    b = ChainRow(10, "a" * 64, "b" * 64, entry(91), Indexed.of(entry(91)), origin(10), Scheme.RECORD)
    assert kinds(classify([*rows, a, b])) == [("changed", 9), ("inserted", 9), ("changed", 10), ("inserted", 10)]


def test_two_rows_with_swapped_seq_are_both_reordered() -> None:
    for a, b in [(4, 5), (2, 7), (1, 8)]:
        rows = chain()
        rows[a - 1], rows[b - 1] = replace(rows[b - 1], seq=a), replace(rows[a - 1], seq=b)
        assert kinds(classify(rows)) == [("reordered", a), ("reordered", b)], (a, b)


def test_several_tamperings_are_each_reported() -> None:
    rows = chain(12)
    rows[1] = replace(rows[1], entry={**rows[1].entry, "reason": "none"})
    rows[8], rows[9] = replace(rows[9], seq=9), replace(rows[8], seq=10)
    del rows[5]
    forged = linked(13, rows[2].hash, entry(77))
    assert kinds(classify([*rows, forged])) == [("changed", 2), ("deleted", 6), ("reordered", 9),
                                                ("reordered", 10), ("inserted", 13)]


def test_a_rewritten_row_with_a_recomputed_hash_reads_as_a_break_after_it() -> None:
    # Indistinguishable from deleting the row after it and renumbering: reported where the chain breaks.
    rows = chain()
    rows[4] = linked(5, rows[3].hash, {**entry(5), "sender": "planning"})
    assert kinds(classify(rows)) == [("deleted", 6)]


def test_rows_that_extend_the_end_correctly_or_a_removed_last_row_leave_a_valid_chain() -> None:
    # What head() is for: only a count and last hash kept elsewhere show these.
    rows = chain()
    assert classify([*rows, linked(9, rows[-1].hash, entry(99))]) == []
    assert classify(rows[:-1]) == []


def test_a_row_moved_to_another_record_s_place_or_time_is_a_change() -> None:
    for moved in ({"offset": 999}, {"timestamp": 0}, {"partition": 3}, {"topic": "audit.elsewhere"}):
        rows = chain()
        rows[3] = replace(rows[3], origin=replace(rows[3].origin, **moved))
        assert kinds(classify(rows)) == [("changed", 4)], moved


def old_rows(count: int) -> list[ChainRow]:
    """Rows appended before the anchoring: hashed over the entry alone, with no Kafka timestamp kept."""
    rows: list[ChainRow] = []
    prev_hash = GENESIS
    for seq in range(1, count + 1):
        content = entry(seq)
        rows.append(ChainRow(seq, prev_hash, chain_hash(prev_hash, content), content, Indexed.of(content),
                             replace(origin(seq), timestamp=None), Scheme.ENTRY))
        prev_hash = rows[-1].hash
    return rows


def test_rows_hashed_the_old_way_then_the_new_way_verify_and_each_still_shows_a_change() -> None:
    rows = old_rows(4)
    for seq in range(5, 9):
        rows.append(linked(seq, rows[-1].hash, entry(seq)))
    assert classify(rows) == []
    edited = list(rows)
    edited[1] = replace(edited[1], entry={**edited[1].entry, "sender": "planning"})
    edited[5] = replace(edited[5], entry={**edited[5].entry, "sender": "planning"})
    assert kinds(classify(edited)) == [("changed", 2), ("changed", 6)]


def test_a_row_rehashed_the_old_way_after_new_ones_or_of_an_unknown_scheme_is_a_change() -> None:
    rows = chain()
    old = rows[5]
    rows[5] = replace(old, hash=chain_hash(old.prev_hash, old.entry), scheme=Scheme.ENTRY)
    findings = classify(rows)
    assert kinds(findings) == [("changed", 6), ("deleted", 7)]  # and row 7 no longer links to its new hash
    assert "hashed without its record" in findings[0].detail
    rows = chain()
    rows[2] = replace(rows[2], scheme=7)
    [finding] = classify(rows)
    assert (finding.kind, finding.seq) == ("changed", 3) and "scheme 7" in finding.detail


@given(st.integers(min_value=2, max_value=30), st.data())
def test_any_single_deletion_or_swap_is_found_where_it_was_done(count: int, data: st.DataObject) -> None:
    rows = chain(count)
    gone = data.draw(st.integers(min_value=1, max_value=count - 1))
    assert kinds(classify([r for r in rows if r.seq != gone])) == [("deleted", gone)]
    a, b = sorted(data.draw(st.lists(st.integers(min_value=1, max_value=count), min_size=2, max_size=2,
                                     unique=True)))
    swapped = [replace(r, seq=b) if r.seq == a else replace(r, seq=a) if r.seq == b else r for r in rows]
    assert kinds(classify(swapped)) == [("reordered", a), ("reordered", b)]
