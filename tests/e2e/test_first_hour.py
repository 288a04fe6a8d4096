"""The README's "first hour": every command of each user's walk-through, run as written against the real stack,
in a shell of its own per user (what one command sets, the next may use). A line ``# → text`` under a command
says what its output must hold. Commands that start the exchange's long-running processes (ending in ``&``) are
the ones this session runs already, and are checked to be exactly those."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from base.settings import Settings
from deploy.processes import AppProcesses

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## The first hour"
# What a reader starts in the background: the processes this test session runs (deploy.processes.start_exchange).
SESSION_RUNS = {"concord gateway run &", "concord service run bureau &", "concord service run departments &"}


@dataclass
class Command:
    text: str  # one line, or a here-document
    expect: list[str] = field(default_factory=list)


@dataclass
class Walk:
    user: str
    commands: list[Command]


def walks(readme: str) -> list[Walk]:
    """Each user's commands, in order: the ```sh blocks under each ### heading of the first-hour section."""
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found: list[Walk] = []
    for part in section.split("\n### ")[1:]:
        user, _, body = part.partition("\n")
        commands: list[Command] = []
        for block in re.findall(r"```sh\n(.*?)```", body, flags=re.S):
            lines = block.replace("\\\n", "").splitlines()  # a line ending in a backslash goes on
            while lines:
                line = lines.pop(0)
                if line.startswith("# → "):
                    commands[-1].expect.append(line.removeprefix("# → ").strip())
                elif not line.strip() or line.lstrip().startswith("#"):
                    continue
                elif m := re.search(r"<<'?(\w+)'?", line):  # a here-document, to its end marker
                    end = lines.index(m.group(1))
                    commands.append(Command("\n".join([line, *lines[:end + 1]])))
                    del lines[:end + 1]
                else:
                    commands.append(Command(re.sub(r"\s+#.*$", "", line) if " # " in line else line))
        found.append(Walk(user.strip(), commands))
    return found


def run(walk: Walk, cwd: Path, env: dict[str, str]) -> None:
    """The walk's commands in one bash, each output fenced by a marker so that its expectations are checked."""
    script = ["set -euo pipefail"]
    for n, command in enumerate(walk.commands):
        if command.text.rstrip().endswith("&"):
            continue  # started by the session (checked below)
        script += [f"printf '\\n::{n}\\n'", command.text]  # on a line of its own, whatever came before
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    outputs: dict[int, str] = {}
    current = -1
    for line in done.stdout.splitlines():
        if marker := re.fullmatch(r"::(\d+)", line):
            current = int(marker.group(1))
            outputs[current] = ""
        else:
            outputs[current] = outputs.get(current, "") + line + "\n"
    assert done.returncode == 0, f"{walk.user}: stopped with status {done.returncode}\n{done.stdout}\n{done.stderr}"
    for n, command in enumerate(walk.commands):
        for expected in command.expect:
            assert expected in outputs.get(n, ""), (walk.user, command.text, expected, outputs.get(n))


def test_the_first_hour_has_a_walk_for_each_user() -> None:
    users = [w.user.split(":")[0] for w in walks(README.read_text(encoding="utf-8"))]
    assert users == ["The operator", "An integrating department", "A contract developer"]
    background = {c.text.strip() for w in walks(README.read_text(encoding="utf-8")) for c in w.commands
                  if c.text.rstrip().endswith("&")}
    assert background == SESSION_RUNS


def test_every_command_of_the_first_hour_runs_as_written(
    stack: Settings, exchange: AppProcesses, tmp_path: Path
) -> None:
    """The walks in order, in one folder that stands for the checkout (what the operator hands the department,
    the department uses): its Makefile, project and environment, and the files the walks write."""
    root = README.parent
    for name in ("Makefile", "pyproject.toml", ".venv"):
        (tmp_path / name).symlink_to(root / name)
    bin_dir = str(Path(sys.executable).parent)  # `concord` as installed in this environment
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CONCORD_STACK_DIR": str(stack.stack_path),
           "COLUMNS": "200"}
    for walk in walks(README.read_text(encoding="utf-8")):
        run(walk, tmp_path, env)
