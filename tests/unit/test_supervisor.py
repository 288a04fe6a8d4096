"""The supervisor of the stack's processes, on child processes that only sleep: one that dies is started again,
and one started again by hand (as the tests restart the session's gateway) runs once, never beside a second copy
the supervisor started because it saw the old one dead."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.processes import AppProcess, Supervisor
from tests.tools import eventually


class Sleeper(AppProcess):
    """A component whose process sleeps; it takes ``spawn_seconds`` to start one, and keeps every one it started."""

    spawn_seconds = 0.0

    def _spawn(self) -> subprocess.Popen[bytes]:
        time.sleep(self.spawn_seconds)  # a busy machine's fork and exec, stretched to make the race certain
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        self.spawned = [*getattr(self, "spawned", []), child]
        return child


class QuickSupervisor(Supervisor):
    BACKOFF_SECONDS = (0.1, 0.1)


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[Sleeper]:
    process = Sleeper("sleeper", [], tmp_path, {})
    try:
        yield process
    finally:
        for child in process.spawned:
            child.kill()
            child.wait()


class Said(QuickSupervisor):
    """The supervisor, keeping what it says."""

    def __init__(self, process: Sleeper) -> None:
        self.lines: list[str] = []
        super().__init__(lambda: [process], self.lines.append)


@pytest.fixture
def supervisor(sleeper: Sleeper) -> Iterator[Said]:
    watching = Said(sleeper)
    watching.start()
    try:
        yield watching
    finally:
        watching.stop()


def running(process: Sleeper) -> list[subprocess.Popen[bytes]]:
    return [child for child in process.spawned if child.poll() is None]


async def test_a_component_that_dies_is_started_again_and_said_so(sleeper: Sleeper, supervisor: Said) -> None:
    sleeper.process.kill()
    await eventually(lambda: len(sleeper.spawned) == 2 and sleeper.alive(), timeout=10)
    assert sleeper.restarts == 1 and running(sleeper) == [sleeper.process]
    [line] = supervisor.lines
    assert line.startswith("supervisor: sleeper was killed by SIGKILL; starting it again")


async def test_a_component_stopped_and_started_again_by_hand_runs_once(sleeper: Sleeper, supervisor: Said) -> None:
    await eventually(lambda: supervisor.watching.get("sleeper") is sleeper.process, timeout=10)
    sleeper.stop()
    assert running(sleeper) == []
    sleeper.spawn_seconds = 0.6  # longer than the supervisor's pause between looks: it looks while this starts
    sleeper.restart()
    sleeper.spawn_seconds = 0.0
    started = sleeper.process
    await eventually(lambda: supervisor.watching.get("sleeper") is started, timeout=10)  # it has looked since ...
    # ... and neither saw the old one dead nor started another beside it
    assert supervisor.lines == [] and running(sleeper) == [started] and sleeper.process is started
