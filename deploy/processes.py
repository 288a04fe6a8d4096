"""The exchange's own processes (gateway router, department services) run as child processes, each with
its log file: for the demo and the end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from base.settings import Settings
from deploy.stack import StackError, port_open


@dataclass(frozen=True)
class Usage:
    rss_mib: float  # resident now
    peak_mib: float  # the most it was resident at any time (the kernel's high-water mark)
    cpu_s: float  # the CPU time it has used since it started, user and system


TICKS = os.sysconf("SC_CLK_TCK")
STOP_SECONDS = 20.0  # what a component told to stop is given before it is killed


def usage(pid: int | None) -> Usage | None:
    """A process's resident memory and CPU time, from /proc (Linux); None when it is gone."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = {name: value for name, _, value in (line.partition(":") for line in status.splitlines())}
    counters = stat.rpartition(")")[2].split()  # after the command's name, which may hold anything
    try:
        return Usage(int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024,
                     (int(counters[11]) + int(counters[12])) / TICKS)  # utime and stime: fields 14 and 15
    except (KeyError, ValueError, IndexError):  # a zombie has no memory lines
        return None


class AppProcess:
    """A component run as a child process, with its log file; ``health`` is the address of its ``/healthz``."""

    def __init__(self, name: str, args: Sequence[str], log_dir: Path, env: dict[str, str],
                 health: str | None = None) -> None:
        self.name = name
        self.args = list(args)
        self.env = env
        self.health = health
        self.log_path = log_dir / f"{name}.log"
        self.restarts = 0
        self.stopping = False  # stopped on purpose: not to be restarted
        # Held by whoever changes which process runs or whether it should: the supervisor while it watches, and
        # ``stop`` and ``restart``. Without it a supervisor that saw the old process dead could start a second one
        # beside the one ``restart`` just started, and nobody would stop the first.
        self.lock = threading.RLock()
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "deploy.cli", *self.args], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env, start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def usage(self) -> Usage | None:
        return usage(self.process.pid) if self.alive() else None

    def restart(self) -> None:
        """Start the component again, whether it died or was stopped on purpose; supervised, it is watched again."""
        with self.lock:
            self.restarts += 1
            self.stopping = False
            self.process = self._spawn()

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_SECONDS) -> None:
        """Stop the component (and anything it started) for good: ``sig``, and after ``timeout`` SIGKILL."""
        self.signal_stop(sig)
        self.wait_stopped(timeout)

    def signal_stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Tell the component to stop for good (``wait_stopped`` waits for it)."""
        with self.lock:
            self.stopping = True
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGCONT)  # a paused process cannot stop
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)

    def wait_stopped(self, timeout: float) -> None:
        """Wait for a component told to stop; after ``timeout`` seconds, SIGKILL it and what it started."""
        try:
            self.process.wait(max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def exit_reason(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"


class Supervisor(threading.Thread):
    """Runs components the way a container platform does: one that exits is started again after a backoff (1 s,
    doubling to 30 s; back to 1 s once it has run for a minute), and one whose ``/healthz`` has failed for
    ``LIVENESS_SECONDS`` since it last answered is killed and started again. Each restart is said once, in one
    line, to ``say``; the components' own logs say the rest."""

    BACKOFF_SECONDS = (1.0, 30.0)
    STEADY_SECONDS = 60.0
    PROBE_SECONDS = 3.0
    LIVENESS_SECONDS = 30.0  # longer than a router is paused past its session timeout (make chaos)
    START_GRACE_SECONDS = 120.0  # a component that has never answered since its start gets this long

    def __init__(self, processes: Callable[[], list[AppProcess]], say: Callable[[str], None]) -> None:
        super().__init__(name="supervisor", daemon=True)
        self.processes = processes
        self.say = say
        self.halt = threading.Event()
        self.backoff: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.answered: dict[str, float] = {}  # last healthy answer since the current start
        self.probed: dict[str, float] = {}
        self.due: dict[str, float] = {}  # components waiting to be started again, and when
        self.watching: dict[str, subprocess.Popen[bytes]] = {}  # the process each of the above is about

    def run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self.halt.wait(0.25):
                for process in self.processes():
                    with process.lock:
                        if process.stopping:
                            continue
                        try:
                            self._watch(process, client)
                        except Exception as exc:  # the supervisor outlives whatever goes wrong with one component
                            self.say(f"supervisor: watching {process.name} failed: {type(exc).__name__}: {exc}")

    def _watch(self, process: AppProcess, client: httpx.Client) -> None:
        now = time.monotonic()
        name = process.name
        if self.watching.get(name) is not process.process:  # first seen, or started again by someone else
            self._forget(name)
            self.watching[name] = process.process
        if name in self.due:
            if now >= self.due[name]:
                process.restart()  # a new process: the next look forgets what was known of the old one
            return
        started = self.started.setdefault(name, now)
        code = process.process.poll()
        if code is not None:
            self._schedule(process, f"{name} {exit_reason(code)}", started, now)
            return
        if process.health is None or now - self.probed.get(name, 0.0) < self.PROBE_SECONDS:
            return
        self.probed[name] = now
        try:
            healthy = client.get(process.health).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy:
            self.answered[name] = now
            return
        since = self.answered.get(name)
        failing = now - since if since is not None else now - started - self.START_GRACE_SECONDS
        if failing >= self.LIVENESS_SECONDS:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.process.pid, signal.SIGKILL)
            process.process.wait()
            self._schedule(process, f"{name} failed its health check for {failing:.0f} s and was killed", started,
                           now)

    def _forget(self, name: str) -> None:
        """What was known of a process that is no longer the one running as ``name`` (the backoff stays)."""
        for known in (self.due, self.started, self.answered, self.probed):
            known.pop(name, None)

    def _schedule(self, process: AppProcess, what: str, started: float, now: float) -> None:
        low, high = self.BACKOFF_SECONDS
        previous = self.backoff.get(process.name)
        delay = low if previous is None or now - started >= self.STEADY_SECONDS else min(previous * 2, high)
        self.backoff[process.name] = delay
        self.due[process.name] = now + delay
        self.say(f"supervisor: {what}; starting it again in {delay:.0f} s (restart {process.restarts + 1})")

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join()


