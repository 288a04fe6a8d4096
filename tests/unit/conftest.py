"""The fast layer runs no wall-clock bound of the code under test: a desk's round decides every task due, however
busy the machine (``tests/unit/test_desks.py`` tests the bound itself, giving it explicitly)."""

from __future__ import annotations

import math

import pytest

from services.departments import desk


@pytest.fixture(autouse=True)
def rounds_take_their_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(desk, "ROUND_SECONDS", math.inf)
