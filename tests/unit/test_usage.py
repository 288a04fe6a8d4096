"""What the demo says of each process: its resident memory through the run and the CPU time it used, read from
/proc (a process of the test's own) and set out in one table."""

from __future__ import annotations

import io
import subprocess
import sys

from rich.console import Console

from deploy.demo import UsageWatch
from deploy.processes import Usage, usage


def test_a_process_s_usage_is_its_memory_and_the_cpu_time_it_has_used() -> None:
    """A child burns half a second of CPU, says so on a line of its own, and waits: its usage is read then."""
    busy = subprocess.Popen([sys.executable, "-c", "import sys, time\nend = time.process_time() + 0.5\n"
                             "while time.process_time() < end: pass\nprint('burnt', flush=True)\nsys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout is not None and busy.stdout.readline() == "burnt\n"
        now = usage(busy.pid)
        assert now is not None and 0.5 <= now.cpu_s < 30
        assert 0 < now.rss_mib <= now.peak_mib
    finally:
        busy.communicate("")
    assert usage(busy.pid) is None  # gone
    assert usage(None) is None


def test_the_table_shows_each_process_s_memory_by_quarter_its_peak_and_its_cpu_seconds() -> None:
    readings = iter([Usage(100, 110, 1.0), Usage(120, 130, 5.0), Usage(118, 140, 12.4)])
    watch = UsageWatch({"bureau": lambda: next(readings), "gone": lambda: None})
    for share in (0.25, 0.5, 1.0):
        watch.sample(share)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(watch.table())
    [bureau] = [line for line in console.export_text().splitlines() if "bureau" in line]
    assert [cell.strip() for cell in bureau.strip("│ ").split("│")] == \
        ["bureau", "100", "120", "118", "118", "118", "140", "12"]  # a sample past two marks fills both