class AppProcesses:
    """Start named components (those started ``supervised`` are restarted when they die); stop them all on exit."""

    def __init__(self, settings: Settings, env: dict[str, str] | None = None,
                 say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.log_dir = settings.stack_path / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.processes: dict[str, AppProcess] = {}
        self.supervised: frozenset[str] = frozenset()  # replaced whole: the supervisor's thread reads it
        self.supervisor = Supervisor(
            lambda: [self.processes[n] for n in sorted(self.supervised) if n in self.processes], self._say(say))

    def start(self, name: str, *args: str, env: dict[str, str] | None = None, health: str | None = None,
              supervised: bool = False) -> AppProcess:
        process = AppProcess(name, args, self.log_dir, {**self.env, **(env or {})}, health)
        self.processes[name] = process
        if supervised:
            self.supervised = self.supervised | {name}
            if not self.supervisor.is_alive():
                self.supervisor.start()
        return process

    def _say(self, say: Callable[[str], None]) -> Callable[[str], None]:
        """What the supervisor says goes to ``say`` and, with the time, to the log folder's supervisor.log."""

        def said(line: str) -> None:
            with (self.log_dir / "supervisor.log").open("a") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
            say(line)

        return said

    def restarts(self) -> dict[str, int]:
        return {name: process.restarts for name, process in self.processes.items()}

    def start_exchange(self) -> None:
        """The gateway, the bureau, and every other department's service (in one process). Their ports must be
        free: an API that answers from another process would stand in for them unnoticed."""
        s = self.settings
        for name, port in (("gateway", s.gateway_port), ("bureau", s.bureau_port),
                           ("departments", s.departments_port)):
            if port_open(port):
                raise StackError(f"port {port} of the {name} is taken by a process started elsewhere (an earlier "
                                 "`concord gateway run` or `service run`?): stop it first")
        self.start("gateway", "gateway", "run", "--instance", "main", health=self.health_url(s.gateway_port),
                   supervised=True)
        self.start("bureau", "service", "run", "bureau", health=self.health_url(s.bureau_port), supervised=True)
        self.start("departments", "service", "run", "departments", health=self.health_url(s.departments_port),
                   supervised=True)

    def health_url(self, port: int, probe: str = "healthz") -> str:
        return f"http://127.0.0.1:{port}/{probe}"

    def wait_ready(self) -> None:
        s = self.settings
        for host, port in ((s.gateway_host, s.gateway_port), (s.bureau_host, s.bureau_port),
                           (s.departments_host, s.departments_port)):
            self.wait_http(f"http://{host}:{port}/readyz")

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:  # one for the wait: each new client loads the CA bundle (~50 ms)
            while time.monotonic() < deadline:
                dead = [p.name for p in self.processes.values() if not p.alive() and p.name not in self.supervised]
                if dead:
                    raise RuntimeError(f"{', '.join(dead)} exited; see {self.log_dir}")
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
        raise RuntimeError(f"{url} did not answer within {timeout:.0f}s; see {self.log_dir}")

    def stop_all(self) -> None:
        for process in self.processes.values():
            with process.lock:
                process.stopping = True
        self.supervisor.stop()
        # all told at once and waited for together: each takes a second or two to close its clients, and one by one
        # the exchange's processes took as long as all of them
        for process in self.processes.values():
            process.signal_stop()
        deadline = time.monotonic() + STOP_SECONDS
        for process in self.processes.values():
            process.wait_stopped(deadline - time.monotonic())

    def __enter__(self) -> AppProcesses:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_all()

    def send_signal(self, name: str, sig: signal.Signals) -> None:
        """Signal a component's process group (nothing, if it has just died)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].process.pid, sig)
