"""The short form of `make chaos`: cases carried through an exchange whose components are killed, one of whose two
routers is paused past its session timeout, and whose broker and database are restarted; then reconciled. The run
stops the session's exchange first (it needs the ports, and the restarts would disturb it), so it runs last."""

from __future__ import annotations

import re

import pytest

from base.settings import Settings
from deploy.processes import AppProcesses
from tests.conftest import RESPONSE_SCALE
from tests.tools import run_concord

LAST_LINE = re.compile(r"chaos: cases (\d+)/(\d+) finished, kills (\d+), restarts (\d+), lost (\d+), "
                       r"duplicated (\d+), audit verified")


@pytest.mark.disruptive
async def test_cases_finish_with_nothing_lost_or_applied_twice_while_the_exchange_is_broken(
        stack: Settings, exchange: AppProcesses) -> None:
    exchange.stop_all()
    ran = await run_concord("chaos", "--cases", "24", "--seconds", "30", "--every-min", "2", "--every-max", "4",
                            env={"CONCORD_RESPONSE_SCALE": str(RESPONSE_SCALE)}, timeout=600)
    lines = ran.out.strip().splitlines()
    assert ran.code == 0, ran.out[-3000:] + ran.err[-2000:]
    result = LAST_LINE.fullmatch(lines[-1].strip())
    assert result is not None, lines[-5:]
    finished, cases, kills, restarts, lost, duplicated = map(int, result.groups())
    assert finished == cases == 24
    assert kills >= 1 and restarts >= kills  # every component killed was started again
    assert lost == duplicated == 0
    assert any("paused router-" in line for line in lines) and any("resumed router-" in line for line in lines)
    assert "chaos: the Kafka broker is back" in lines and "chaos: PostgreSQL is back" in lines
