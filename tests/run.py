"""``make test``: every test, in two pytest runs. One runs the tests on the session's stack (marked ``stack``: one
stack, one exchange, in their order, the disruptive ones last); the other runs all the others (no I/O, files alone,
or a stack of their own such as the three-broker cluster), using the second core while the first run mostly waits
on the stack. The second starts once the first run's first test has (the stack up and the exchange started: those
starts take both cores), or once that run has ended. The second run's report is printed after the first's; the
status is the worse of the two. Arguments go to both runs (``python -m tests.run -x``, or paths to narrow them)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import FIRST_TEST_STARTED

NOTHING_COLLECTED = 5  # pytest's exit status when a run selects no test


def worse(statuses: list[int]) -> int:
    """A failure, if either run had one; else success, if either run ran a test."""
    failed = [status for status in statuses if status not in (0, NOTHING_COLLECTED)]
    if failed:
        return failed[0]
    return 0 if 0 in statuses else NOTHING_COLLECTED


def main(arguments: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    with tempfile.TemporaryDirectory() as folder, (Path(folder) / "report").open("w+", encoding="utf-8") as report:
        started = Path(folder) / "first-test-started"
        on_stack = subprocess.Popen([*pytest, "-m", "stack", *arguments],
                                    env={**os.environ, FIRST_TEST_STARTED: str(started)})
        try:
            while not started.exists() and on_stack.poll() is None:
                time.sleep(0.5)
            # no cache of its own: two runs writing .pytest_cache at once would trample each other's
            beside = subprocess.run([*pytest, "-p", "no:cacheprovider", "-m", "not stack", *arguments],
                                    stdout=report, stderr=subprocess.STDOUT).returncode
        finally:
            status = on_stack.wait()
        report.seek(0)
        print(f"\n{'=' * 30} the tests beside those on the stack {'=' * 30}", flush=True)
        sys.stdout.write(report.read())
    return worse([status, beside])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
