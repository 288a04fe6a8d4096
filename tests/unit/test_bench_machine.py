"""The benchmark names the machine its figures came from, and how fast a core of it ran that day."""

from __future__ import annotations

import os

import pytest

from bench import router


def test_the_machine_is_named_with_its_cores_and_a_reference_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router, "REFERENCE_STEPS", 200_000)  # a few hundredths of a second
    host = router.machine()
    assert host["cores"] == os.cpu_count()
    assert isinstance(host["cpu"], str)
    reference = host["python_loop_s"]
    assert isinstance(reference, float) and 0 < reference < 1
