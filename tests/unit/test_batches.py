"""The router picks a record's partition as Kafka's default partitioner does, so a case's records land where
every other producer puts them."""

from __future__ import annotations

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from gateway.batches import murmur2


@given(st.binary(max_size=300))
def test_murmur2_is_kafka_s(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_murmur2_of_known_keys() -> None:
    """Values from Kafka's own tests (``UtilsTest.testMurmur2``), as the Java client's signed int."""
    known = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829, b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
             b"abc": 479470107}
    for key, signed in known.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key
