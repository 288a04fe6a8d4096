"""The exchange's own processes (gateway router, department services) run as child processes, each with
its log file: for the demo and the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from base.settings import Settings
from deploy.stack import StackError, port_open


@dataclass(frozen=True)
class Memory:
    rss_mib: float  # resident now
    peak_mib: float  # the most it was resident at any time (the kernel's high-water mark)


def memory(pid: int | None) -> Memory | None:
    """A process's resident memory, from /proc (Linux); None when it is gone."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = {name: value for name, _, value in (line.partition(":") for line in status.splitlines())}
    try:
        return Memory(int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
    except (KeyError, ValueError, IndexError):  # a zombie has no memory lines
        return None


class AppProcess:
    def __init__(self, name: str, args: Sequence[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "deploy.cli", *args], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def memory(self) -> Memory | None:
        return memory(self.process.pid) if self.alive() else None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class AppProcesses:
    """Start named components; stop them all on exit."""

    def __init__(self, settings: Settings, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.log_dir = settings.stack_path / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.processes: dict[str, AppProcess] = {}

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> AppProcess:
        process = AppProcess(name, args, self.log_dir, {**self.env, **(env or {})})
        self.processes[name] = process
        return process

    def start_exchange(self) -> None:
        """The gateway, the bureau, and every other department's service (in one process). Their ports must be
        free: an API that answers from another process would stand in for them unnoticed."""
        s = self.settings
        for name, port in (("gateway", s.gateway_port), ("bureau", s.bureau_port),
                           ("departments", s.departments_port)):
            if port_open(port):
                raise StackError(f"port {port} of the {name} is taken by a process started elsewhere (an earlier "
                                 "`concord gateway run` or `service run`?): stop it first")
        self.start("gateway", "gateway", "run", "--instance", "main")
        self.start("bureau", "service", "run", "bureau")
        self.start("departments", "service", "run", "departments")

    def wait_ready(self) -> None:
        s = self.settings
        for host, port in ((s.gateway_host, s.gateway_port), (s.bureau_host, s.bureau_port),
                           (s.departments_host, s.departments_port)):
            self.wait_http(f"http://{host}:{port}/healthz")

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p.name for p in self.processes.values() if not p.alive()]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited; see {self.log_dir}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{url} did not answer within {timeout:.0f}s; see {self.log_dir}")

    def stop_all(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def __enter__(self) -> AppProcesses:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_all()

    def send_signal(self, name: str, sig: signal.Signals) -> None:
        os.killpg(self.processes[name].process.pid, sig)
