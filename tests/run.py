"""``make test``: every test, in two pytest runs at once. One runs the tests on the session's stack (marked
``stack``: one stack, one exchange, in their order, the disruptive ones last); the other, beside it, runs all the
others (no I/O, files alone, or a stack of their own such as the three-broker cluster), which use the second core
while the first run mostly waits on the stack. The other run's report is printed after the stack's; the status is
the worse of the two. Arguments go to both runs (``python -m tests.run -x``, or paths to narrow them)."""

from __future__ import annotations

import subprocess
import sys
import tempfile

NOTHING_COLLECTED = 5  # pytest's exit status when a run selects no test


def worse(statuses: list[int]) -> int:
    """A failure, if either run had one; else success, if either run ran a test."""
    failed = [status for status in statuses if status not in (0, NOTHING_COLLECTED)]
    if failed:
        return failed[0]
    return 0 if 0 in statuses else NOTHING_COLLECTED


def main(arguments: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as report:
        # no cache of its own: two runs writing .pytest_cache at once would trample each other's
        beside = subprocess.Popen([*pytest, "-p", "no:cacheprovider", "-m", "not stack", *arguments],
                                  stdout=report, stderr=subprocess.STDOUT)
        try:
            on_stack = subprocess.run([*pytest, "-m", "stack", *arguments]).returncode
        finally:
            other = beside.wait()
        report.seek(0)
        print(f"\n{'=' * 30} the tests beside the stack's {'=' * 30}", flush=True)
        sys.stdout.write(report.read())
    return worse([on_stack, other])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
